//! Applications (OIDC clients) and access keys from the project file.
//!
//! Secrets are kept only as SHA-256 digests and compared in constant time:
//! they are high-entropy values, so a slow KDF would only cap the token
//! endpoint without adding safety.

use crate::env::resolve_env;
use crate::error::{Error, Result};
use crate::jose::KeySet;
use crate::oidc::redirect_uri::RedirectKind;
use serde_json::{Map, Value};

/// Scopes every application may request unless it narrows them.
pub const STANDARD_SCOPES: [&str; 8] =
    ["openid", "profile", "email", "address", "phone", "offline_access", "descope.custom_claims", "descope.claims"];

/// How a client authenticates at the token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    ClientSecretBasic,
    ClientSecretPost,
    PrivateKeyJwt,
    None,
}

impl AuthMethod {
    pub fn parse(s: &str) -> Option<AuthMethod> {
        Some(match s {
            "client_secret_basic" => AuthMethod::ClientSecretBasic,
            "client_secret_post" => AuthMethod::ClientSecretPost,
            "private_key_jwt" => AuthMethod::PrivateKeyJwt,
            "none" => AuthMethod::None,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            AuthMethod::ClientSecretBasic => "client_secret_basic",
            AuthMethod::ClientSecretPost => "client_secret_post",
            AuthMethod::PrivateKeyJwt => "private_key_jwt",
            AuthMethod::None => "none",
        }
    }
}

/// Where a `private_key_jwt` client's public keys come from.
#[derive(Debug, Clone)]
pub enum ClientKeys {
    Inline(KeySet),
    Uri(String),
}

/// An OIDC application (client).
#[derive(Debug, Clone)]
pub struct Application {
    pub client_id: String,
    pub name: Option<String>,
    /// SHA-256 of the client secret; `None` for public and key-JWT clients.
    pub secret_digest: Option<[u8; 32]>,
    pub public: bool,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub grant_types: Vec<String>,
    /// `code`, and the implicit `id_token` / `id_token token` when opted in.
    pub response_types: Vec<String>,
    pub auth_method: AuthMethod,
    pub scopes: Vec<String>,
    /// The flow authorize runs by default; `None` = the first of `flows`.
    pub flow: Option<String>,
    /// Every flow this application may run (`flow=` and `acr_values` at
    /// authorize, `flowId` at flow start). Defaults to `flow` alone.
    pub flows: Vec<String>,
    pub claims_supported: Vec<String>,
    /// Where authorize sends the browser (`request=` is appended).
    pub flow_hosting_url: Option<String>,
    pub allow_plain_pkce: bool,
    pub keys: Option<ClientKeys>,
    /// `requestObjectSigningAlg`: the one algorithm its request objects use
    /// (`"none"` = unsigned only); `None` = any of the client algorithms.
    pub request_object_alg: Option<String>,
}

/// A client_credentials access key.
#[derive(Debug, Clone)]
pub struct AccessKey {
    pub id: String,
    pub name: Option<String>,
    pub secret_digest: [u8; 32],
    pub scopes: Vec<String>,
    /// Claims added to its access tokens.
    pub custom_claims: Map<String, Value>,
    /// Seconds since the epoch after which the key is refused.
    pub expires_at: Option<u64>,
}

pub fn digest(secret: &str) -> [u8; 32] {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, secret.as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// Constant-time check of `secret` against a stored digest.
pub fn secret_matches(secret: &str, stored: &[u8; 32]) -> bool {
    #[allow(deprecated)]
    aws_lc_rs::constant_time::verify_slices_are_equal(&digest(secret), stored).is_ok()
}

fn strings(obj: &Map<String, Value>, field: &str, at: &str) -> Result<Option<Vec<String>>> {
    match obj.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| v.as_str().filter(|s| !s.is_empty()).map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .map(Some)
            .ok_or_else(|| Error::config(format!("{at}.{field} must be an array of non-empty strings"))),
        Some(_) => Err(Error::config(format!("{at}.{field} must be an array of strings"))),
    }
}

pub(super) fn string(obj: &Map<String, Value>, field: &str, at: &str) -> Result<Option<String>> {
    match obj.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if !s.is_empty() => Ok(Some(s.clone())),
        Some(_) => Err(Error::config(format!("{at}.{field} must be a non-empty string"))),
    }
}

fn boolean(obj: &Map<String, Value>, field: &str, at: &str) -> Result<Option<bool>> {
    match obj.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(Error::config(format!("{at}.{field} must be true or false"))),
    }
}

