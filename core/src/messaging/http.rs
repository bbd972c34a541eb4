//! The `http` transport: each message is a JSON request through one of the
//! project's HTTP connectors, for mail (and text message) APIs. The body is
//! a JSON template whose strings may use `{{to}}`, `{{from}}`,
//! `{{subject}}`, `{{text}}` and `{{html}}`; they are filled inside the JSON
//! value, so a message can never change the request's shape.

use super::check_fields;
use crate::connectors::{ConnectorCall, HttpConnector, Method};
use crate::error::{Error, ErrorCode, Result};
use crate::placeholders::{split, Part};
use serde_json::{json, Map, Value};

/// The fields of `email.http` (documentation test).
pub(crate) const HTTP_FIELDS: [&str; 4] = ["connector", "method", "endpoint", "body"];
/// What a body template may use.
const BODY_PLACEHOLDERS: [&str; 5] = ["to", "from", "subject", "text", "html"];

/// `email.http`: which connector, and what request a message is.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpSettings {
    /// The id of a connector in the project's `connectors`.
    pub connector: String,
    pub method: Method,
    /// Path and query, appended to the connector's base URL.
    pub endpoint: String,
    /// The JSON body template.
    pub body: Value,
}

fn default_body() -> Value {
    json!({"from": "{{from}}", "to": "{{to}}", "subject": "{{subject}}", "text": "{{text}}", "html": "{{html}}"})
}

/// Every string in `v` names only body placeholders.
fn check_body(v: &Value, path: &str) -> Result<()> {
    match v {
        Value::String(s) => {
            for part in split(s).map_err(|m| Error::config(format!("{path}: {m}")))? {
                if let Part::Name(n) = part {
                    if !BODY_PLACEHOLDERS.contains(&n) {
                        return Err(Error::config(format!(
                            "{path} uses {{{{{n}}}}}; a message body may use {{{{to}}}}, {{{{from}}}}, {{{{subject}}}}, {{{{text}}}}, {{{{html}}}}"
                        )));
                    }
                }
            }
            Ok(())
        }
        Value::Array(a) => a.iter().enumerate().try_for_each(|(i, x)| check_body(x, &format!("{path}.{i}"))),
        Value::Object(m) => m.iter().try_for_each(|(k, x)| check_body(x, &format!("{path}.{k}"))),
        _ => Ok(()),
    }
}

/// `v` with its strings filled from `vars` (a whole-string `{{html}}` with
/// no HTML body becomes `null`).
fn fill(v: &Value, vars: &[(&str, Option<&str>)]) -> Value {
    match v {
        Value::String(s) => {
            let Ok(parts) = split(s) else { return v.clone() };
            if let [Part::Name(n)] = parts.as_slice() {
                if let Some((_, None)) = vars.iter().find(|(k, _)| k == n) {
                    return Value::Null;
                }
            }
            let mut out = String::new();
            for part in parts {
                match part {
                    Part::Text(t) => out.push_str(t),
                    Part::Name(n) => out.push_str(vars.iter().find(|(k, _)| *k == n).and_then(|(_, v)| *v).unwrap_or_default()),
                }
            }
            Value::String(out)
        }
        Value::Array(a) => Value::Array(a.iter().map(|x| fill(x, vars)).collect()),
        Value::Object(m) => Value::Object(m.iter().map(|(k, x)| (k.clone(), fill(x, vars))).collect()),
        other => other.clone(),
    }
}

impl HttpSettings {
    pub fn from_json(v: &Value) -> Result<HttpSettings> {
        let m: &Map<String, Value> = v.as_object().ok_or_else(|| Error::config("email.http must be an object"))?;
        check_fields(m, "email.http", &HTTP_FIELDS)?;
        let connector = super::text_field(m, "email.http", "connector")?.ok_or_else(|| Error::config("email.http.connector is required"))?;
        let method = match super::text_field(m, "email.http", "method")? {
            None => Method::Post,
            Some(s) => Method::parse(&s).filter(|m| matches!(m, Method::Post | Method::Put)).ok_or_else(|| Error::config("email.http.method must be POST or PUT"))?,
        };
        let endpoint = super::text_field(m, "email.http", "endpoint")?.unwrap_or_default();
        let body = match m.get("body") {
            None | Some(Value::Null) => default_body(),
            Some(b @ Value::Object(_)) => b.clone(),
            Some(_) => return Err(Error::config("email.http.body must be a JSON object")),
        };
        check_body(&body, "email.http.body")?;
        Ok(HttpSettings { connector, method, endpoint, body })
    }

    /// Sends one message through `connector`; a refusal (not 2xx) or an
    /// unreachable API is `network`, as for SMTP.
    pub async fn send(&self, connector: Option<&HttpConnector>, message: [(&str, Option<&str>); 5]) -> Result<()> {
        let connector = connector.ok_or_else(|| Error::config(format!("email.http.connector {:?} is not among the project's connectors", self.connector)))?;
        let call = ConnectorCall { method: self.method, endpoint: self.endpoint.clone(), headers: Vec::new(), body: Some(fill(&self.body, &message)), timeout: None };
        connector.call(&call).await.map(|_| ()).map_err(|e| Error::new(ErrorCode::Network, format!("the mail API did not take the message: {}", e.message)))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn bodies_fill_inside_json_and_name_only_message_fields() {
        let s = HttpSettings::from_json(&json!({"connector": "mail", "body": {"personalizations": [{"to": [{"email": "{{to}}"}]}], "subject": "[x] {{subject}}", "content": "{{html}}"}})).unwrap();
        let filled = fill(&s.body, &[("to", Some("a\"@b.c")), ("from", Some("f")), ("subject", Some("S")), ("text", Some("t")), ("html", None)]);
        assert_eq!(filled, json!({"personalizations": [{"to": [{"email": "a\"@b.c"}]}], "subject": "[x] S", "content": null}));
        for (bad, needle) in [
            (json!({"body": {}}), "connector"),
            (json!({"connector": "m", "body": {"x": "{{code}}"}}), "email.http.body.x"),
            (json!({"connector": "m", "method": "GET"}), "POST or PUT"),
            (json!({"connector": "m", "body": "text"}), "JSON object"),
            (json!({"connector": "m", "headers": {}}), "email.http.headers"),
        ] {
            let e = HttpSettings::from_json(&bad).unwrap_err();
            assert!(e.message.contains(needle), "{bad}: {e}");
        }
    }
}
