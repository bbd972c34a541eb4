//! `{{path}}` templates in connector endpoints, headers and JSON bodies,
//! escaped for where they land: percent-encoded in URLs, CR/LF refused in
//! headers, and typed JSON values (never string splicing) in bodies.

use super::context::{value_text, Context};
use crate::error::{Error, ErrorCode, Result};
use serde_json::{Map, Value};

/// Splits `text` into literal and `{{path}}` parts.
fn parts(text: &str) -> Result<Vec<(bool, &str)>> {
    crate::placeholders::split(text)
        .map(|parts| {
            parts
                .into_iter()
                .map(|p| match p {
                    crate::placeholders::Part::Text(t) => (false, t),
                    crate::placeholders::Part::Name(n) => (true, n),
                })
                .collect()
        })
        .map_err(|m| Error::new(ErrorCode::InvalidFlow, m))
}

/// The `{{path}}`s of a template (for the flow validator).
pub fn paths(text: &str) -> Result<Vec<&str>> {
    Ok(parts(text)?.into_iter().filter_map(|(is_path, p)| is_path.then_some(p)).collect())
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
pub fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Renders an endpoint (path and query): values are percent-encoded, so a
/// value can never add a path segment, a query parameter or a fragment.
pub fn render_url(template: &str, ctx: &Context) -> Result<String> {
    let mut out = String::with_capacity(template.len() + 16);
    for (is_path, text) in parts(template)? {
        if is_path {
            out.push_str(&percent_encode(&value_text(ctx.get(text))));
        } else {
            out.push_str(text);
        }
    }
    Ok(out)
}

/// Renders a header value; a value with CR, LF or NUL is refused (header
/// injection).
pub fn render_header(template: &str, ctx: &Context) -> Result<String> {
    let mut out = String::with_capacity(template.len() + 16);
    for (is_path, text) in parts(template)? {
        if is_path {
            let value = value_text(ctx.get(text));
            if value.chars().any(|c| matches!(c, '\r' | '\n' | '\0')) {
                return Err(Error::new(
                    ErrorCode::StepFailed,
                    format!("the value of {text} contains a line break and cannot go into a header"),
                ));
            }
            out.push_str(&value);
        } else {
            out.push_str(text);
        }
    }
    Ok(out)
}

/// Renders a JSON body template: a string that is exactly one `{{path}}`
/// becomes that value with its JSON type (missing: `null`); other strings
/// are interpolated as text. Keys are not templated.
pub fn render_json(template: &Value, ctx: &Context) -> Result<Value> {
    Ok(match template {
        Value::String(s) => {
            let p = parts(s)?;
            match p.as_slice() {
                [(true, path)] => ctx.get(path).cloned().unwrap_or(Value::Null),
                _ => {
                    let mut out = String::with_capacity(s.len());
                    for (is_path, text) in p {
                        if is_path {
                            out.push_str(&value_text(ctx.get(text)));
                        } else {
                            out.push_str(text);
                        }
                    }
                    Value::String(out)
                }
            }
        }
        Value::Array(items) => Value::Array(items.iter().map(|v| render_json(v, ctx)).collect::<Result<_>>()?),
        Value::Object(map) => {
            let mut out = Map::new();
            for (k, v) in map {
                out.insert(k.clone(), render_json(v, ctx)?);
            }
            Value::Object(out)
        }
        other => other.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ctx() -> Context {
        let mut c = Context::new();
        c.set("form.q", json!("a&b?c#d/e f\"g")).unwrap_or_default();
        c.set("form.evil", json!("x\r\nInjected: 1")).unwrap_or_default();
        c.set("form.n", json!(42)).unwrap_or_default();
        c
    }

    #[test]
    fn urls_are_percent_encoded() {
        let url = render_url("/search?q={{ form.q }}&n={{form.n}}&m={{form.missing}}", &ctx()).unwrap_or_default();
        assert_eq!(url, "/search?q=a%26b%3Fc%23d%2Fe%20f%22g&n=42&m=");
        assert!(render_url("/x/{{form.q", &ctx()).is_err());
    }

    #[test]
    fn headers_refuse_line_breaks() {
        assert_eq!(render_header("Bearer {{form.n}}", &ctx()).ok().as_deref(), Some("Bearer 42"));
        assert_eq!(render_header("{{form.evil}}", &ctx()).map_err(|e| e.code), Err(ErrorCode::StepFailed));
    }

    #[test]
    fn json_bodies_keep_types_and_escape_strings() {
        let body = json!({"q": "{{form.q}}", "n": "{{form.n}}", "text": "n={{form.n}} q={{form.q}}", "none": "{{form.missing}}", "list": ["{{form.n}}", 1]});
        let out = render_json(&body, &ctx()).unwrap_or_default();
        assert_eq!(out["q"], json!("a&b?c#d/e f\"g"));
        assert_eq!(out["n"], json!(42));
        assert_eq!(out["text"], json!("n=42 q=a&b?c#d/e f\"g"));
        assert_eq!(out["none"], Value::Null);
        assert_eq!(out["list"], json!([42, 1]));
        // Serialised, the quote is escaped: a value cannot break out of its string.
        assert!(out.to_string().contains(r#"f\"g"#));
    }
}