pub(super) fn check_fields(obj: &Map<String, Value>, known: &[&str], at: &str) -> Result<()> {
    match obj.keys().find(|k| !known.contains(&k.as_str())) {
        Some(k) => Err(Error::config(format!("unknown field {at}.{k}"))),
        None => Ok(()),
    }
}

fn check_uri(uri: &str, at: &str) -> Result<()> {
    let url = url::Url::parse(uri).map_err(|_| Error::config(format!("{at}: {uri:?} is not an absolute URL")))?;
    if url.fragment().is_some() {
        return Err(Error::config(format!("{at}: {uri:?} must not have a fragment (RFC 6749 §3.1.2)")));
    }
    Ok(())
}

/// RFC 8252 §7's forms; a private-use scheme only for a public (native)
/// application, since a confidential client's secret cannot live in an app.
fn check_redirect_uri(uri: &str, public: bool, at: &str) -> Result<()> {
    match crate::oidc::redirect_uri::classify(uri) {
        Err(rule) => Err(Error::config(format!("{at}: {uri:?}: {rule}"))),
        Ok(RedirectKind::PrivateUse) if !public => Err(Error::config(format!(
            "{at}: {uri:?}: a private-use scheme is for native apps, which are public applications (\"public\": true; RFC 8252 §8.4)"
        ))),
        Ok(_) => Ok(()),
    }
}

const APP_FIELDS: [&str; 19] = [
    "clientId", "name", "clientSecret", "public", "redirectUris", "postLogoutRedirectUris", "grantTypes",
    "responseTypes", "tokenEndpointAuthMethod", "scopes", "flow", "flows", "claimsSupported", "flowHostingUrl",
    "allowPlainPkce", "jwksUri", "jwks", "description", "requestObjectSigningAlg",
];
const GRANTS: [&str; 3] = ["authorization_code", "refresh_token", "client_credentials"];
const RESPONSE_TYPES: [&str; 3] = ["code", "id_token", "id_token token"];

