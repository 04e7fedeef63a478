//! Outgoing mail: a [`Mailer`] trait with a development outbox (`.eml` files) and SMTP via lettre.

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;

use crate::config::SmtpConfig;
use crate::error::{Error, Result};

/// One plain-text message.
#[derive(Debug, Clone)]
pub struct Mail {
    /// Recipient address.
    pub to: String,
    /// Subject line.
    pub subject: String,
    /// Plain-text body.
    pub body: String,
}

/// A boxed future returned by [`Mailer::send`].
pub type SendFuture<'a> = Pin<Box<dyn Future<Output = Result<()>> + Send + 'a>>;

/// Sends mail.
pub trait Mailer: Send + Sync + 'static {
    /// Delivers `mail` (or queues it durably).
    fn send(&self, mail: Mail) -> SendFuture<'_>;
}

/// Development transport: every message becomes `<dir>/<time>-<n>.eml`.
#[derive(Debug)]
pub struct Outbox {
    dir: PathBuf,
    from: String,
    counter: std::sync::atomic::AtomicU64,
}

impl Outbox {
    /// An outbox writing to `dir` (created if missing).
    pub fn new(dir: PathBuf, from: String) -> Result<Self> {
        std::fs::create_dir_all(&dir)?;
        Ok(Outbox {
            dir,
            from,
            counter: Default::default(),
        })
    }
}

impl Mailer for Outbox {
    fn send(&self, mail: Mail) -> SendFuture<'_> {
        Box::pin(async move {
            let n = self
                .counter
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let stamp = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0);
            let text = format!(
                "From: {}\r\nTo: {}\r\nSubject: {}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{}\r\n",
                self.from, mail.to, mail.subject, mail.body
            );
            let path = self.dir.join(format!("{stamp:024}-{n:06}.eml"));
            tokio::fs::write(path, text).await?;
            Ok(())
        })
    }
}

/// SMTP relay transport.
pub struct Smtp {
    transport: lettre::AsyncSmtpTransport<lettre::Tokio1Executor>,
    from: lettre::message::Mailbox,
}

impl std::fmt::Debug for Smtp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Smtp(..)")
    }
}

impl Smtp {
    /// Builds a transport for `cfg` (STARTTLS unless `implicit_tls`).
    pub fn new(cfg: &SmtpConfig, from: &str) -> Result<Self> {
        use lettre::transport::smtp::authentication::Credentials;
        type T = lettre::AsyncSmtpTransport<lettre::Tokio1Executor>;
        let mut b = if cfg.implicit_tls {
            T::relay(&cfg.host)
        } else {
            T::starttls_relay(&cfg.host)
        }
        .map_err(|e| Error::Config(format!("smtp: {e}")))?;
        if let Some(port) = cfg.port {
            b = b.port(port);
        }
        if let (Some(u), Some(p)) = (&cfg.username, &cfg.password) {
            b = b.credentials(Credentials::new(u.clone(), p.clone()));
        }
        let from = from
            .parse()
            .map_err(|e| Error::Config(format!("mail_from: {e}")))?;
        Ok(Smtp {
            transport: b.build(),
            from,
        })
    }
}

impl Mailer for Smtp {
    fn send(&self, mail: Mail) -> SendFuture<'_> {
        Box::pin(async move {
            use lettre::AsyncTransport;
            let to = mail
                .to
                .parse()
                .map_err(|e| Error::internal(format!("recipient: {e}")))?;
            let msg = lettre::Message::builder()
                .from(self.from.clone())
                .to(to)
                .subject(mail.subject)
                .body(mail.body)
                .map_err(Error::internal)?;
            self.transport.send(msg).await.map_err(Error::internal)?;
            Ok(())
        })
    }
}
