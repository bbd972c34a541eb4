//! What a redirect URI may be: the one rule shared by the client (its
//! `redirect_uri`, a per-request one, `post_logout_redirect_uri`), the
//! provider's project file (`redirectUris`, `postLogoutRedirectUris`) and
//! the social-login `redirectUrls`.
//!
//! RFC 8252 §7 gives a native app three kinds: a private-use scheme in
//! reverse-DNS form (`com.example.app:/oauth2redirect`), a claimed `https`
//! URL (universal links, app links) and a loopback `http` URL. Web apps use
//! `https` and `http`. RFC 6749 §3.1.2: absolute, no fragment.

/// The kind of an accepted redirect URI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RedirectKind {
    /// `https`, or `http` on a host that is not loopback.
    Web,
    /// `http` on a loopback IP literal such as `127.0.0.1` or `[::1]`, any
    /// port (RFC 8252 §7.3; `localhost` is not one, §8.3).
    Loopback,
    /// A private-use scheme such as `com.example.app` (RFC 8252 §7.1).
    PrivateUse,
}

/// Schemes that run script or read something in the browser or on the
/// device: a redirect there is an attack, never an app.
const DANGEROUS: [&str; 6] = ["javascript", "data", "vbscript", "file", "blob", "about"];

/// The kind of `uri`, or why it cannot be a redirect URI.
pub fn classify(uri: &str) -> std::result::Result<RedirectKind, String> {
    // URL parsers drop tabs and newlines: what is checked must be what is sent.
    if uri.bytes().any(|b| b <= b' ' || b == 0x7f) {
        return Err("a redirect URI has no spaces or control characters".into());
    }
    let scheme = uri.split_once(':').map(|(s, _)| s.to_ascii_lowercase()).unwrap_or_default();
    if DANGEROUS.contains(&scheme.as_str()) {
        return Err(format!("the {scheme}: scheme runs or reads something in the browser; it is never a redirect URI"));
    }
    let parsed = url::Url::parse(uri).map_err(|_| "a redirect URI is an absolute URL".to_owned())?;
    if parsed.fragment().is_some() {
        return Err("a redirect URI has no fragment (RFC 6749 §3.1.2)".into());
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err("a redirect URI has no user info".into());
    }
    match parsed.scheme() {
        "https" => Ok(RedirectKind::Web),
        "http" => match parsed.host() {
            Some(url::Host::Ipv4(ip)) if ip.is_loopback() => Ok(RedirectKind::Loopback),
            Some(url::Host::Ipv6(ip)) if ip.is_loopback() => Ok(RedirectKind::Loopback),
            _ => Ok(RedirectKind::Web),
        },
        s if !s.contains('.') => Err(format!(
            "the {s}: scheme is not http, https or a private-use scheme in reverse-DNS form such as com.example.app:/callback (RFC 8252 §7.1)"
        )),
        _ if parsed.cannot_be_a_base() => Err(format!("a private-use redirect URI has a path: {}:/callback (RFC 8252 §7.1)", parsed.scheme())),
        _ => Ok(RedirectKind::PrivateUse),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_three_native_forms_and_web_redirects() {
        for (uri, kind) in [
            ("com.example.app:/oauth2redirect", RedirectKind::PrivateUse),
            ("com.example.app:/oauth2redirect/example-provider?x=1", RedirectKind::PrivateUse),
            ("com.example.app://callback", RedirectKind::PrivateUse),
            ("https://app.example.com/oauth2redirect", RedirectKind::Web),
            ("http://app.example.com/cb", RedirectKind::Web),
            ("http://127.0.0.1:51004/oauth2redirect", RedirectKind::Loopback),
            ("http://[::1]:61023/cb", RedirectKind::Loopback),
            ("http://localhost/cb", RedirectKind::Web),
        ] {
            assert_eq!(classify(uri), Ok(kind), "{uri}");
        }
    }

    #[test]
    fn refuses_dangerous_schemes_and_bare_private_schemes_naming_the_rule() {
        for (uri, rule) in [
            ("javascript:alert(1)//com.example.app", "javascript: scheme runs"),
            ("JavaScript:alert(1)", "javascript: scheme runs"),
            ("data:text/html,<script>x</script>", "data: scheme runs"),
            ("vbscript:msgbox", "vbscript: scheme runs"),
            ("file:///etc/passwd", "file: scheme runs"),
            ("blob:https://app.example/1", "blob: scheme runs"),
            ("about:blank", "about: scheme runs"),
            ("myapp:/cb", "reverse-DNS form"),
            ("ftp://files.example/cb", "reverse-DNS form"),
            ("com.example.app:callback", "has a path"),
            ("https://app.example/cb#frag", "no fragment"),
            ("https://user:pw@app.example/cb", "no user info"),
            ("https://app.example/c b", "no spaces"),
            ("https://app.example/cb\n", "control characters"),
            ("/relative/cb", "absolute URL"),
        ] {
            let e = classify(uri).expect_err(uri);
            assert!(e.contains(rule), "{uri}: {e}");
        }
    }
}