impl Application {
    pub fn from_json(value: &Value, index: usize) -> Result<Application> {
        let at = format!("applications[{index}]");
        let obj = value.as_object().ok_or_else(|| Error::config(format!("{at} must be an object")))?;
        check_fields(obj, &APP_FIELDS, &at)?;
        let client_id = string(obj, "clientId", &at)?.ok_or_else(|| Error::config(format!("{at} needs a clientId")))?;
        let at = format!("application {client_id:?}");
        let secret = string(obj, "clientSecret", &at)?.map(|s| resolve_env(&s)).transpose()?;
        let public = boolean(obj, "public", &at)?.unwrap_or(false);
        let auth_method = match string(obj, "tokenEndpointAuthMethod", &at)? {
            None if public => AuthMethod::None,
            None if secret.is_some() => AuthMethod::ClientSecretBasic,
            None if obj.contains_key("jwks") || obj.contains_key("jwksUri") => AuthMethod::PrivateKeyJwt,
            None => return Err(Error::config(format!("{at}: a confidential application needs a clientSecret, jwks or jwksUri (or \"public\": true)"))),
            Some(m) => AuthMethod::parse(&m).ok_or_else(|| {
                Error::config(format!("{at}.tokenEndpointAuthMethod must be client_secret_basic, client_secret_post, private_key_jwt or none"))
            })?,
        };
        if public && auth_method != AuthMethod::None {
            return Err(Error::config(format!("{at}: a public application authenticates with \"none\"")));
        }
        if public && secret.is_some() {
            return Err(Error::config(format!("{at}: a public application has no clientSecret")));
        }
        match auth_method {
            AuthMethod::ClientSecretBasic | AuthMethod::ClientSecretPost if secret.is_none() => {
                return Err(Error::config(format!("{at}: {} needs a clientSecret", auth_method.as_str())))
            }
            AuthMethod::None if !public => {
                return Err(Error::config(format!("{at}: tokenEndpointAuthMethod \"none\" is only for public applications")))
            }
            _ => {}
        }
        if let Some(s) = &secret {
            if s.len() < 16 {
                return Err(Error::config(format!("{at}: clientSecret must be at least 16 characters (use a random value)")));
            }
        }
        let keys = match (obj.get("jwks"), string(obj, "jwksUri", &at)?) {
            (Some(_), Some(_)) => return Err(Error::config(format!("{at}: give jwks or jwksUri, not both"))),
            (Some(doc), None) => {
                let doc = doc.as_object().ok_or_else(|| Error::config(format!("{at}.jwks must be a JWK Set object")))?;
                Some(ClientKeys::Inline(
                    KeySet::from_jwks(doc).map_err(|e| Error::config(format!("{at}.jwks: {}", e.message)))?,
                ))
            }
            (None, Some(uri)) => {
                check_uri(&uri, &format!("{at}.jwksUri"))?;
                Some(ClientKeys::Uri(uri))
            }
            (None, None) => None,
        };
        if auth_method == AuthMethod::PrivateKeyJwt && keys.is_none() {
            return Err(Error::config(format!("{at}: private_key_jwt needs jwks or jwksUri")));
        }
        let grant_types = strings(obj, "grantTypes", &at)?
            .unwrap_or_else(|| vec!["authorization_code".to_owned(), "refresh_token".to_owned()]);
        if let Some(g) = grant_types.iter().find(|g| !GRANTS.contains(&g.as_str())) {
            return Err(Error::config(format!("{at}.grantTypes: {g:?} is not authorization_code, refresh_token or client_credentials")));
        }
        if public && grant_types.iter().any(|g| g == "client_credentials") {
            return Err(Error::config(format!("{at}: a public application cannot use client_credentials")));
        }
        let response_types = strings(obj, "responseTypes", &at)?.unwrap_or_else(|| vec!["code".to_owned()]);
        if let Some(r) = response_types.iter().find(|r| !RESPONSE_TYPES.contains(&r.as_str())) {
            return Err(Error::config(format!("{at}.responseTypes: {r:?} is not code, id_token or \"id_token token\"")));
        }
        let redirect_uris = strings(obj, "redirectUris", &at)?.unwrap_or_default();
        for uri in &redirect_uris {
            check_redirect_uri(uri, public, &format!("{at}.redirectUris"))?;
        }
        if redirect_uris.is_empty() && grant_types.iter().any(|g| g == "authorization_code") {
            return Err(Error::config(format!("{at}: authorization_code needs at least one redirectUris entry")));
        }
        let post_logout_redirect_uris = strings(obj, "postLogoutRedirectUris", &at)?.unwrap_or_default();
        for uri in &post_logout_redirect_uris {
            check_redirect_uri(uri, public, &format!("{at}.postLogoutRedirectUris"))?;
        }
        let scopes = strings(obj, "scopes", &at)?.unwrap_or_else(|| STANDARD_SCOPES.iter().map(|s| (*s).to_owned()).collect());
        let flow_hosting_url = string(obj, "flowHostingUrl", &at)?;
        if let Some(u) = &flow_hosting_url {
            check_uri(u, &format!("{at}.flowHostingUrl"))?;
        }
        let request_object_alg = string(obj, "requestObjectSigningAlg", &at)?;
        match request_object_alg.as_deref() {
            None | Some("none") => {}
            Some(a) if super::request_object::client_signing_algs().iter().any(|x| x.as_str() == a) => {
                if keys.is_none() {
                    return Err(Error::config(format!("{at}: requestObjectSigningAlg {a:?} needs jwks or jwksUri to verify with")));
                }
            }
            Some(a) => {
                return Err(Error::config(format!(
                    "{at}.requestObjectSigningAlg: {a:?} is not none or an asymmetric algorithm (RS256, PS256, ES256, EdDSA, ...)"
                )))
            }
        }
        Ok(Application {
            secret_digest: secret.as_deref().map(digest),
            name: string(obj, "name", &at)?,
            public,
            redirect_uris,
            post_logout_redirect_uris,
            grant_types,
            response_types,
            auth_method,
            scopes,
            flow: string(obj, "flow", &at)?,
            flows: strings(obj, "flows", &at)?.unwrap_or_default(),
            claims_supported: strings(obj, "claimsSupported", &at)?.unwrap_or_default(),
            flow_hosting_url,
            allow_plain_pkce: boolean(obj, "allowPlainPkce", &at)?.unwrap_or(false),
            keys,
            request_object_alg,
            client_id,
        })
    }

