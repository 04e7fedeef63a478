//! [`Client`]: blocking HTTPS requests to one `brrd`, with its credential, retries and error mapping.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use reqwest::Method;
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue};
use std::sync::Mutex;
use zeroize::{Zeroize, Zeroizing};

use crate::credentials::{CredentialStore, Entry};
use crate::transport::{Settings, Transport};
use crate::url::ServerUrl;
use crate::{ClientError, tls};

/// How often and how patiently idempotent requests are repeated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in total, including the first (at least 1).
    pub attempts: u32,
    /// Pause before the first retry; each later pause doubles, up to `max_delay`.
    pub first_delay: Duration,
    /// Longest pause.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    /// 6 attempts pausing 0.5 s, 1 s, 2 s, 4 s, 8 s: rides out a server restart or a short network drop.
    fn default() -> Self {
        RetryPolicy {
            attempts: 6,
            first_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(8),
        }
    }
}

/// Options of a [`Client`].
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// A PEM file of CA certificates trusted in addition to the system's.
    pub ca_cert: Option<std::path::PathBuf>,
    /// Retries of idempotent requests.
    pub retry: RetryPolicy,
    /// Time allowed to connect.
    pub connect_timeout: Duration,
    /// Time allowed for one whole request, body included (packs are up to 1 GiB).
    pub timeout: Duration,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            ca_cert: None,
            retry: RetryPolicy::default(),
            connect_timeout: Duration::from_secs(15),
            timeout: Duration::from_secs(30 * 60),
        }
    }
}

/// The credential a client sends.
#[derive(Debug)]
pub enum Credential {
    /// No credential (login, enrolment).
    None,
    /// A fixed bearer token: an agent token or `BRR_SERVER_TOKEN`; never refreshed.
    Token(Zeroizing<String>),
    /// A user session: refreshed with its refresh token when the server rejects the access token,
    /// and the rotated tokens are saved to the store.
    Session {
        /// The store the session lives in.
        store: CredentialStore,
    },
}

#[derive(Default)]
struct SessionTokens {
    access: Zeroizing<String>,
    /// Increases with every refresh, so threads that saw a 401 with an older token do not refresh
    /// again.
    generation: u64,
}

/// An answer with a success status (2xx, or one the caller accepts).
#[derive(Debug)]
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// `Content-Length`, if given.
    pub content_length: Option<u64>,
    /// The body.
    pub body: Vec<u8>,
    /// Attempts made (more than 1 after transport retries).
    pub attempts: u32,
}

/// A request: method, path under the server URL, optional body, and whether it may be repeated.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    /// HTTP method.
    pub method: Method,
    /// Path starting with `/api/v1/`.
    pub path: String,
    /// Body and its content type.
    pub body: Option<(&'a [u8], &'static str)>,
    /// `Range` header value.
    pub range: Option<String>,
    /// Whether repeating the request after a lost answer is harmless.
    pub idempotent: bool,
    /// What a 404 means, for the error message (`repository "docs"`).
    pub what: String,
}

impl<'a> Request<'a> {
    /// A request without body.
    pub fn new(method: Method, path: impl Into<String>, idempotent: bool) -> Self {
        Request {
            method,
            path: path.into(),
            body: None,
            range: None,
            idempotent,
            what: "the resource".into(),
        }
    }

    /// With a JSON body.
    pub fn json(mut self, body: &'a [u8]) -> Self {
        self.body = Some((body, "application/json"));
        self
    }

    /// With an octet-stream body.
    pub fn bytes(mut self, body: &'a [u8]) -> Self {
        self.body = Some((body, "application/octet-stream"));
        self
    }

    /// Names the resource for a 404 message.
    pub fn what(mut self, what: impl Into<String>) -> Self {
        self.what = what.into();
        self
    }
}

/// Pauses the calling thread; a parameter so tests need not sleep.
type Sleeper = Arc<dyn Fn(Duration) + Send + Sync>;

