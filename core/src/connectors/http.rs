//! The generic HTTP connector.
//!
//! Configured once (base URL, default headers, auth, timeout) and called by
//! flow steps with a method, an endpoint (path + query, rendered from
//! templates), extra headers and an optional JSON body. A non-2xx answer is
//! `connector_failed` with the status, a timeout `connector_timeout`, a body
//! over 1 MiB is refused, redirects are not followed unless configured, and a
//! body that is not JSON is kept as a string.

use crate::error::{Error, ErrorCode, Result};
use serde_json::{Map, Value};
use std::time::{Duration, Instant};

/// The HTTP method of a connector call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
    Put,
    Patch,
    Delete,
}

impl Method {
    pub fn parse(s: &str) -> Option<Method> {
        Some(match s {
            "GET" => Method::Get,
            "POST" => Method::Post,
            "PUT" => Method::Put,
            "PATCH" => Method::Patch,
            "DELETE" => Method::Delete,
            _ => return None,
        })
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
        }
    }
}

/// Largest response body a connector accepts.
pub const MAX_RESPONSE_BYTES: usize = 1024 * 1024;
/// Timeout when neither the step nor the connector sets one.
pub const DEFAULT_TIMEOUT_SECS: f64 = 5.0;

/// How the connector authenticates to the API.
#[derive(Debug, Clone, PartialEq)]
pub enum ConnectorAuth {
    None,
    Bearer { token: String },
    Basic { username: String, password: String },
    /// An API key sent in a header of the connector's choice.
    ApiKey { header: String, key: String },
}

/// A connector as a project file declares it (secrets already resolved).
#[derive(Debug, Clone, PartialEq)]
pub struct HttpConnectorConfig {
    pub id: String,
    pub base_url: String,
    pub headers: Vec<(String, String)>,
    pub auth: ConnectorAuth,
    /// Seconds; a step's own timeout wins. Defaults to 5.
    pub timeout: f64,
    /// Defaults to false.
    pub follow_redirects: bool,
}

fn string_field(map: &Map<String, Value>, field: &str, what: &str) -> Result<Option<String>> {
    match map.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(crate::env::resolve_env(s)?)),
        Some(_) => Err(Error::config(format!("{what} {field} must be a string"))),
    }
}

fn required(map: &Map<String, Value>, field: &str, what: &str) -> Result<String> {
    string_field(map, field, what)?.ok_or_else(|| Error::config(format!("{what} needs {field}")))
}

impl HttpConnectorConfig {
    /// Parses a project file's connector entry (`type: "http"`); unknown
    /// fields are refused by name; `${ENV_VAR}` references are resolved.
    pub fn from_json(value: &Value) -> Result<HttpConnectorConfig> {
        let Value::Object(map) = value else {
            return Err(Error::config("a connector must be a JSON object"));
        };
        let id = required(map, "id", "a connector")?;
        let what = format!("connector {id:?}");
        for key in map.keys() {
            if !["id", "type", "baseUrl", "headers", "auth", "timeout", "followRedirects"].contains(&key.as_str()) {
                return Err(Error::config(format!("{what}: unknown field {key:?}")));
            }
        }
        match string_field(map, "type", &what)?.as_deref() {
            None | Some("http") => {}
            Some(other) => return Err(Error::config(format!("{what}: unsupported connector type {other:?}"))),
        }
        let base_url = required(map, "baseUrl", &what)?;
        let parsed = reqwest::Url::parse(&base_url).map_err(|_| Error::config(format!("{what}: baseUrl is not a URL")))?;
        if parsed.scheme() != "http" && parsed.scheme() != "https" {
            return Err(Error::config(format!("{what}: baseUrl must be http or https")));
        }
        let mut headers = Vec::new();
        match map.get("headers") {
            None | Some(Value::Null) => {}
            Some(Value::Object(h)) => {
                for (k, v) in h {
                    let v = v.as_str().ok_or_else(|| Error::config(format!("{what}: header {k} must be a string")))?;
                    headers.push((k.clone(), crate::env::resolve_env(v)?));
                }
            }
            Some(_) => return Err(Error::config(format!("{what}: headers must be an object"))),
        }
        let auth = match map.get("auth") {
            None | Some(Value::Null) => ConnectorAuth::None,
            Some(Value::Object(a)) => {
                let awhat = format!("{what} auth");
                match required(a, "type", &awhat)?.as_str() {
                    "none" => ConnectorAuth::None,
                    "bearer" => ConnectorAuth::Bearer { token: required(a, "token", &awhat)? },
                    "basic" => ConnectorAuth::Basic {
                        username: required(a, "username", &awhat)?,
                        password: required(a, "password", &awhat)?,
                    },
                    "apiKey" => ConnectorAuth::ApiKey {
                        header: string_field(a, "header", &awhat)?.unwrap_or_else(|| "X-API-Key".to_owned()),
                        key: required(a, "key", &awhat)?,
                    },
                    other => {
                        return Err(Error::config(format!("{awhat}: type {other:?} is not none, bearer, basic or apiKey")))
                    }
                }
            }
            Some(_) => return Err(Error::config(format!("{what}: auth must be an object"))),
        };
        let timeout = match map.get("timeout") {
            None | Some(Value::Null) => DEFAULT_TIMEOUT_SECS,
            Some(Value::Number(n)) => n.as_f64().filter(|t| *t > 0.0 && *t <= 60.0).ok_or_else(|| {
                Error::config(format!("{what}: timeout must be more than 0 and at most 60 seconds"))
            })?,
            Some(_) => return Err(Error::config(format!("{what}: timeout must be a number of seconds"))),
        };
        let follow_redirects = match map.get("followRedirects") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => return Err(Error::config(format!("{what}: followRedirects must be true or false"))),
        };
        Ok(HttpConnectorConfig { id, base_url, headers, auth, timeout, follow_redirects })
    }
}

