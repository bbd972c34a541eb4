//! The `smtp` transport: lettre's async client over tokio, TLS by rustls
//! (aws-lc) with the system's roots.

use super::{mailbox, MAX_TIMEOUT};
use crate::error::{Error, ErrorCode, Result};
use lettre::message::MultiPart;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde_json::Value;
use std::time::Duration;

/// How the SMTP connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpTls {
    /// STARTTLS, required (port 587 by default).
    StartTls,
    /// TLS from the first byte (port 465 by default).
    Tls,
    /// None: only to a loopback relay (a local MTA or a test server).
    None,
}

/// `email.smtp` of the project file.
#[derive(Debug, Clone, PartialEq)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    pub tls: SmtpTls,
    pub username: Option<String>,
    /// `${ENV}` references are resolved at load.
    pub password: Option<String>,
    pub timeout: Duration,
}

pub(crate) const SMTP_FIELDS: [&str; 6] = ["host", "port", "tls", "username", "password", "timeout"];

impl SmtpSettings {
    pub(super) fn from_json(v: &Value) -> Result<SmtpSettings> {
        let m = v.as_object().ok_or_else(|| Error::config("email.smtp must be an object"))?;
        super::check_fields(m, "email.smtp", &SMTP_FIELDS)?;
        let host = super::text_field(m, "email.smtp", "host")?.ok_or_else(|| Error::config("email.smtp.host is required"))?;
        let tls = match super::text_field(m, "email.smtp", "tls")?.as_deref() {
            None | Some("starttls") => SmtpTls::StartTls,
            Some("tls") => SmtpTls::Tls,
            Some("none") => SmtpTls::None,
            Some(other) => return Err(Error::config(format!("email.smtp.tls {other:?} is not starttls, tls or none"))),
        };
        if tls == SmtpTls::None && !super::is_loopback_host(&host) {
            return Err(Error::config("email.smtp.tls none sends mail in clear: only to a loopback host"));
        }
        let port = match m.get("port") {
            None | Some(Value::Null) => match tls {
                SmtpTls::Tls => 465,
                _ => 587,
            },
            Some(p) => p
                .as_u64()
                .and_then(|p| u16::try_from(p).ok())
                .filter(|p| *p > 0)
                .ok_or_else(|| Error::config("email.smtp.port must be a port number"))?,
        };
        let username = super::text_field(m, "email.smtp", "username")?;
        let password = super::text_field(m, "email.smtp", "password")?.map(|p| crate::env::resolve_env(&p)).transpose()?;
        if username.is_some() != password.is_some() {
            return Err(Error::config("email.smtp needs both username and password, or neither"));
        }
        let timeout = match m.get("timeout") {
            None | Some(Value::Null) => Duration::from_secs(10),
            Some(t) => t
                .as_f64()
                .filter(|s| *s > 0.0)
                .and_then(|s| Duration::try_from_secs_f64(s).ok())
                .filter(|d| *d <= MAX_TIMEOUT)
                .ok_or_else(|| Error::config("email.smtp.timeout must be seconds in (0, 60]"))?,
        };
        Ok(SmtpSettings { host, port, tls, username, password, timeout })
    }

    pub(super) async fn send(&self, from: &str, to: &str, subject: &str, text: String, html: Option<String>) -> Result<()> {
        let message = Message::builder().from(mailbox(from, "email.from")?).to(mailbox(to, "the recipient")?).subject(subject);
        let message = match html {
            Some(html) => message.multipart(MultiPart::alternative_plain_html(text, html)),
            None => message.body(text),
        }
        .map_err(|_| Error::internal("the message could not be built"))?;
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(self.host.as_str()).port(self.port).timeout(Some(self.timeout));
        builder = match self.tls {
            SmtpTls::None => builder.tls(Tls::None),
            SmtpTls::StartTls | SmtpTls::Tls => {
                let params = TlsParameters::new(self.host.clone()).map_err(|_| Error::config("email.smtp.host is not a TLS server name"))?;
                builder.tls(if self.tls == SmtpTls::Tls { Tls::Wrapper(params) } else { Tls::Required(params) })
            }
        };
        if let (Some(u), Some(p)) = (&self.username, &self.password) {
            builder = builder.credentials(Credentials::new(u.clone(), p.clone()));
        }
        let transport = builder.build();
        transport.send(message).await.map(|_| ()).map_err(|e| {
            let why = if e.is_permanent() {
                "the mail server refused the message"
            } else if e.is_timeout() {
                "the mail server did not answer in time"
            } else {
                "the mail server could not be reached"
            };
            Error::new(ErrorCode::Network, why)
        })
    }
}