/// A blocking HTTPS client of one server. `Send + Sync`: any number of threads share one.
pub struct Client {
    base: ServerUrl,
    http: Transport,
    credential: Credential,
    session: Mutex<SessionTokens>,
    retry: RetryPolicy,
    sleep: Sleeper,
    /// Requests sent (every attempt, refreshes included).
    requests: AtomicU64,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("server", &self.base.as_str())
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A client of `server` sending `credential`.
    pub fn new(
        server: &ServerUrl,
        credential: Credential,
        options: &ClientOptions,
    ) -> Result<Client, ClientError> {
        let tls = tls::client_config(options.ca_cert.as_deref())?;
        let http = Transport::new(Settings {
            tls,
            connect_timeout: options.connect_timeout,
            timeout: options.timeout,
        })
        .map_err(|detail| ClientError::Tls {
            server: server.to_string(),
            detail,
        })?;
        let mut tokens = SessionTokens::default();
        if let Credential::Session { store } = &credential {
            let entry = store.get(server.as_str())?.unwrap_or_default();
            match &entry.access_token {
                Some(a) => tokens.access = Zeroizing::new(a.clone()),
                None => {
                    return Err(ClientError::NotLoggedIn {
                        server: server.to_string(),
                    });
                }
            }
        }
        Ok(Client {
            base: server.clone(),
            http,
            credential,
            session: Mutex::new(tokens),
            retry: options.retry,
            sleep: Arc::new(std::thread::sleep),
            requests: AtomicU64::new(0),
        })
    }

    /// Pause with `sleep` between retries instead of `std::thread::sleep` (tests).
    pub fn with_sleep(mut self, sleep: impl Fn(Duration) + Send + Sync + 'static) -> Self {
        self.sleep = Arc::new(sleep);
        self
    }

    /// The server URL.
    pub fn server(&self) -> &ServerUrl {
        &self.base
    }

