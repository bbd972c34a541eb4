//! The provider's HTML: the hosted login page, error and logged-out pages,
//! and the `form_post` response (OAuth 2.0 Form Post Response Mode). No
//! external assets; inline script and style are allowed by their SHA-256
//! in the Content-Security-Policy, nothing else runs.

use super::http::{html_escape, HttpResponse};
use std::sync::OnceLock;

const LOGIN_HTML: &str = include_str!("login.html");

const PAGE_STYLE: &str = "body{font:16px/1.5 system-ui,sans-serif;max-width:32rem;margin:10vh auto;padding:0 1rem;color:#1d1f23}h1{font-size:1.4rem}";
const FORM_POST_SCRIPT: &str = "document.forms[0].submit();";

fn sha256_source(text: &str) -> String {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, text.as_bytes());
    format!("'sha256-{}'", crate::b64::encode_std(d.as_ref()))
}

fn between<'a>(text: &'a str, open: &str, close: &str) -> &'a str {
    let start = text.find(open).map_or(0, |i| i + open.len());
    let end = text[start..].find(close).map_or(text.len(), |i| start + i);
    &text[start..end]
}

struct Csp {
    login: String,
    logout: String,
    page: String,
    form_post: String,
}

fn csp() -> &'static Csp {
    static CSP: OnceLock<Csp> = OnceLock::new();
    CSP.get_or_init(|| {
        let script = sha256_source(between(LOGIN_HTML, "<script>", "</script>"));
        let style = sha256_source(between(LOGIN_HTML, "<style>", "</style>"));
        let page_style = sha256_source(PAGE_STYLE);
        let base = "default-src 'none'; base-uri 'none'; frame-ancestors 'none'";
        Csp {
            login: format!("{base}; script-src {script}; style-src {style}; connect-src 'self'; img-src 'self' data:; form-action 'self'"),
            page: format!("{base}; style-src {page_style}; form-action 'none'"),
            logout: format!("{base}; style-src {page_style}; form-action 'self'"),
            form_post: format!("{base}; style-src {page_style}; script-src {}", sha256_source(FORM_POST_SCRIPT)),
        }
    })
}

fn html(status: u16, body: String, policy: &str) -> HttpResponse {
    HttpResponse { status, headers: Vec::new(), body: body.into_bytes() }
        .with_header("Content-Type", "text/html; charset=utf-8")
        .with_header("Content-Security-Policy", policy)
        .with_header("X-Frame-Options", "DENY")
        .with_header("X-Content-Type-Options", "nosniff")
        .with_header("Referrer-Policy", "no-referrer")
        .with_header("Cache-Control", "no-store")
}

fn simple(status: u16, title: &str, message: &str) -> HttpResponse {
    let body = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{t}</title><style>{PAGE_STYLE}</style></head><body><main><h1>{t}</h1><p>{m}</p></main></body></html>",
        t = html_escape(title),
        m = html_escape(message)
    );
    html(status, body, &csp().page)
}

pub(super) fn login_page() -> HttpResponse {
    html(200, LOGIN_HTML.to_owned(), &csp().login)
}

pub(super) fn error_page(status: u16, title: &str, message: &str) -> HttpResponse {
    simple(status, title, message)
}

pub(super) fn info_page(title: &str, message: &str) -> HttpResponse {
    simple(200, title, message)
}

/// RP-Initiated Logout §2: asks the user before a session ends. The form
/// POSTs the one-time `confirm` token back to `action`, which answers with
/// a redirect to `then` (the post-logout redirect URI): browsers hold that
/// redirect to the page's `form-action` too, so its origin is allowed.
pub(super) fn logout_confirm_page(action: &str, token: &str, then: Option<&str>) -> HttpResponse {
    let body = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>Sign out?</title><style>{PAGE_STYLE}</style></head><body><main><h1>Sign out?</h1><p>An application asked to end your session.</p><form method=\"post\" action=\"{}\"><input type=\"hidden\" name=\"confirm\" value=\"{}\"><button type=\"submit\" id=\"sign-out\">Sign out</button></form></main></body></html>",
        html_escape(action),
        html_escape(token)
    );
    let origin = then.and_then(|u| url::Url::parse(u).ok()).map(|u| u.origin()).filter(url::Origin::is_tuple).map(|o| o.ascii_serialization());
    let policy = match origin {
        Some(o) => format!("{} {o}", csp().logout),
        None => csp().logout.clone(),
    };
    html(200, body, &policy)
}

pub(super) fn logged_out_page() -> HttpResponse {
    simple(200, "You are signed out", "You can close this window.")
}

/// An auto-submitting form that POSTs `fields` to `action`.
pub(super) fn form_post(action: &str, fields: &[(&str, &str)]) -> HttpResponse {
    let inputs: String = fields
        .iter()
        .map(|(k, v)| format!("<input type=\"hidden\" name=\"{}\" value=\"{}\">", html_escape(k), html_escape(v)))
        .collect();
    let body = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Signing in</title><style>{PAGE_STYLE}</style></head><body><form method=\"post\" action=\"{}\">{inputs}<noscript><button type=\"submit\">Continue</button></noscript></form><script>{FORM_POST_SCRIPT}</script></body></html>",
        html_escape(action)
    );
    html(200, body, &csp().form_post)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn the_login_page_allows_exactly_its_own_inline_code() {
        let r = login_page();
        let policy = r.header("Content-Security-Policy").unwrap();
        assert!(policy.contains("frame-ancestors 'none'"));
        assert!(policy.contains("script-src 'sha256-"));
        assert_eq!(policy.matches("'sha256-").count(), 2);
        assert!(!policy.contains("unsafe-inline"));
        assert_eq!(r.header("Cache-Control"), Some("no-store"));
    }

    #[test]
    fn form_post_escapes_values() {
        let r = form_post("https://a/cb?x=\"", &[("state", "<script>")]);
        let body = r.text();
        assert!(body.contains("value=\"&lt;script&gt;\""));
        assert!(body.contains("action=\"https://a/cb?x=&quot;\""));
    }
}