/// One call: what a `connector` step sends (templates already rendered).
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectorCall {
    pub method: Method,
    /// Path and query, appended to the base URL.
    pub endpoint: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<Value>,
    /// Seconds; `None`: the connector's timeout.
    pub timeout: Option<f64>,
}

/// A 2xx answer.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectorResponse {
    pub status: u16,
    /// Lower-case names; repeated headers joined with ", ".
    pub headers: Map<String, Value>,
    /// The JSON body, or the text when it is not JSON.
    pub body: Value,
    pub duration_ms: f64,
}

impl ConnectorResponse {
    /// What lands at `connectors.<contextKey>`: the body exactly as the API
    /// returned it (so `connectors.random.date_of_birth` works as in the
    /// platform docs). Nothing is added to it: a field of the API's called
    /// `status`, `headers` or `body` stays the API's.
    pub fn context_value(&self) -> Value {
        self.body.clone()
    }

    /// What lands at `connectorResponses.<contextKey>`, a root of its own so
    /// it cannot collide with the body: `{status, headers, body}`.
    pub fn http_value(&self) -> Value {
        let mut out = Map::new();
        out.insert("status".into(), Value::from(self.status));
        out.insert("headers".into(), Value::Object(self.headers.clone()));
        out.insert("body".into(), self.body.clone());
        Value::Object(out)
    }
}

/// The console's "Test Results" panel: the answer or the error, and timing.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectorTestResult {
    pub ok: bool,
    pub status: Option<u16>,
    pub headers: Map<String, Value>,
    pub body: Value,
    pub duration_ms: f64,
    pub error: Option<Error>,
}

impl ConnectorTestResult {
    /// `{"ok", "status", "headers", "body", "durationMs", "error": {"code", "message"}}`.
    pub fn to_json(&self) -> Value {
        let mut out = Map::new();
        out.insert("ok".into(), self.ok.into());
        out.insert("status".into(), self.status.map_or(Value::Null, Value::from));
        out.insert("headers".into(), Value::Object(self.headers.clone()));
        out.insert("body".into(), self.body.clone());
        out.insert("durationMs".into(), Value::from(self.duration_ms));
        if let Some(e) = &self.error {
            let mut err = Map::new();
            err.insert("code".into(), e.code.as_str().into());
            err.insert("message".into(), e.message.clone().into());
            out.insert("error".into(), Value::Object(err));
        }
        Value::Object(out)
    }
}

/// A configured HTTP connector with its own client.
#[derive(Debug, Clone)]
pub struct HttpConnector {
    config: HttpConnectorConfig,
    client: reqwest::Client,
}

fn non_2xx(id: &str, status: u16) -> Error {
    Error::new(ErrorCode::ConnectorFailed, format!("connector {id:?}: the API answered HTTP {status}"))
}

fn method(m: Method) -> reqwest::Method {
    match m {
        Method::Get => reqwest::Method::GET,
        Method::Post => reqwest::Method::POST,
        Method::Put => reqwest::Method::PUT,
        Method::Patch => reqwest::Method::PATCH,
        Method::Delete => reqwest::Method::DELETE,
    }
}

impl HttpConnector {
    pub fn new(config: HttpConnectorConfig) -> Result<HttpConnector> {
        let redirect = if config.follow_redirects { reqwest::redirect::Policy::limited(5) } else { reqwest::redirect::Policy::none() };
        let client = reqwest::Client::builder()
            .redirect(redirect)
            .build()
            .map_err(|e| Error::internal(format!("http client could not be built: {e}")))?;
        Ok(HttpConnector { config, client })
    }

    pub fn config(&self) -> &HttpConnectorConfig {
        &self.config
    }

