//! `connector`: one call to a project connector (the generic HTTP
//! connector). The body lands at `connectors.<contextKey>`, the status and
//! headers at `connectorResponses.<contextKey>`.

use super::prelude::*;
use crate::connectors::{ConnectorCall, Method};
use crate::flow::template::{render_header, render_json, render_url};

#[derive(Debug, Clone, PartialEq)]
pub struct ConnectorStep {
    /// The project connector's id.
    pub connector: String,
    pub method: Method,
    /// Path and query, appended to the connector's base URL; may hold templates.
    pub endpoint: String,
    /// Seconds; defaults to 5.
    pub timeout: f64,
    /// Extra headers (templates allowed).
    pub headers: Vec<(String, String)>,
    /// A JSON body template.
    pub body: Option<Value>,
    /// Where the response lands: the body at `connectors.<context_key>`, the
    /// HTTP status, headers and body at `connectorResponses.<context_key>`.
    pub context_key: String,
    pub next: String,
}

impl StepType for ConnectorStep {
    const NAME: &'static str = "connector";
    const ON_ERROR: bool = true;

    fn parse(p: &mut StepParser<'_>, f: &mut Fields<'_>) -> Option<Self> {
        let id = f.step.unwrap_or("").to_owned();
        let connector = f.string(p.p, "connector", true).unwrap_or_default();
        let method = match f.string(p.p, "method", false).as_deref() {
            None => Method::Get,
            Some(m) => Method::parse(m).unwrap_or_else(|| {
                p.p.add(Some(&id), f.path("method"), format!("unknown method {m:?}; expected GET, POST, PUT, PATCH or DELETE"));
                Method::Get
            }),
        };
        let endpoint = f.string(p.p, "endpoint", false).unwrap_or_default();
        let timeout = match f.get("timeout") {
            None | Some(Value::Null) => 5.0,
            Some(Value::Number(n)) => match n.as_f64() {
                Some(t) if t > 0.0 && t <= 60.0 => t,
                _ => {
                    p.p.add(Some(&id), "timeout", "must be more than 0 and at most 60 seconds");
                    5.0
                }
            },
            Some(other) => {
                p.p.add(Some(&id), "timeout", format!("must be a number of seconds, not {}", kind_of(other)));
                5.0
            }
        };
        let mut headers = Vec::new();
        for (k, v) in f.object(p.p, "headers").into_iter().flatten() {
            match v.as_str() {
                Some(s) => headers.push((k.clone(), s.to_owned())),
                None => p.p.add(Some(&id), format!("headers.{k}"), "must be a string"),
            }
        }
        let body = f.get("body").cloned().filter(|b| !b.is_null());
        let context_key = f.string(p.p, "contextKey", true).unwrap_or_default();
        if !context_key.is_empty() && !context_key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
            p.p.add(Some(&id), "contextKey", "may only contain letters, digits, - and _");
        }
        // Every {{path}} names what it reads, as condition keys do: a typo
        // is a problem here, not an empty value at run time, and a flow
        // cannot read the whole `form` past the declared-inputs rule.
        let mut templates: Vec<(String, &str)> = vec![("endpoint".into(), endpoint.as_str())];
        templates.extend(headers.iter().map(|(k, v)| (format!("headers.{k}"), v.as_str())));
        if let Some(b) = &body {
            body_strings(b, "body".into(), &mut templates);
        }
        for (field, text) in templates {
            match crate::flow::template::paths(text) {
                Ok(paths) => paths.into_iter().for_each(|path| check_path(p.p, &id, &field, path)),
                Err(e) => p.p.add(Some(&id), field, e.message),
            }
        }
        let next = p.target(f, "next", true);
        Some(ConnectorStep { connector, method, endpoint, timeout, headers, body, context_key, next })
    }

    async fn run(&self, run: &mut StepRun<'_>) -> Result<Next> {
        let connector = run.engine.connectors.get(&self.connector).ok_or_else(|| {
            Error::new(ErrorCode::InvalidFlow, format!("connector {:?} is not configured", self.connector))
        })?;
        let ctx = &mut *run.ctx;
        let endpoint = render_url(&self.endpoint, ctx)?;
        let headers = self
            .headers
            .iter()
            .map(|(k, v)| Ok((k.clone(), render_header(v, ctx)?)))
            .collect::<Result<Vec<_>>>()?;
        let body = self.body.as_ref().map(|b| render_json(b, ctx)).transpose()?;
        let call = ConnectorCall { method: self.method, endpoint, headers, body, timeout: Some(self.timeout) };
        let response = connector.call(&call).await?;
        // The body as returned, and the HTTP metadata under another
        // root, so an API field called `status` is never shadowed.
        ctx.set(&format!("connectors.{}", self.context_key), response.context_value())?;
        ctx.set(&format!("connectorResponses.{}", self.context_key), response.http_value())?;
        Ok(Next::Step(self.next.clone()))
    }
}

/// The strings of a connector body template, with their field paths.
fn body_strings<'a>(v: &'a Value, at: String, out: &mut Vec<(String, &'a str)>) {
    match v {
        Value::String(s) => out.push((at, s)),
        Value::Array(items) => items.iter().enumerate().for_each(|(i, x)| body_strings(x, format!("{at}[{i}]"), out)),
        Value::Object(m) => m.iter().for_each(|(k, x)| body_strings(x, format!("{at}.{k}"), out)),
        _ => {}
    }
}
