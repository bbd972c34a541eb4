//! Query strings and form bodies (`application/x-www-form-urlencoded`):
//! parsed strictly for OAuth (RFC 6749 §3.1: a repeated parameter is an
//! error, an empty value is absent) and appended to URLs. Both sides use
//! them: the provider for every request it reads and redirect it makes, the
//! client for authorization URLs and the callbacks it receives.

use std::collections::HashMap;

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

/// Extra parameters given as a JSON object (`{"audience": "api"}`):
/// strings as they are, numbers and booleans as their text. `null` or
/// absent is none; anything else is refused with a message naming `at`.
pub fn string_pairs(v: Option<&serde_json::Value>, at: &str) -> std::result::Result<Vec<(String, String)>, String> {
    use serde_json::Value;
    match v {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Object(m)) => m
            .iter()
            .map(|(k, x)| match x {
                Value::String(s) => Ok((k.clone(), s.clone())),
                Value::Number(n) => Ok((k.clone(), n.to_string())),
                Value::Bool(b) => Ok((k.clone(), b.to_string())),
                _ => Err(format!("{at}.{k} must be a string")),
            })
            .collect(),
        Some(_) => Err(format!("{at} must be an object of strings")),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

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
}