    /// HTTP requests sent so far: every attempt of every request, session refreshes included.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    fn bearer(&self) -> Option<(Zeroizing<String>, u64)> {
        match &self.credential {
            Credential::None => None,
            Credential::Token(t) => Some((t.clone(), 0)),
            Credential::Session { .. } => {
                let s = self.session.lock().unwrap_or_else(|p| p.into_inner());
                Some((s.access.clone(), s.generation))
            }
        }
    }

    /// Sends `req`; a non-success status is an error, except statuses in `accept`. Idempotent requests
    /// are repeated on connection errors, timeouts, 5xx and 429; a rejected session token is refreshed
    /// once.
    pub fn send(&self, req: &Request<'_>, accept: &[u16]) -> Result<Reply, ClientError> {
        let mut refreshed = false;
        loop {
            let (reply, generation) = self.send_retrying(req)?;
            if (200..300).contains(&reply.status) || accept.contains(&reply.status) {
                return Ok(reply);
            }
            let err =
                ClientError::from_status(self.base.as_str(), reply.status, &reply.body, &req.what);
            if matches!(err, ClientError::Unauthorized { .. })
                && !refreshed
                && matches!(self.credential, Credential::Session { .. })
            {
                self.refresh(generation)?;
                refreshed = true;
                continue;
            }
            return Err(err);
        }
    }

    /// One request with transport retries; returns the answer (any status) and the session
    /// generation its token came from.
    fn send_retrying(&self, req: &Request<'_>) -> Result<(Reply, u64), ClientError> {
        let attempts = if req.idempotent {
            self.retry.attempts.max(1)
        } else {
            1
        };
        let mut delay = self.retry.first_delay;
        let mut attempt = 1;
        loop {
            let bearer = self.bearer();
            let generation = bearer.as_ref().map_or(0, |b| b.1);
            let result = self.send_once(req, bearer.as_ref().map(|b| b.0.as_str()));
            let retry = match &result {
                Ok(r) => r.status >= 500 || r.status == 429,
                Err(e) => e.is_retryable(),
            };
            if !retry || attempt >= attempts {
                return result.map(|mut r| {
                    r.attempts = attempt;
                    (r, generation)
                });
            }
            let why = match &result {
                Ok(r) => format!("HTTP {}", r.status),
                Err(e) => e.to_string(),
            };
            tracing::warn!(method = %req.method, path = %req.path, attempt, "request failed ({why}); retrying in {delay:?}");
            (self.sleep)(delay);
            delay = (delay * 2).min(self.retry.max_delay);
            attempt += 1;
        }
    }

    fn send_once(&self, req: &Request<'_>, bearer: Option<&str>) -> Result<Reply, ClientError> {
        let url = format!("{}{}", self.base.as_str(), req.path);
        let mut headers = HeaderMap::new();
        if let Some(token) = bearer {
            let mut value = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| {
                ClientError::Unauthorized {
                    server: self.base.to_string(),
                    message: "the stored token is not a valid header value".into(),
                }
            })?;
            value.set_sensitive(true);
            headers.insert(AUTHORIZATION, value);
        }
        if let Some(range) = &req.range {
            let value = HeaderValue::from_str(range).map_err(|e| self.protocol(e))?;
            headers.insert(reqwest::header::RANGE, value);
        }
        self.requests.fetch_add(1, Ordering::Relaxed);
        let started = Instant::now();
        let answer = self
            .http
            .exchange(req.method.clone(), &url, headers, req.body)
            .map_err(|e| self.transport_error(&e))?;
        tracing::debug!(
            target: "brr_client::http",
            method = %req.method,
            path = %req.path,
            range = req.range.as_deref().unwrap_or(""),
            status = answer.status,
            sent = req.body.map_or(0, |(b, _)| b.len()),
            received = answer.body.len(),
            ms = started.elapsed().as_millis() as u64,
            "request"
        );
        Ok(Reply {
            status: answer.status,
            content_length: answer.content_length,
            body: answer.body,
            attempts: 1,
        })
    }

    /// Classifies a reqwest failure: a refused certificate is [`ClientError::Tls`] (retrying will not
    /// help); everything else — refused or reset connections, timeouts, a peer that closed the
    /// connection mid-answer (even without a TLS close_notify, as a killed server does) — is
    /// [`ClientError::Unreachable`] and retried.
    fn transport_error(&self, e: &reqwest::Error) -> ClientError {
        let detail = crate::one_line_error(e);
        classify_transport(self.base.as_str(), detail)
    }

    /// Refreshes the session unless another thread already did since `seen_generation`, and saves the
    /// rotated tokens. Holds the store's lock so concurrent processes never spend one refresh token
    /// twice: if the stored refresh token changed, another process refreshed and its tokens are used.
    fn refresh(&self, seen_generation: u64) -> Result<(), ClientError> {
        let Credential::Session { store } = &self.credential else {
            return Ok(());
        };
        let mut tokens = self.session.lock().unwrap_or_else(|p| p.into_inner());
        if tokens.generation != seen_generation {
            return Ok(());
        }
        let _lock = store.lock()?;
        let not_logged_in = || ClientError::NotLoggedIn {
            server: self.base.to_string(),
        };
        let mut entry = store.get(self.base.as_str())?.ok_or_else(not_logged_in)?;
        let stored_access = entry.access_token.clone().unwrap_or_default();
        if stored_access != *tokens.access && !stored_access.is_empty() {
            tokens.access = Zeroizing::new(stored_access);
            tokens.generation += 1;
            return Ok(());
        }
        let refresh = Zeroizing::new(entry.refresh_token.clone().ok_or_else(not_logged_in)?);
        let body = Zeroizing::new(
            serde_json::to_vec(&brr_api::auth::RefreshRequest {
                refresh_token: refresh.to_string(),
            })
            .map_err(|e| self.protocol(e))?,
        );
        let req = Request::new(Method::POST, "/api/v1/auth/refresh", false).json(&body);
        // Sent without a bearer: the session lock is held, and the refresh token is the credential.
        let reply = self.send_once(&req, None)?;
        if reply.status != 200 {
            return Err(
                match ClientError::from_status(self.base.as_str(), reply.status, &reply.body, "") {
                    ClientError::Unauthorized { server, .. } => ClientError::Unauthorized {
                        server,
                        message: "the session expired or was ended".into(),
                    },
                    other => other,
                },
            );
        }
        let new: Zeroizing<TokenPair> = Zeroizing::new(self.parse_tokens(&reply.body)?);
        entry.access_token = Some(new.access.clone());
        entry.refresh_token = Some(new.refresh.clone());
        store.put(self.base.as_str(), entry)?;
        tokens.access = Zeroizing::new(new.access.clone());
        tokens.generation += 1;
        tracing::debug!(server = %self.base, "session refreshed");
        Ok(())
    }

    /// Access and refresh token from a login or refresh answer.
    pub(crate) fn parse_tokens(&self, body: &[u8]) -> Result<TokenPair, ClientError> {
        let t: brr_api::auth::TokenResponse =
            serde_json::from_slice(body).map_err(|e| self.protocol(e))?;
        let pair = TokenPair {
            access: t.access_token.clone(),
            refresh: t.refresh_token.clone(),
        };
        let mut t = t;
        t.access_token.zeroize();
        t.refresh_token.zeroize();
        Ok(pair)
    }

    /// A protocol error for an answer that does not parse.
    pub(crate) fn protocol(&self, detail: impl std::fmt::Display) -> ClientError {
        ClientError::Protocol {
            server: self.base.to_string(),
            detail: detail.to_string(),
        }
    }

    /// Sends a JSON request and decodes a JSON answer.
    pub fn json<T: serde::de::DeserializeOwned>(
        &self,
        req: &Request<'_>,
    ) -> Result<T, ClientError> {
        let reply = self.send(req, &[])?;
        serde_json::from_slice(&reply.body).map_err(|e| self.protocol(e))
    }

    /// The stored entry's credential turned into a [`Credential`]: the agent token, or the session.
    pub fn credential_for(
        store: &CredentialStore,
        server: &ServerUrl,
        entry: &Entry,
    ) -> Result<Credential, ClientError> {
        if let Some(t) = &entry.agent_token {
            Ok(Credential::Token(Zeroizing::new(t.clone())))
        } else if entry.access_token.is_some() {
            Ok(Credential::Session {
                store: store.clone(),
            })
        } else {
            Err(ClientError::NotLoggedIn {
                server: server.to_string(),
            })
        }
    }
}

