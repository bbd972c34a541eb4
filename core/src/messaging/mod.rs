//! Mail to people: the project's `email` section (how mail leaves, who it
//! is from, the message templates) and sending one message.
//!
//! Transports: `smtp` (lettre's async SMTP client: STARTTLS, TLS or, on
//! loopback only, plain; optional login), `http` (a JSON request through
//! one of the project's HTTP connectors, for mail APIs) and `console`, which prints the
//! message to standard error for development and is refused unless the
//! project's `baseUrl` is a loopback address. Templates take `{{name}}`
//! placeholders; the names a template may use are checked when the project
//! loads, and values are HTML-escaped in HTML bodies.

mod http;
mod smtp;

use crate::error::{Error, ErrorCode, Result};
use crate::placeholders::{html_escape, split, Part};
use serde_json::{Map, Value};
use std::time::Duration;

pub use http::HttpSettings;
pub use smtp::{SmtpSettings, SmtpTls};
#[cfg(test)]
pub(crate) use http::HTTP_FIELDS;
#[cfg(test)]
pub(crate) use smtp::SMTP_FIELDS;

/// How mail leaves.
#[derive(Debug, Clone, PartialEq)]
pub enum Transport {
    Smtp(SmtpSettings),
    /// A request through one of the project's HTTP connectors.
    Http(HttpSettings),
    /// Printed to standard error (development only).
    Console,
}

/// A message template: subject, text body, optional HTML body.
#[derive(Debug, Clone, PartialEq)]
pub struct MessageTemplate {
    pub subject: String,
    pub text: String,
    pub html: Option<String>,
}

/// The `email` section of the project file.
#[derive(Debug, Clone, PartialEq)]
pub struct EmailSettings {
    pub transport: Transport,
    /// `From:`, e.g. `Example <no-reply@example.com>`.
    pub from: String,
    /// The message carrying a one-time code (`emailCode` steps).
    pub code_template: MessageTemplate,
    /// The message carrying a sign-in link and its code (`emailCode` steps
    /// with `link`).
    pub link_template: MessageTemplate,
}

/// The fields of `email`, `email.smtp` and a template (documentation test).
pub(crate) const FIELDS: [&str; 5] = ["transport", "from", "smtp", "http", "templates"];
pub(crate) const TEMPLATE_FIELDS: [&str; 3] = ["subject", "text", "html"];
const TEMPLATES: [&str; 2] = ["code", "link"];

/// What a code message may say: `{{code}}`, `{{email}}`, `{{minutes}}`
/// (how long the code lives), `{{project}}` (the project id), and the
/// flow's user's `{{user.name}}`, `{{user.givenName}}`, `{{user.familyName}}`,
/// `{{user.nickname}}`, `{{user.preferredUsername}}` and `{{user.locale}}`
/// (empty when the flow has no user yet, or the user has no such field).
pub const CODE_PLACEHOLDERS: [&str; 10] = [
    "code",
    "email",
    "minutes",
    "project",
    "user.name",
    "user.givenName",
    "user.familyName",
    "user.nickname",
    "user.preferredUsername",
    "user.locale",
];

fn default_link_template() -> MessageTemplate {
    MessageTemplate {
        subject: "Your sign-in link".into(),
        text: "Open this link to sign in:\n{{link}}\n\nOr type the code {{code}}. Both work for {{minutes}} minutes, once.\n\nIf you did not ask for it, ignore this message.\n".into(),
        html: Some(
            "<p><a href=\"{{link}}\">Sign in</a></p>\n\
             <p>Or type the code <strong>{{code}}</strong>. Both work for {{minutes}} minutes, once.</p>\n\
             <p>If you did not ask for it, ignore this message.</p>\n"
                .into(),
        ),
    }
}

fn default_code_template() -> MessageTemplate {
    MessageTemplate {
        subject: "Your sign-in code: {{code}}".into(),
        text: "Your code is {{code}}. It works for {{minutes}} minutes.\n\nIf you did not ask for it, ignore this message.\n".into(),
        html: Some(
            "<p>Your code is <strong>{{code}}</strong>. It works for {{minutes}} minutes.</p>\n\
             <p>If you did not ask for it, ignore this message.</p>\n"
                .into(),
        ),
    }
}

pub(super) fn text_field(m: &Map<String, Value>, what: &str, k: &str) -> Result<Option<String>> {
    match m.get(k) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if !s.is_empty() => Ok(Some(s.clone())),
        Some(_) => Err(Error::config(format!("{what}.{k} must be a non-empty string"))),
    }
}

pub(super) fn check_fields(m: &Map<String, Value>, what: &str, fields: &[&str]) -> Result<()> {
    match m.keys().find(|k| !fields.contains(&k.as_str())) {
        Some(k) => Err(Error::config(format!("unknown field {what}.{k}"))),
        None => Ok(()),
    }
}

