//! The front channel: the authorization request (PKCE, nonce, state),
//! the callback it comes back to, and the end-session URL.

use super::*;
use std::collections::HashMap;

/// Which grant the authorization request starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
pub enum ResponseType {
    /// `code` with PKCE S256.
    #[default]
    Code,
    /// The implicit `id_token` grant, answered by `form_post`.
    IdToken,
}

/// Per-request choices for [`OidcClient::authorization_request`]; every
/// field may be left out. Python and Node give them as an object by the
/// names of [`AuthorizationParams::from_json`], Swift and Kotlin as this
/// record; `authorization_request` checks them.
#[derive(Debug, Clone, Default, PartialEq)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct AuthorizationParams {
    /// Overrides the client's scopes.
    #[cfg_attr(feature = "uniffi", uniffi(default))]
    pub scopes: Option<Vec<String>>,
    /// `login`, `consent`, `select_account`, `none`.
    #[cfg_attr(feature = "uniffi", uniffi(default))]
    pub prompt: Vec<String>,
    #[cfg_attr(feature = "uniffi", uniffi(default))]
    pub login_hint: Option<String>,
    #[cfg_attr(feature = "uniffi", uniffi(default))]
    pub max_age: Option<u64>,
    /// Custom authorization-endpoint parameters (e.g. `access_type=offline`),
    /// added in name order; `params` in every binding.
    #[cfg_attr(feature = "uniffi", uniffi(default, name = "params"))]
    pub extra: HashMap<String, String>,
    #[cfg_attr(feature = "uniffi", uniffi(default))]
    /// `code` when left out.
    pub response_type: Option<ResponseType>,
    /// Overrides the client's redirect URI for this request.
    #[cfg_attr(feature = "uniffi", uniffi(default))]
    pub redirect_uri: Option<String>,
}

/// What the caller keeps between the redirect and the callback.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct AuthorizationRequest {
    pub url: String,
    pub state: String,
    pub nonce: String,
    /// `None` for the implicit grant.
    pub code_verifier: Option<String>,
    pub redirect_uri: String,
}

/// A parsed, state-checked callback: the code, or the id_token of an
/// implicit response, and the state.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record), uniffi(name = "CallbackParams"))]
pub struct Callback {
    pub code: Option<String>,
    pub id_token: Option<String>,
    pub state: String,
}

impl AuthorizationParams {
    /// Parses `{scopes, prompt, loginHint, maxAge, params, responseType, redirectUri}`.
    pub fn from_json(v: &Map<String, Value>) -> Result<AuthorizationParams> {
        let known = ["scopes", "prompt", "loginHint", "maxAge", "params", "responseType", "redirectUri"];
        if let Some(k) = v.keys().find(|k| !known.contains(&k.as_str())) {
            return Err(Error::invalid_request(format!("unknown authorization option {k:?}")));
        }
        let words = |k: &str| -> Result<Option<Vec<String>>> {
            match v.get(k) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.split(' ').filter(|x| !x.is_empty()).map(str::to_owned).collect())),
                Some(Value::Array(a)) => a
                    .iter()
                    .map(|x| x.as_str().map(str::to_owned))
                    .collect::<Option<Vec<_>>>()
                    .map(Some)
                    .ok_or_else(|| Error::invalid_request(format!("{k} must be strings"))),
                Some(_) => Err(Error::invalid_request(format!("{k} must be a string or an array of strings"))),
            }
        };
        let text = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
        let extra = crate::oidc::params::string_pairs(v.get("params"), "params").map_err(Error::invalid_request)?.into_iter().collect();
        let response_type = match text("responseType").as_deref() {
            None | Some("code") => ResponseType::Code,
            Some("id_token") => ResponseType::IdToken,
            Some(other) => return Err(Error::invalid_request(format!("responseType {other:?} is not code or id_token"))),
        };
        Ok(AuthorizationParams {
            scopes: words("scopes")?,
            prompt: words("prompt")?.unwrap_or_default(),
            login_hint: text("loginHint"),
            max_age: v.get("maxAge").and_then(Value::as_u64),
            extra,
            response_type: Some(response_type),
            redirect_uri: text("redirectUri"),
        })
    }
}

impl AuthorizationRequest {
    pub fn to_json(&self) -> Value {
        json!({"url": self.url, "state": self.state, "nonce": self.nonce, "codeVerifier": self.code_verifier, "redirectUri": self.redirect_uri})
    }

    /// The object `to_json` made (kept by the app between redirect and callback).
    pub fn from_json(v: &Map<String, Value>) -> Result<AuthorizationRequest> {
        let text = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
        let need = |k: &str| text(k).ok_or_else(|| Error::invalid_request(format!("the authorization request lacks {k}")));
        Ok(AuthorizationRequest {
            url: text("url").unwrap_or_default(),
            state: need("state")?,
            nonce: need("nonce")?,
            code_verifier: text("codeVerifier"),
            redirect_uri: need("redirectUri")?,
        })
    }
}

/// The parameters of a callback given as a full redirect URL (any scheme:
/// `https://app/cb?...`, `com.example.app:/cb?...`), a path, a query or a
/// `form_post` body (where a `?` is always percent-encoded).
fn callback_query(input: &str) -> &str {
    let is_url = input.starts_with('/') || url::Url::parse(input).is_ok();
    let query = match input.split_once('?') {
        Some((_, q)) if is_url => q,
        _ => input.trim_start_matches('?'),
    };
    query.split('#').next().unwrap_or_default()
}