    /// The application as the management API shows it (no secret).
    pub fn to_json(&self) -> Value {
        let mut v = serde_json::json!({
            "clientId": self.client_id,
            "public": self.public,
            "redirectUris": self.redirect_uris,
            "postLogoutRedirectUris": self.post_logout_redirect_uris,
            "grantTypes": self.grant_types,
            "responseTypes": self.response_types,
            "tokenEndpointAuthMethod": self.auth_method.as_str(),
            "scopes": self.scopes,
            "claimsSupported": self.claims_supported,
            "allowPlainPkce": self.allow_plain_pkce,
        });
        v["flows"] = self.flows.clone().into();
        for (k, val) in [
            ("name", &self.name),
            ("flow", &self.flow),
            ("flowHostingUrl", &self.flow_hosting_url),
            ("requestObjectSigningAlg", &self.request_object_alg),
        ] {
            if let Some(x) = val {
                v[k] = x.clone().into();
            }
        }
        if let Some(ClientKeys::Uri(u)) = &self.keys {
            v["jwksUri"] = u.clone().into();
        }
        v
    }

    pub fn allows_grant(&self, grant: &str) -> bool {
        self.grant_types.iter().any(|g| g == grant)
    }

    /// Matches a redirect URI: exactly, or for a loopback IP literal
    /// (`127.0.0.1`, `[::1]`) with any port (RFC 8252 §7.3).
    pub fn redirect_uri_allowed(&self, uri: &str) -> bool {
        self.redirect_uris.iter().any(|r| redirect_matches(r, uri))
    }
}

fn redirect_matches(registered: &str, given: &str) -> bool {
    // URL parsers drop tabs and newlines; a URI with them is never ours.
    if given.bytes().any(|b| b <= b' ' || b == 0x7f) {
        return false;
    }
    if registered == given {
        return true;
    }
    let (Ok(mut a), Ok(mut b)) = (url::Url::parse(registered), url::Url::parse(given)) else {
        return false;
    };
    let loopback = |u: &url::Url| u.scheme() == "http" && matches!(u.host_str(), Some("127.0.0.1") | Some("[::1]"));
    if !loopback(&a) || !loopback(&b) {
        return false;
    }
    let (_, _) = (a.set_port(None), b.set_port(None));
    a == b
}

impl AccessKey {
    /// The key as the management API shows it (no secret).
    pub fn to_json(&self) -> Value {
        let mut v = serde_json::json!({"id": self.id, "scopes": self.scopes, "customClaims": self.custom_claims});
        if let Some(n) = &self.name {
            v["name"] = n.clone().into();
        }
        if let Some(t) = self.expires_at {
            v["expiresAt"] = t.into();
        }
        v
    }
}

const KEY_FIELDS: [&str; 6] = ["id", "name", "secret", "scopes", "customClaims", "expiresAt"];

