//! Neutral HTTP request and response types: the provider's edge. The CLI's
//! server, a Python web app and a Node web app convert to and from these,
//! so every host mounts the very same endpoints.

use serde_json::Value;
use std::collections::HashMap;

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

/// Parameters of a query string or form body. A repeated name is an error
/// for OAuth parameters (RFC 6749 §3.1), reported by [`Params::get`]'s
/// caller through [`Params::repeated`]. Values are kept as the bytes
/// received too, so that `state` goes back exactly as it came (RFC 6749
/// §4.1.2), even when it is not UTF-8.
#[derive(Debug, Clone, Default)]
pub struct Params {
    map: HashMap<String, (String, Vec<u8>)>,
    repeated: Vec<String>,
}

impl Params {
    pub fn parse(text: &[u8]) -> Params {
        let mut params = Params::default();
        for pair in text.split(|b| *b == b'&').filter(|p| !p.is_empty()) {
            let (k, v) = match pair.iter().position(|b| *b == b'=') {
                Some(i) => (&pair[..i], &pair[i + 1..]),
                None => (pair, &pair[..0]),
            };
            let key = String::from_utf8_lossy(&form_decode(k)).into_owned();
            if params.map.contains_key(&key) {
                if !params.repeated.contains(&key) {
                    params.repeated.push(key);
                }
                continue;
            }
            let bytes = form_decode(v);
            params.map.insert(key, (String::from_utf8_lossy(&bytes).into_owned(), bytes));
        }
        params
    }

    /// The value of `name`; an empty value counts as absent (RFC 6749 §3.1).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.map.get(name).map(|(s, _)| s.as_str()).filter(|v| !v.is_empty())
    }

    /// The value of `name` as the bytes received (percent-decoded).
    pub fn get_bytes(&self, name: &str) -> Option<&[u8]> {
        self.map.get(name).map(|(_, b)| b.as_slice()).filter(|v| !v.is_empty())
    }

    /// The first parameter given more than once, if any.
    pub fn repeated(&self) -> Option<&str> {
        self.repeated.first().map(String::as_str)
    }

    /// A parameter whose value is longer than `max` bytes, if any.
    pub fn longest_over(&self, max: usize) -> Option<&str> {
        self.map.iter().find(|(_, (_, b))| b.len() > max).map(|(k, _)| k.as_str())
    }

    /// Whether `name` was given more than once.
    pub fn is_repeated(&self, name: &str) -> bool {
        self.repeated.iter().any(|r| r == name)
    }

    /// Sets `name` to `value` in place of what was given (a request
    /// object's parameters supersede the query's, OIDC Core §6.3.3).
    pub fn supersede(&mut self, name: &str, value: String) {
        self.repeated.retain(|r| r != name);
        let bytes = value.clone().into_bytes();
        self.map.insert(name.to_owned(), (value, bytes));
    }

    pub fn remove(&mut self, name: &str) {
        self.repeated.retain(|r| r != name);
        self.map.remove(name);
    }

    pub fn merge_missing(&mut self, other: Params) {
        for (k, v) in other.map {
            self.map.entry(k).or_insert(v);
        }
        for r in other.repeated {
            if !self.repeated.contains(&r) {
                self.repeated.push(r);
            }
        }
    }
}

/// `application/x-www-form-urlencoded` decoding to bytes: `+` is a space,
/// `%XX` a byte; a `%` without two hex digits stays as it is.
fn form_decode(input: &[u8]) -> Vec<u8> {
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        match input[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < input.len() => {
                match (hex(input[i + 1]), hex(input[i + 2])) {
                    (Some(h), Some(l)) => {
                        out.push(h * 16 + l);
                        i += 3;
                        continue;
                    }
                    _ => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    out
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

/// Appends `params` to `base` as query parameters (keeping its own query).
pub fn append_query(base: &str, params: &[(&str, &str)]) -> String {
    let bytes: Vec<(&str, &[u8])> = params.iter().map(|(k, v)| (*k, v.as_bytes())).collect();
    append_query_bytes(base, &bytes)
}

/// [`append_query`] for values that may not be UTF-8 (a `state` kept as
/// the bytes received).
pub fn append_query_bytes(base: &str, params: &[(&str, &[u8])]) -> String {
    let mut out = String::from(base);
    let (before, fragment) = match out.find('#') {
        Some(i) => {
            let f = out[i..].to_owned();
            out.truncate(i);
            (out, f)
        }
        None => (out, String::new()),
    };
    let mut out = before;
    let mut sep = if out.contains('?') { if out.ends_with('?') || out.ends_with('&') { "" } else { "&" } } else { "?" };
    for (k, v) in params {
        out.push_str(sep);
        out.extend(url::form_urlencoded::byte_serialize(k.as_bytes()));
        out.push('=');
        out.extend(url::form_urlencoded::byte_serialize(v));
        sep = "&";
    }
    out + &fragment
}

/// Escapes text for HTML element content and quoted attributes.
pub fn html_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

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
    fn params_refuse_repeats_and_ignore_empty_values() {
        let p = Params::parse(b"a=1&b=&a=2&c=x%20y");
        assert_eq!(p.get("a"), Some("1"));
        assert_eq!(p.get("b"), None);
        assert_eq!(p.get("c"), Some("x y"));
        assert_eq!(p.repeated(), Some("a"));
        assert!(p.is_repeated("a") && !p.is_repeated("c"));
        let p = Params::parse(b"state=%ff%fe&x=%zz&y=a%");
        assert_eq!(p.get_bytes("state"), Some(&[0xff, 0xfe][..]));
        assert_eq!(p.get("x"), Some("%zz"));
        assert_eq!(p.get("y"), Some("a%"));
        assert_eq!(append_query_bytes("https://a/cb", &[("state", p.get_bytes("state").unwrap())]), "https://a/cb?state=%FF%FE");
    }

    #[test]
    fn query_appending_keeps_existing_parameters_and_fragments() {
        assert_eq!(append_query("https://a/cb", &[("code", "x y"), ("state", "s&")]), "https://a/cb?code=x+y&state=s%26");
        assert_eq!(append_query("https://a/cb?k=1#frag", &[("code", "c")]), "https://a/cb?k=1&code=c#frag");
    }

    #[test]
    fn cookies_and_headers_are_case_insensitive_lookups() {
        let r = HttpRequest::new("GET", "/", vec![("COOKIE".into(), "a=1; idflow_session=S; b=2".into())], vec![]);
        assert_eq!(r.cookie("idflow_session"), Some("S"));
        assert_eq!(r.header("cookie"), Some("a=1; idflow_session=S; b=2"));
        assert_eq!(html_escape("<a href=\"x\">'&"), "&lt;a href=&quot;x&quot;&gt;&#39;&amp;");
    }
}
