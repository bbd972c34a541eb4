//! Neutral HTTP request and response types: the provider's edge. The CLI's
//! server, a Python web app and a Node web app convert to and from these,
//! so every host mounts the very same endpoints.

use serde_json::Value;

/// An HTTP request as the provider sees it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HttpRequest {
    /// Upper-case method (`GET`, `POST`, ...).
    pub method: String,
    /// The path, percent-encoded as received, without the query.
    pub path: String,
    /// The raw query string without `?` (may be empty).
    pub query: String,
    /// Header names in any case; looked up case-insensitively.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The address the connection came from, when the host knows it: what
    /// the per-address rate limits count (through `trustedProxies`).
    pub peer: Option<std::net::IpAddr>,
}

impl HttpRequest {
    /// The request as received from `peer`.
    pub fn with_peer(mut self, peer: Option<std::net::IpAddr>) -> HttpRequest {
        self.peer = peer;
        self
    }

    /// The request as received from the address `peer` as text (what a web
    /// framework reports, e.g. `203.0.113.9` or `::1`); `None` leaves it
    /// unknown. A text that is no IP address is `invalid_request`.
    pub fn with_peer_text(self, peer: Option<&str>) -> crate::error::Result<HttpRequest> {
        let parsed = match peer {
            None => None,
            Some(text) => Some(
                text.trim()
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .parse()
                    .map_err(|_| crate::error::Error::invalid_request("peer must be an IP address (the client's, as the web framework reports it)"))?,
            ),
        };
        Ok(self.with_peer(parsed))
    }

    /// A request for `target`, which is a path with an optional query
    /// (`/oauth2/v1/authorize?client_id=...`) or an absolute URL (its scheme
    /// and host are ignored: the provider's issuer comes from its config).
    pub fn new(method: &str, target: &str, headers: Vec<(String, String)>, body: Vec<u8>) -> HttpRequest {
        let rest = match target.find("://") {
            Some(i) if !target[..i].contains('/') => {
                let after = &target[i + 3..];
                after.find(['/', '?']).map_or("/", |j| &after[j..])
            }
            _ => target,
        };
        let rest = rest.split('#').next().unwrap_or_default();
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        HttpRequest {
            method: method.to_ascii_uppercase(),
            path: if path.is_empty() { "/".to_owned() } else { path.to_owned() },
            query: query.to_owned(),
            headers,
            body,
            peer: None,
        }
    }

    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// A cookie from the `Cookie` header(s).
    pub fn cookie(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case("cookie"))
            .flat_map(|(_, v)| v.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v)
    }

    /// Whether the body is declared as `type` (ignoring parameters).
    pub fn content_type_is(&self, media_type: &str) -> bool {
        self.header("content-type")
            .and_then(|v| v.split(';').next())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case(media_type))
    }

    /// The body of a JSON API request: `Content-Type: application/json` and
    /// an object at the top level, or `invalid_request` saying which is wrong.
    pub(crate) fn json_object(&self) -> crate::error::Result<serde_json::Map<String, serde_json::Value>> {
        if !self.content_type_is("application/json") {
            return Err(crate::error::Error::invalid_request("this endpoint takes a JSON body (Content-Type: application/json)"));
        }
        crate::json::parse_object(&self.body)
            .map_err(|e| crate::error::Error::invalid_request(format!("the body is not a JSON object: {e}")))
    }
}

/// An HTTP response from the provider.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    pub fn new(status: u16) -> HttpResponse {
        HttpResponse { status, headers: Vec::new(), body: Vec::new() }
    }

    pub fn with_header(mut self, name: &str, value: impl Into<String>) -> HttpResponse {
        self.headers.push((name.to_owned(), value.into()));
        self
    }

    /// A JSON body.
    pub fn json(status: u16, value: &Value) -> HttpResponse {
        HttpResponse::json_text(status, value.to_string())
    }

    pub fn json_text(status: u16, text: String) -> HttpResponse {
        HttpResponse { status, headers: vec![("Content-Type".into(), "application/json".into())], body: text.into_bytes() }
    }

    /// JSON that must not be cached (token, userinfo, flow API).
    pub fn json_no_store(status: u16, value: &Value) -> HttpResponse {
        HttpResponse::json(status, value).with_header("Cache-Control", "no-store").with_header("Pragma", "no-cache")
    }

    pub fn redirect(location: &str) -> HttpResponse {
        // The target URL may carry a code: no Referer leaks it (RFC 9700 §4.2.4).
        HttpResponse::new(302)
            .with_header("Location", location)
            .with_header("Cache-Control", "no-store")
            .with_header("Referrer-Policy", "no-referrer")
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// The body as text (lossy), for tests and logs.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Escapes text for HTML element content and quoted attributes.
pub use crate::placeholders::html_escape;

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn targets_split_into_path_and_query() {
        let r = HttpRequest::new("get", "http://h:1/a/b?x=1#f", vec![], vec![]);
        assert_eq!((r.method.as_str(), r.path.as_str(), r.query.as_str()), ("GET", "/a/b", "x=1"));
        let r = HttpRequest::new("POST", "/t", vec![], vec![]);
        assert_eq!((r.path.as_str(), r.query.as_str()), ("/t", ""));
        let r = HttpRequest::new("GET", "https://h", vec![], vec![]);
        assert_eq!(r.path, "/");
    }

    #[test]
    fn peers_are_ip_addresses() {
        let r = HttpRequest::new("GET", "/", vec![], vec![]);
        assert_eq!(r.clone().with_peer_text(Some("203.0.113.9")).unwrap().peer, Some("203.0.113.9".parse().unwrap()));
        assert_eq!(r.clone().with_peer_text(Some("[::1]")).unwrap().peer, Some("::1".parse().unwrap()));
        assert_eq!(r.clone().with_peer_text(None).unwrap().peer, None);
        assert!(r.with_peer_text(Some("example.com")).is_err());
    }

    #[test]
    fn cookies_and_headers_are_case_insensitive_lookups() {
        let r = HttpRequest::new("GET", "/", vec![("COOKIE".into(), "a=1; idflow_session=S; b=2".into())], vec![]);
        assert_eq!(r.cookie("idflow_session"), Some("S"));
        assert_eq!(r.header("cookie"), Some("a=1; idflow_session=S; b=2"));
        assert_eq!(html_escape("<a href=\"x\">'&"), "&lt;a href=&quot;x&quot;&gt;&#39;&amp;");
    }
}
