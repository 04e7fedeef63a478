//! Calls of the service API other than repository files: login, logout, agent enrolment, repositories.

use brr_api::repos::{CreateRepository, EnrollAgent, EnrolledAgent, Repository};
use reqwest::Method;
use zeroize::Zeroizing;

use crate::ClientError;
use crate::client::{Client, ClientOptions, Credential, Request};
use crate::credentials::{CredentialStore, Entry};
use crate::url::ServerUrl;

/// What the login flow asks of the user when the server wants more than a password.
pub trait LoginPrompt {
    /// A current TOTP code for the account, or `None` if none can be given (no terminal).
    fn totp(&mut self) -> Option<Zeroizing<String>>;
}

/// Logs in with e-mail and password, then a TOTP code if the server asks for one, and stores the
/// session (access and refresh token) for `server` in `store`, replacing any earlier entry.
pub fn login(
    server: &ServerUrl,
    options: &ClientOptions,
    store: &CredentialStore,
    email: &str,
    password: &str,
    prompt: &mut dyn LoginPrompt,
) -> Result<(), ClientError> {
    let client = Client::new(server, Credential::None, options)?;
    let mut totp: Option<Zeroizing<String>> = None;
    let tokens = loop {
        let body = Zeroizing::new(
            serde_json::to_vec(&brr_api::auth::LoginRequest {
                email: email.to_owned(),
                password: password.to_owned(),
                totp: totp.as_ref().map(|t| t.to_string()),
            })
            .map_err(|e| client.protocol(e))?,
        );
        let req = Request::new(Method::POST, "/api/v1/auth/login", false).json(&body);
        match client.send(&req, &[]) {
            Ok(reply) => break client.parse_tokens(&reply.body)?,
            Err(ClientError::TotpRequired { server }) if totp.is_none() => {
                totp = Some(prompt.totp().ok_or(ClientError::TotpRequired { server })?);
            }
            Err(e) => return Err(e),
        }
    };
    let _lock = store.lock()?;
    let ca_cert = store
        .get(server.as_str())?
        .and_then(|e| e.ca_cert.clone())
        .filter(|_| options.ca_cert.is_none());
    let mut entry = Entry::default();
    entry.email = Some(email.to_owned());
    entry.access_token = Some(tokens.access.clone());
    entry.refresh_token = Some(tokens.refresh.clone());
    entry.ca_cert = options.ca_cert.clone().or(ca_cert);
    store.put(server.as_str(), entry)
}

/// Enrols this machine as an agent of the company that owns `api_key`, named `name`, and stores the
/// agent's own token for `server`. Returns the agent ID.
pub fn enroll(
    server: &ServerUrl,
    options: &ClientOptions,
    store: &CredentialStore,
    api_key: &str,
    name: &str,
) -> Result<String, ClientError> {
    if name.is_empty() || name.len() > 128 || name.chars().any(char::is_control) {
        return Err(ClientError::Rejected {
            server: server.to_string(),
            status: 400,
            code: "client.invalid_name".into(),
            message: "the agent name must be 1 to 128 printable characters".into(),
        });
    }
    let client = Client::new(
        server,
        Credential::Token(Zeroizing::new(api_key.to_owned())),
        options,
    )?;
    let body = serde_json::to_vec(&EnrollAgent {
        name: name.to_owned(),
    })
    .map_err(|e| client.protocol(e))?;
    let req = Request::new(Method::POST, "/api/v1/agents/enroll", false).json(&body);
    let mut enrolled: EnrolledAgent = client.json(&req)?;
    let token = Zeroizing::new(std::mem::take(&mut enrolled.token));
    if !token.starts_with("brra_") {
        return Err(client.protocol("the enrolment answer holds no agent token"));
    }
    let _lock = store.lock()?;
    let mut entry = Entry::default();
    entry.agent_id = Some(enrolled.agent_id.clone());
    entry.agent_token = Some(token.to_string());
    entry.ca_cert = options.ca_cert.clone();
    store.put(server.as_str(), entry)?;
    Ok(enrolled.agent_id.clone())
}

/// Ends the stored session on the server (best effort) and removes the entry of `server`. Returns
/// whether an entry existed.
pub fn logout(
    server: &ServerUrl,
    options: &ClientOptions,
    store: &CredentialStore,
) -> Result<bool, ClientError> {
    let _lock = store.lock()?;
    let Some(entry) = store.get(server.as_str())? else {
        return Ok(false);
    };
    if entry.refresh_token.is_some() {
        let mut options = options.clone();
        options.ca_cert = options.ca_cert.or_else(|| entry.ca_cert.clone());
        let token = Zeroizing::new(entry.access_token.clone().unwrap_or_default());
        match Client::new(server, Credential::Token(token), &options) {
            Ok(client) => {
                let req = Request::new(Method::POST, "/api/v1/auth/logout", false);
                if let Err(e) = client.send(&req, &[]) {
                    tracing::warn!("the server did not confirm the logout: {e}");
                }
            }
            Err(e) => tracing::warn!("cannot reach the server to end the session: {e}"),
        }
    }
    store.remove(server.as_str())?;
    Ok(true)
}

/// The repositories API of one server.
#[derive(Debug)]
pub struct Repos<'a> {
    client: &'a Client,
}

impl<'a> Repos<'a> {
    /// Over `client`.
    pub fn new(client: &'a Client) -> Self {
        Repos { client }
    }

    /// `POST /repos`: creates the repository; `Ok(false)` if it exists already (409).
    pub fn create(&self, name: &str, append_only: bool) -> Result<bool, ClientError> {
        crate::url::validate_repo_name(name)?;
        let body = serde_json::to_vec(&CreateRepository {
            name: name.to_owned(),
            append_only,
            delete_delay_secs: None,
        })
        .map_err(|e| self.client.protocol(e))?;
        let req = Request::new(Method::POST, "/api/v1/repos", false).json(&body);
        match self.client.send(&req, &[]) {
            Ok(_) => Ok(true),
            Err(ClientError::Conflict { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// `GET /repos/{name}`: the repository with its usage, as the server describes it.
    pub fn get(&self, name: &str) -> Result<Repository, ClientError> {
        crate::url::validate_repo_name(name)?;
        let req = Request::new(Method::GET, format!("/api/v1/repos/{name}"), true)
            .what(format!("repository {name:?}"));
        self.client.json(&req)
    }

    /// `GET /repos`: the company's repositories with usage.
    pub fn list(&self) -> Result<Vec<Repository>, ClientError> {
        let req = Request::new(Method::GET, "/api/v1/repos", true);
        self.client.json(&req)
    }
}