/// Whether a host name or address is loopback (`localhost`, 127/8, ::1).
pub(crate) fn is_loopback_host(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost") || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Whether `base_url`'s host is a loopback address.
fn is_loopback(base_url: &str) -> bool {
    url::Url::parse(base_url).ok().and_then(|u| u.host_str().map(is_loopback_host)).unwrap_or(false)
}

impl MessageTemplate {
    fn from_json(v: &Value, what: &str, allowed: &[&str], default: MessageTemplate) -> Result<MessageTemplate> {
        let m = v.as_object().ok_or_else(|| Error::config(format!("{what} must be an object")))?;
        check_fields(m, what, &TEMPLATE_FIELDS)?;
        let t = MessageTemplate {
            subject: text_field(m, what, "subject")?.unwrap_or(default.subject),
            text: text_field(m, what, "text")?.unwrap_or(default.text),
            html: match m.get("html") {
                Some(_) => text_field(m, what, "html")?,
                None => default.html,
            },
        };
        t.check(what, allowed)?;
        Ok(t)
    }

    /// Every placeholder names something the message can fill.
    fn check(&self, what: &str, allowed: &[&str]) -> Result<()> {
        let parts = [("subject", Some(&self.subject)), ("text", Some(&self.text)), ("html", self.html.as_ref())];
        for (field, text) in parts {
            let Some(text) = text else { continue };
            for part in split(text).map_err(|m| Error::config(format!("{what}.{field}: {m}")))? {
                if let Part::Name(name) = part {
                    if !allowed.contains(&name) {
                        return Err(Error::config(format!(
                            "{what}.{field} uses {{{{{name}}}}}, which this message cannot fill; it may use {}",
                            allowed.iter().map(|a| format!("{{{{{a}}}}}")).collect::<Vec<_>>().join(", ")
                        )));
                    }
                }
            }
        }
        Ok(())
    }

    /// The message with `vars` filled in: as they are in the text body,
    /// HTML-escaped in the HTML body, and without line breaks in the subject.
    pub fn render(&self, vars: &[(&str, &str)]) -> Result<(String, String, Option<String>)> {
        let fill = |text: &str, escape: fn(&str) -> String| -> Result<String> {
            let mut out = String::with_capacity(text.len() + 16);
            for part in split(text).map_err(|m| Error::config(m.to_owned()))? {
                match part {
                    Part::Text(t) => out.push_str(t),
                    Part::Name(n) => {
                        let v = vars.iter().find(|(k, _)| *k == n).map(|(_, v)| *v).ok_or_else(|| {
                            Error::new(ErrorCode::Internal, format!("message placeholder {{{{{n}}}}} has no value"))
                        })?;
                        out.push_str(&escape(v));
                    }
                }
            }
            Ok(out)
        };
        let subject = fill(&self.subject, |v| v.chars().filter(|c| !c.is_control()).collect())?;
        let text = fill(&self.text, str::to_owned)?;
        let html = self.html.as_deref().map(|h| fill(h, html_escape)).transpose()?;
        Ok((subject, text, html))
    }
}

/// `k***@example.com` for `kim@example.com`.
fn mask(address: &str) -> String {
    match address.split_once('@') {
        Some((local, domain)) => format!("{}***@{domain}", local.chars().next().unwrap_or('*')),
        None => "***".into(),
    }
}


impl EmailSettings {
    /// `email` from the project file; `None` when the project has none.
    pub fn from_json(value: Option<&Value>, base_url: &str) -> Result<Option<EmailSettings>> {
        let Some(value) = value.filter(|v| !v.is_null()) else { return Ok(None) };
        let m = value.as_object().ok_or_else(|| Error::config("email must be an object"))?;
        check_fields(m, "email", &FIELDS)?;
        let from = text_field(m, "email", "from")?.ok_or_else(|| Error::config("email.from is required"))?;
        mailbox(&from, "email.from")?;
        let transport = match text_field(m, "email", "transport")?.as_deref() {
            Some("smtp") => {
                let s = m.get("smtp").ok_or_else(|| Error::config("email.smtp is required with transport smtp"))?;
                Transport::Smtp(SmtpSettings::from_json(s)?)
            }
            Some("http") => {
                let h = m.get("http").ok_or_else(|| Error::config("email.http is required with transport http"))?;
                Transport::Http(HttpSettings::from_json(h)?)
            }
            Some("console") => {
                if m.contains_key("smtp") || m.contains_key("http") {
                    return Err(Error::config("email.smtp and email.http are only for transports smtp and http"));
                }
                if !is_loopback(base_url) {
                    return Err(Error::config(
                        "email transport console prints codes to the terminal and is for development only: baseUrl must be a loopback address",
                    ));
                }
                Transport::Console
            }
            Some(other) => return Err(Error::config(format!("email.transport {other:?} is not smtp, http or console"))),
            None => return Err(Error::config("email.transport is required (smtp, http or console)")),
        };
        let mut code_template = default_code_template();
        let mut link_template = default_link_template();
        if let Some(t) = m.get("templates").filter(|v| !v.is_null()) {
            let t = t.as_object().ok_or_else(|| Error::config("email.templates must be an object"))?;
            check_fields(t, "email.templates", &TEMPLATES)?;
            if let Some(code) = t.get("code") {
                code_template = MessageTemplate::from_json(code, "email.templates.code", &CODE_PLACEHOLDERS, code_template)?;
            }
            if let Some(link) = t.get("link") {
                // What a code message may say, and `{{link}}`.
                let allowed: Vec<&str> = std::iter::once("link").chain(CODE_PLACEHOLDERS).collect();
                link_template = MessageTemplate::from_json(link, "email.templates.link", &allowed, link_template)?;
                if !link_template.text.contains("{{link}}") {
                    return Err(Error::config("email.templates.link.text must carry {{link}} (every message has a text body)"));
                }
            }
        }
        Ok(Some(EmailSettings { transport, from, code_template, link_template }))
    }

    /// The connector the `http` transport sends through, if it uses one.
    pub fn connector_id(&self) -> Option<&str> {
        match &self.transport {
            Transport::Http(h) => Some(&h.connector),
            _ => None,
        }
    }

    /// Sends `template` filled with `vars` to `to`; a transport failure is
    /// `network` and names no secret. `connector` is the project's connector
    /// named by [`EmailSettings::connector_id`], for the `http` transport.
    pub async fn send(&self, to: &str, template: &MessageTemplate, vars: &[(&str, &str)], connector: Option<&crate::connectors::HttpConnector>) -> Result<()> {
        let (subject, text, html) = template.render(vars)?;
        match &self.transport {
            Transport::Console => {
                // The address is masked: logs are kept, and a log is no place
                // for it. The body is shown (it carries the code or link the
                // developer needs), indented under its subject.
                let body: String = text.replace(to, &mask(to)).lines().filter(|l| !l.trim().is_empty()).map(|l| format!("\n    {l}")).collect();
                eprintln!("[idflow email, development only] to {}: {subject}{body}", mask(to));
                Ok(())
            }
            Transport::Smtp(s) => s.send(&self.from, to, &subject, text, html).await,
            Transport::Http(h) => {
                let message = [("to", Some(to)), ("from", Some(self.from.as_str())), ("subject", Some(subject.as_str())), ("text", Some(text.as_str())), ("html", html.as_deref())];
                h.send(connector, message).await
            }
        }
    }
}

/// A mail address (`Name <user@example.com>` or `user@example.com`).
fn mailbox(s: &str, what: &str) -> Result<lettre::message::Mailbox> {
    s.parse().map_err(|_| Error::config(format!("{what} is not a mail address (`Name <user@example.com>` or `user@example.com`)")))
}

/// The longest a mail server may take, whatever the settings say.
const MAX_TIMEOUT: Duration = Duration::from_secs(60);

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn console_is_for_loopback_projects_only() {
        let console = json!({"transport": "console", "from": "no-reply@example.com"});
        assert!(EmailSettings::from_json(Some(&console), "http://127.0.0.1:8080").unwrap().is_some());
        assert!(EmailSettings::from_json(Some(&console), "http://localhost:8080").unwrap().is_some());
        let e = EmailSettings::from_json(Some(&console), "https://auth.example.com").unwrap_err();
        assert!(e.message.contains("development only"), "{e}");
        assert_eq!(EmailSettings::from_json(None, "https://auth.example.com").unwrap(), None);
    }

    #[test]
    fn templates_name_only_what_they_can_fill_and_escape_html() {
        let bad = json!({"transport": "console", "from": "a@example.com", "templates": {"code": {"text": "Hi {{user.password}}: {{code}}"}}});
        let e = EmailSettings::from_json(Some(&bad), "http://127.0.0.1").unwrap_err();
        assert!(e.message.contains("email.templates.code.text") && e.message.contains("{{user.password}}"), "{e}");
        let named = json!({"transport": "console", "from": "a@example.com", "templates": {"code": {"text": "Hi {{user.givenName}}: {{code}}"}}});
        assert!(EmailSettings::from_json(Some(&named), "http://127.0.0.1").is_ok());
        for (bad, needle) in [
            (json!({"transport": "console", "from": "a@example.com", "templates": {"code": {"subject": "{{code"}}}), "closing"),
            (json!({"transport": "carrier-pigeon", "from": "a@example.com"}), "carrier-pigeon"),
            (json!({"transport": "console"}), "email.from"),
            (json!({"transport": "console", "from": "not an address"}), "email.from"),
            (json!({"transport": "smtp", "from": "a@example.com"}), "email.smtp"),
            (json!({"transport": "console", "from": "a@example.com", "bcc": "x"}), "email.bcc"),
        ] {
            let e = EmailSettings::from_json(Some(&bad), "http://127.0.0.1").unwrap_err();
            assert_eq!(e.code, ErrorCode::Config);
            assert!(e.message.contains(needle), "{bad}: {e}");
        }
        let t = MessageTemplate { subject: "Code {{code}}".into(), text: "{{email}}: {{code}}".into(), html: Some("<p>{{email}}</p>".into()) };
        let (subject, text, html) = t.render(&[("code", "123456\r\nBcc: x"), ("email", "<a@b.c>")]).unwrap();
        assert_eq!(subject, "Code 123456Bcc: x");
        assert_eq!(text, "<a@b.c>: 123456\r\nBcc: x");
        assert_eq!(html.unwrap(), "<p>&lt;a@b.c&gt;</p>");
    }
}