/// Tokens of a session, zeroized on drop.
#[derive(zeroize::Zeroize)]
pub(crate) struct TokenPair {
    pub(crate) access: String,
    pub(crate) refresh: String,
}

/// [`ClientError::Tls`] when the message says the server's certificate was refused, else
/// [`ClientError::Unreachable`].
fn classify_transport(server: &str, detail: String) -> ClientError {
    let lower = detail.to_ascii_lowercase();
    let certificate_words = [
        "certificate",
        "unknownissuer",
        "notvalidforname",
        "unknown ca",
        "bad certificate",
    ];
    let server = server.to_owned();
    if certificate_words.iter().any(|w| lower.contains(w)) {
        ClientError::Tls { server, detail }
    } else {
        ClientError::Unreachable { server, detail }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dropped_connection_is_retried_a_refused_certificate_is_not() {
        let s = "https://h";
        for retried in [
            "error sending request: client error (SendRequest): connection error: peer closed connection without sending TLS close_notify",
            "error sending request: client error (Connect): tcp connect error: Connection refused (os error 111)",
            "error sending request: connection error: Connection reset by peer (os error 104)",
            "operation timed out",
        ] {
            let e = classify_transport(s, retried.into());
            assert!(e.is_retryable(), "{retried}");
            assert_eq!(e.code(), "BRR-N014");
        }
        for refused in [
            "error sending request: client error (Connect): invalid peer certificate: UnknownIssuer",
            "invalid peer certificate: NotValidForName",
        ] {
            let e = classify_transport(s, refused.into());
            assert!(!e.is_retryable(), "{refused}");
            assert_eq!(e.code(), "BRR-N015");
        }
    }
}