impl OidcClient {
    /// Builds the authorization URL with fresh `state`, `nonce` and (for
    /// `code`) a PKCE S256 verifier, which the caller keeps for the callback.
    pub fn authorization_request(&self, params: &AuthorizationParams) -> Result<AuthorizationRequest> {
        let endpoints = self.endpoints();
        let state = random_id("")?;
        let nonce = random_id("")?;
        let redirect_uri = params.redirect_uri.clone().unwrap_or_else(|| self.options.redirect_uri.clone());
        check_redirect_uri(&redirect_uri, "redirect_uri")?;
        let scopes = params.scopes.clone().unwrap_or_else(|| self.options.scopes.clone());
        let mut pairs: Vec<(String, String)> = vec![
            ("client_id".into(), self.options.client_id.clone()),
            ("redirect_uri".into(), redirect_uri.clone()),
            ("scope".into(), scopes.join(" ")),
            ("state".into(), state.clone()),
            ("nonce".into(), nonce.clone()),
        ];
        let code_verifier = match params.response_type.unwrap_or_default() {
            ResponseType::Code => {
                let pair = crate::pkce::generate(None)?;
                pairs.insert(0, ("response_type".into(), "code".into()));
                pairs.push(("code_challenge".into(), pair.challenge));
                pairs.push(("code_challenge_method".into(), "S256".into()));
                Some(pair.verifier)
            }
            ResponseType::IdToken => {
                pairs.insert(0, ("response_type".into(), "id_token".into()));
                pairs.push(("response_mode".into(), "form_post".into()));
                None
            }
        };
        if let Some(p) = params.prompt.iter().find(|p| !["none", "login", "consent", "select_account"].contains(&p.as_str())) {
            return Err(Error::invalid_request(format!("prompt {p:?} is not none, login, consent or select_account")));
        }
        if !params.prompt.is_empty() {
            pairs.push(("prompt".into(), params.prompt.join(" ")));
        }
        if let Some(h) = &params.login_hint {
            pairs.push(("login_hint".into(), h.clone()));
        }
        if let Some(m) = params.max_age {
            pairs.push(("max_age".into(), m.to_string()));
        }
        let mut extra: Vec<_> = params.extra.iter().collect();
        extra.sort();
        for (k, v) in extra {
            if pairs.iter().any(|(name, _)| name == k) {
                return Err(Error::invalid_request(format!("custom parameter {k:?} would override a protocol parameter")));
            }
            pairs.push((k.clone(), v.clone()));
        }
        let refs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let url = crate::oidc::params::append_query(&endpoints.authorization, &refs);
        Ok(AuthorizationRequest { url, state, nonce, code_verifier, redirect_uri })
    }
    /// Parses a callback: a full redirect URL, its query (`?a=b` or `a=b`)
    /// or a `form_post` body. Checks `state`, maps `error=` to error codes
    /// and checks the RFC 9207 `iss` when present.
    pub fn parse_callback(&self, input: &str, expected_state: &str) -> Result<Callback> {
        let params = self.callback_params(input, expected_state)?;
        if let Some(error) = params.get("error") {
            return Err(Error::new(oauth_error_code(error), describe(error, params.get("error_description"))));
        }
        let state = params.get("state").unwrap_or_default();
        let code = params.get("code").map(str::to_owned);
        let id_token = params.get("id_token").map(str::to_owned);
        if code.is_none() && id_token.is_none() {
            return Err(Error::invalid_request("the callback has neither code nor id_token"));
        }
        Ok(Callback { code, id_token, state: state.to_owned() })
    }
    /// The parameters of a callback that answers the request whose state is
    /// `expected_state`, whatever its outcome: no parameter repeated, the
    /// RFC 9207 `iss` when present, the state (constant time). A callback
    /// refused here is not that request's and must change nothing.
    pub(crate) fn callback_params(&self, input: &str, expected_state: &str) -> Result<crate::oidc::params::Params> {
        let params = crate::oidc::params::Params::parse(callback_query(input).as_bytes());
        if let Some(name) = params.repeated() {
            return Err(Error::invalid_request(format!("callback parameter {name} is repeated")));
        }
        if let Some(iss) = params.get("iss") {
            if self.endpoints().issuer.as_deref().is_some_and(|i| i != iss) {
                return Err(Error::new(ErrorCode::InvalidIssuer, "the callback's iss is not this provider's issuer (mix-up?)"));
            }
        }
        let state = params.get("state").unwrap_or_default();
        if !crate::pkce::constant_time_eq(state.as_bytes(), expected_state.as_bytes()) || expected_state.is_empty() {
            return Err(Error::invalid_request("state mismatch: the callback is not for this authorization request"));
        }
        Ok(params)
    }
    /// The RP-initiated logout URL.
    pub fn end_session_url(&self, id_token_hint: Option<&str>, post_logout_redirect_uri: Option<&str>, state: Option<&str>) -> Result<String> {
        let endpoints = self.endpoints();
        let base = endpoints.end_session.ok_or_else(|| Error::config("this provider has no end_session_endpoint"))?;
        let mut pairs = vec![("client_id", self.options.client_id.as_str())];
        if let Some(h) = id_token_hint {
            pairs.push(("id_token_hint", h));
        }
        if let Some(u) = post_logout_redirect_uri {
            check_redirect_uri(u, "post_logout_redirect_uri")?;
            pairs.push(("post_logout_redirect_uri", u));
        }
        if let Some(s) = state {
            pairs.push(("state", s));
        }
        Ok(crate::oidc::params::append_query(&base, &pairs))
    }
}