    fn url(&self, endpoint: &str) -> Result<reqwest::Url> {
        let base = self.config.base_url.trim_end_matches('/');
        let joined = if endpoint.is_empty() {
            base.to_owned()
        } else if endpoint.starts_with('/') || endpoint.starts_with('?') {
            format!("{base}{endpoint}")
        } else {
            format!("{base}/{endpoint}")
        };
        reqwest::Url::parse(&joined).map_err(|_| {
            Error::new(ErrorCode::ConnectorFailed, format!("connector {:?}: the endpoint does not make a valid URL", self.config.id))
        })
    }

    /// Calls the API (see the module doc for the error rules).
    pub async fn call(&self, call: &ConnectorCall) -> Result<ConnectorResponse> {
        let response = self.send(call).await?;
        if !(200..300).contains(&response.status) {
            return Err(non_2xx(&self.config.id, response.status));
        }
        Ok(response)
    }

    /// Sends the call and reads the answer whatever its status.
    async fn send(&self, call: &ConnectorCall) -> Result<ConnectorResponse> {
        let id = &self.config.id;
        let failed = |m: String| Error::new(ErrorCode::ConnectorFailed, format!("connector {id:?}: {m}"));
        let timeout_secs = call.timeout.unwrap_or(self.config.timeout);
        let timeout = Duration::try_from_secs_f64(timeout_secs).unwrap_or(Duration::from_secs(5));
        let mut req = self.client.request(method(call.method), self.url(&call.endpoint)?).timeout(timeout);
        req = req.header(reqwest::header::ACCEPT, "application/json");
        for (k, v) in self.config.headers.iter().chain(&call.headers) {
            req = req.header(k.as_str(), v.as_str());
        }
        req = match &self.config.auth {
            ConnectorAuth::None => req,
            ConnectorAuth::Bearer { token } => req.bearer_auth(token),
            ConnectorAuth::Basic { username, password } => req.basic_auth(username, Some(password)),
            ConnectorAuth::ApiKey { header, key } => req.header(header.as_str(), key.as_str()),
        };
        if let Some(body) = &call.body {
            let bytes = serde_json::to_vec(body).map_err(|_| failed("the body could not be serialized".into()))?;
            req = req.header(reqwest::header::CONTENT_TYPE, "application/json").body(bytes);
        }
        let started = Instant::now();
        let timed_out = || Error::new(ErrorCode::ConnectorTimeout, format!("connector {id:?}: no answer within {timeout_secs} s"));
        let classify = |e: reqwest::Error| {
            if e.is_timeout() {
                timed_out()
            } else if e.is_builder() {
                failed("the request is invalid (a header name or value is not allowed)".into())
            } else if e.is_connect() {
                failed("could not connect to the API".into())
            } else {
                failed("the request failed".into())
            }
        };
        let mut response = req.send().await.map_err(classify)?;
        let status = response.status().as_u16();
        let mut headers = Map::new();
        for (name, value) in response.headers() {
            let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
            match headers.get_mut(name.as_str()) {
                Some(Value::String(existing)) => {
                    existing.push_str(", ");
                    existing.push_str(&value);
                }
                _ => {
                    headers.insert(name.as_str().to_owned(), Value::String(value));
                }
            }
        }
        if response.content_length().is_some_and(|n| n > MAX_RESPONSE_BYTES as u64) {
            return Err(failed(format!("the response is larger than {MAX_RESPONSE_BYTES} bytes")));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(classify)? {
            if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
                return Err(failed(format!("the response is larger than {MAX_RESPONSE_BYTES} bytes")));
            }
            body.extend_from_slice(&chunk);
        }
        let duration_ms = started.elapsed().as_secs_f64() * 1000.0;
        let body = match serde_json::from_slice::<Value>(&body) {
            Ok(v) => v,
            Err(_) => Value::String(String::from_utf8_lossy(&body).into_owned()),
        };
        Ok(ConnectorResponse { status, headers, body, duration_ms })
    }

    /// Runs `call` and reports the outcome either way, with timing; a non-2xx
    /// answer keeps its status, headers and body beside the error.
    pub async fn test(&self, call: &ConnectorCall) -> ConnectorTestResult {
        let started = Instant::now();
        match self.send(call).await {
            Ok(r) => {
                let ok = (200..300).contains(&r.status);
                let error = (!ok).then(|| non_2xx(&self.config.id, r.status));
                ConnectorTestResult { ok, status: Some(r.status), headers: r.headers, body: r.body, duration_ms: r.duration_ms, error }
            }
            Err(e) => ConnectorTestResult {
                ok: false,
                status: None,
                headers: Map::new(),
                body: Value::Null,
                duration_ms: started.elapsed().as_secs_f64() * 1000.0,
                error: Some(e),
            },
        }
    }
}