impl AccessKey {
    pub fn from_json(value: &Value, index: usize) -> Result<AccessKey> {
        let at = format!("accessKeys[{index}]");
        let obj = value.as_object().ok_or_else(|| Error::config(format!("{at} must be an object")))?;
        check_fields(obj, &KEY_FIELDS, &at)?;
        let id = string(obj, "id", &at)?.ok_or_else(|| Error::config(format!("{at} needs an id")))?;
        let at = format!("access key {id:?}");
        let secret = string(obj, "secret", &at)?.ok_or_else(|| Error::config(format!("{at} needs a secret")))?;
        let secret = resolve_env(&secret)?;
        if secret.len() < 16 {
            return Err(Error::config(format!("{at}: secret must be at least 16 characters (use a random value)")));
        }
        let custom_claims = match obj.get("customClaims") {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(m)) => m.clone(),
            Some(_) => return Err(Error::config(format!("{at}.customClaims must be an object"))),
        };
        if let Some(k) = custom_claims.keys().find(|k| crate::flow::RESERVED_CLAIMS.contains(&k.as_str()) || *k == "scope" || *k == "client_id") {
            return Err(Error::config(format!("{at}.customClaims: {k:?} is a registered claim")));
        }
        let expires_at = match obj.get("expiresAt") {
            None | Some(Value::Null) => None,
            Some(v) => Some(v.as_u64().ok_or_else(|| Error::config(format!("{at}.expiresAt must be seconds since the epoch")))?),
        };
        Ok(AccessKey {
            name: string(obj, "name", &at)?,
            secret_digest: digest(&secret),
            scopes: strings(obj, "scopes", &at)?.unwrap_or_default(),
            custom_claims,
            expires_at,
            id,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_application_and_access_key_field_is_documented() {
        crate::project::assert_documented("application", &APP_FIELDS);
        crate::project::assert_documented("access key", &KEY_FIELDS);
    }

    #[test]
    fn loopback_redirects_match_any_port_and_nothing_else_does() {
        let app = Application::from_json(
            &json!({"clientId": "a", "public": true, "redirectUris": ["http://127.0.0.1/cb", "https://app.example/cb"]}),
            0,
        )
        .unwrap();
        assert!(app.redirect_uri_allowed("http://127.0.0.1:53123/cb"));
        assert!(app.redirect_uri_allowed("http://127.0.0.1/cb"));
        assert!(!app.redirect_uri_allowed("http://127.0.0.1:5/other"));
        assert!(!app.redirect_uri_allowed("http://localhost:5/cb"));
        assert!(app.redirect_uri_allowed("https://app.example/cb"));
        assert!(!app.redirect_uri_allowed("https://app.example:444/cb"));
        assert!(!app.redirect_uri_allowed("https://app.example/cb?x=1"));
        assert!(!app.redirect_uri_allowed("http://127.0.0.1:9/c\nb"));
        assert!(!app.redirect_uri_allowed("http://127.0.0.1:9/c\rb"));
        assert!(!app.redirect_uri_allowed("http://127.0.0.1:9/cb\t"));
    }

    #[test]
    fn redirect_uris_follow_rfc_8252_for_sign_in_and_logout() {
        let native = json!({"clientId": "n", "public": true,
            "redirectUris": ["com.example.app:/oauth2redirect", "http://127.0.0.1/cb", "https://app.example.com/cb"],
            "postLogoutRedirectUris": ["com.example.app:/signed-out"]});
        let app = Application::from_json(&native, 0).unwrap();
        assert!(app.redirect_uri_allowed("com.example.app:/oauth2redirect"));
        assert!(!app.redirect_uri_allowed("com.example.app:/other"));
        assert!(!app.redirect_uri_allowed("com.evil.app:/oauth2redirect"));
        for field in ["redirectUris", "postLogoutRedirectUris"] {
            for (uri, rule) in [
                ("javascript:alert(document.cookie)", "javascript: scheme"),
                ("data:text/html,x", "data: scheme"),
                ("vbscript:x", "vbscript: scheme"),
                ("file:///etc/passwd", "file: scheme"),
                ("blob:https://a/x", "blob: scheme"),
                ("about:blank", "about: scheme"),
                ("myapp:/cb", "reverse-DNS"),
            ] {
                let err = Application::from_json(&json!({"clientId": "n", "public": true, field: [uri], "redirectUris": if field == "redirectUris" { json!([uri]) } else { json!(["https://a/cb"]) }}), 0).unwrap_err();
                assert!(err.message.contains(&format!("application \"n\".{field}")) && err.message.contains(rule), "{field} {uri}: {}", err.message);
            }
            let confidential = json!({"clientId": "c", "clientSecret": "0123456789abcdef", field: ["com.example.app:/cb"],
                "redirectUris": if field == "redirectUris" { json!(["com.example.app:/cb"]) } else { json!(["https://a/cb"]) }});
            let err = Application::from_json(&confidential, 0).unwrap_err();
            assert!(err.message.contains(field) && err.message.contains("public applications"), "{}", err.message);
        }
    }

    #[test]
    fn bad_applications_name_the_problem() {
        let cases = [
            (json!({"clientId": "a", "public": true, "redirectUris": ["x"]}), "is an absolute URL"),
            (json!({"clientId": "a", "redirectUris": ["https://a/cb"]}), "needs a clientSecret"),
            (json!({"clientId": "a", "public": true, "clientSecret": "0123456789abcdef", "redirectUris": ["https://a/cb"]}), "no clientSecret"),
            (json!({"clientId": "a", "clientSecret": "short", "redirectUris": ["https://a/cb"]}), "at least 16"),
            (json!({"clientId": "a", "public": true, "redirectUri": []}), "unknown field"),
            (json!({"clientId": "a", "public": true, "grantTypes": ["password"], "redirectUris": ["https://a/cb"]}), "password"),
            (json!({"clientId": "a", "tokenEndpointAuthMethod": "private_key_jwt", "redirectUris": ["https://a/cb"]}), "jwks"),
        ];
        for (doc, want) in cases {
            let err = Application::from_json(&doc, 0).unwrap_err();
            assert!(err.message.contains(want), "{doc}: {}", err.message);
        }
        assert!(secret_matches("0123456789abcdef", &digest("0123456789abcdef")));
        assert!(!secret_matches("0123456789abcdeF", &digest("0123456789abcdef")));
    }
}
