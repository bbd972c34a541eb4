//! The client's settings: how it authenticates, the provider's endpoints,
//! its options, and the settings object bindings and project files give.

use super::*;

/// How the client authenticates at the token endpoint.
#[derive(Debug, Clone)]
pub enum ClientAuth {
    /// A public client: `client_id` only.
    None,
    ClientSecretBasic(String),
    ClientSecretPost(String),
    /// RFC 7523 client assertion signed with this private key.
    PrivateKeyJwt(Key),
}

/// The OP's endpoints, from discovery or given by hand. It serialises
/// with the discovery document's names (those of
/// [`ProviderMetadata`](crate::oidc::discovery::ProviderMetadata)).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Endpoints {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    #[serde(rename = "authorization_endpoint")]
    pub authorization: String,
    #[serde(rename = "token_endpoint")]
    pub token: String,
    #[serde(rename = "userinfo_endpoint", skip_serializing_if = "Option::is_none")]
    pub userinfo: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwks_uri: Option<String>,
    #[serde(rename = "end_session_endpoint", skip_serializing_if = "Option::is_none")]
    pub end_session: Option<String>,
    #[serde(rename = "revocation_endpoint", skip_serializing_if = "Option::is_none")]
    pub revocation: Option<String>,
}

impl From<crate::oidc::discovery::ProviderMetadata> for Endpoints {
    fn from(meta: crate::oidc::discovery::ProviderMetadata) -> Endpoints {
        Endpoints {
            issuer: Some(meta.issuer),
            authorization: meta.authorization_endpoint,
            token: meta.token_endpoint,
            userinfo: meta.userinfo_endpoint,
            jwks_uri: meta.jwks_uri,
            end_session: meta.end_session_endpoint,
            revocation: meta.revocation_endpoint,
        }
    }
}

impl Endpoints {
    /// The discovery document's names for the endpoints in use.
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or_default()
    }
}

/// Client settings; `ClientOptions::new` gives the defaults.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    pub client_id: String,
    pub auth: ClientAuth,
    pub redirect_uri: String,
    /// Defaults to `["openid"]`.
    pub scopes: Vec<String>,
    /// id_token algorithms accepted. Defaults to RS256, PS256, ES256, EdDSA.
    pub id_token_algorithms: Vec<Algorithm>,
    /// Timeout of every outbound call. Defaults to 10 s.
    pub timeout: Duration,
    /// Clock leeway for id_tokens, seconds. Defaults to 60.
    pub leeway: u64,
    /// How long discovered metadata is trusted. Defaults to 1 h.
    pub metadata_ttl: Duration,
}

impl ClientOptions {
    pub fn new(client_id: impl Into<String>, redirect_uri: impl Into<String>, auth: ClientAuth) -> ClientOptions {
        ClientOptions {
            client_id: client_id.into(),
            auth,
            redirect_uri: redirect_uri.into(),
            scopes: vec!["openid".to_owned()],
            id_token_algorithms: vec![Algorithm::RS256, Algorithm::PS256, Algorithm::ES256, Algorithm::EdDSA],
            timeout: Duration::from_secs(10),
            leeway: 60,
            metadata_ttl: Duration::from_secs(3600),
        }
    }
}

/// A client's settings as they are given: JSON by these (camelCase) names
/// in Python, Node and the project file, this record in Swift and Kotlin.
/// [`ClientConfig::from_settings`] checks them; every `None` keeps the
/// default.
#[derive(Debug, Clone, Default, PartialEq)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct ClientSettings {
    /// Required.
    pub client_id: String,
    /// Required: where the provider sends the browser back.
    pub redirect_uri: String,
    /// `${ENV}` references are resolved.
    #[cfg_attr(feature = "uniffi", uniffi(default))]
    pub client_secret: Option<String>,
    /// `client_secret_basic` (the default with a secret),
    /// `client_secret_post`, `private_key_jwt`, `none` (the default without).
    #[cfg_attr(feature = "uniffi", uniffi(default))]
    pub client_auth: Option<String>,
    /// Defaults to `["openid"]`.
    #[cfg_attr(feature = "uniffi", uniffi(default))]
    pub scopes: Option<Vec<String>>,
    /// Seconds, in (0, 120]; defaults to 10.
    #[cfg_attr(feature = "uniffi", uniffi(default))]
    pub timeout: Option<f64>,
    /// id_token clock leeway, 0 to 300 seconds; defaults to 60.
    #[cfg_attr(feature = "uniffi", uniffi(default))]
    pub leeway: Option<u64>,
    /// Defaults to RS256, PS256, ES256, EdDSA.
    #[cfg_attr(feature = "uniffi", uniffi(default))]
    pub id_token_algorithms: Option<Vec<String>>,
    /// Discovery (with `issuer` as the expected issuer) or the endpoints
    /// by hand, not both.
    #[cfg_attr(feature = "uniffi", uniffi(default))]
    pub discovery_url: Option<String>,
    #[cfg_attr(feature = "uniffi", uniffi(default))]
    pub issuer: Option<String>,
    #[cfg_attr(feature = "uniffi", uniffi(default))]
    pub authorization_endpoint: Option<String>,
    #[cfg_attr(feature = "uniffi", uniffi(default))]
    pub token_endpoint: Option<String>,
    #[cfg_attr(feature = "uniffi", uniffi(default))]
    pub userinfo_endpoint: Option<String>,
    #[cfg_attr(feature = "uniffi", uniffi(default))]
    pub jwks_uri: Option<String>,
    #[cfg_attr(feature = "uniffi", uniffi(default))]
    pub end_session_endpoint: Option<String>,
    #[cfg_attr(feature = "uniffi", uniffi(default))]
    pub revocation_endpoint: Option<String>,
}

impl ClientSettings {
    /// Reads the settings by name; the types are checked here, everything
    /// else by [`ClientConfig::from_settings`].
    pub fn from_json(config: &Map<String, Value>) -> Result<ClientSettings> {
        if let Some(k) = config.keys().find(|k| !CONFIG_FIELDS.contains(&k.as_str())) {
            return Err(Error::config(format!("unknown client setting {k:?}")));
        }
        let text = |k: &str| -> Result<Option<String>> {
            match config.get(k) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(_) => Err(Error::config(format!("{k} must be a non-empty string"))),
            }
        };
        let scopes = match config.get("scopes") {
            None | Some(Value::Null) => None,
            Some(Value::Array(a)) => Some(
                a.iter()
                    .map(|v| v.as_str().map(str::to_owned))
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(|| Error::config("scopes must be an array of scope names"))?,
            ),
            Some(Value::String(s)) => Some(s.split(' ').filter(|x| !x.is_empty()).map(str::to_owned).collect()),
            Some(_) => return Err(Error::config("scopes must be an array of scope names")),
        };
        let timeout = match config.get("timeout") {
            None | Some(Value::Null) => None,
            Some(v) => Some(v.as_f64().ok_or_else(|| Error::config("timeout must be seconds in (0, 120]"))?),
        };
        let leeway = match config.get("leeway") {
            None | Some(Value::Null) => None,
            Some(v) => Some(v.as_u64().ok_or_else(|| Error::config("leeway must be 0 to 300 seconds"))?),
        };
        let id_token_algorithms = match config.get("idTokenAlgorithms") {
            None | Some(Value::Null) => None,
            Some(v) => {
                let names = v.as_array().ok_or_else(|| Error::config("idTokenAlgorithms must be an array"))?;
                Some(
                    names
                        .iter()
                        .map(|n| n.as_str().map(str::to_owned))
                        .collect::<Option<Vec<_>>>()
                        .ok_or_else(|| Error::config("idTokenAlgorithms must be names"))?,
                )
            }
        };
        Ok(ClientSettings {
            client_id: text("clientId")?.unwrap_or_default(),
            redirect_uri: text("redirectUri")?.unwrap_or_default(),
            client_secret: text("clientSecret")?,
            client_auth: text("clientAuth")?,
            scopes,
            timeout,
            leeway,
            id_token_algorithms,
            discovery_url: text("discoveryUrl")?,
            issuer: text("issuer")?,
            authorization_endpoint: text("authorizationEndpoint")?,
            token_endpoint: text("tokenEndpoint")?,
            userinfo_endpoint: text("userinfoEndpoint")?,
            jwks_uri: text("jwksUri")?,
            end_session_endpoint: text("endSessionEndpoint")?,
            revocation_endpoint: text("revocationEndpoint")?,
        })
    }
}

/// A checked client configuration: the options and where the endpoints come
/// from (discovery, or by hand).
#[derive(Debug, Clone)]
pub struct ClientConfig {
    pub options: ClientOptions,
    pub discovery_url: Option<String>,
    pub issuer: Option<String>,
    pub endpoints: Option<Endpoints>,
}

const CONFIG_FIELDS: [&str; 16] = [
    "clientId", "redirectUri", "clientSecret", "clientAuth", "scopes", "timeout", "leeway", "idTokenAlgorithms",
    "discoveryUrl", "issuer", "authorizationEndpoint", "tokenEndpoint", "userinfoEndpoint", "jwksUri",
    "endSessionEndpoint", "revocationEndpoint",
];

impl ClientConfig {
    /// Parses settings by name ([`ClientSettings::from_json`]) and checks them.
    pub fn from_json(config: &Map<String, Value>, private_key: Option<Key>) -> Result<ClientConfig> {
        ClientConfig::from_settings(ClientSettings::from_json(config)?, private_key)
    }

    /// Checks settings; `private_key` signs `private_key_jwt` assertions.
    pub fn from_settings(s: ClientSettings, private_key: Option<Key>) -> Result<ClientConfig> {
        // An empty string is no value, and never a valid one.
        let text = |v: Option<String>, k: &str| -> Result<Option<String>> {
            match v {
                Some(t) if t.is_empty() => Err(Error::config(format!("{k} must be a non-empty string"))),
                v => Ok(v),
            }
        };
        let client_id = Some(s.client_id).filter(|t| !t.is_empty()).ok_or_else(|| Error::config("clientId is required"))?;
        let redirect_uri = Some(s.redirect_uri).filter(|t| !t.is_empty()).ok_or_else(|| Error::config("redirectUri is required"))?;
        let secret = text(s.client_secret, "clientSecret")?.map(|s| crate::env::resolve_env(&s)).transpose()?;
        let method = text(s.client_auth, "clientAuth")?;
        let auth = match (method.as_deref(), secret, private_key) {
            (None | Some("client_secret_basic"), Some(s), None) => ClientAuth::ClientSecretBasic(s),
            (Some("client_secret_post"), Some(s), None) => ClientAuth::ClientSecretPost(s),
            (None | Some("private_key_jwt"), None, Some(k)) => {
                if !k.has_private() {
                    return Err(Error::config("private_key_jwt needs a private key"));
                }
                ClientAuth::PrivateKeyJwt(k)
            }
            (None | Some("none"), None, None) => ClientAuth::None,
            (Some(m @ ("client_secret_basic" | "client_secret_post")), None, _) => {
                return Err(Error::config(format!("{m} needs clientSecret")))
            }
            (Some("private_key_jwt"), _, None) => return Err(Error::config("private_key_jwt needs a private key")),
            (Some(m), _, _) if !["client_secret_basic", "client_secret_post", "private_key_jwt", "none"].contains(&m) => {
                return Err(Error::config(format!("clientAuth {m:?} is not client_secret_basic, client_secret_post, private_key_jwt or none")))
            }
            _ => return Err(Error::config("give exactly one of clientSecret and a private key, matching clientAuth")),
        };
        let mut options = ClientOptions::new(client_id, redirect_uri, auth);
        if let Some(scopes) = s.scopes {
            if scopes.iter().any(|x| x.is_empty() || x.contains(' ')) {
                return Err(Error::config("scopes must be an array of scope names"));
            }
            options.scopes = scopes;
        }
        if let Some(secs) = s.timeout {
            if !(secs > 0.0 && secs <= 120.0) {
                return Err(Error::config("timeout must be seconds in (0, 120]"));
            }
            options.timeout = Duration::from_secs_f64(secs);
        }
        if let Some(l) = s.leeway {
            if l > 300 {
                return Err(Error::config("leeway must be 0 to 300 seconds"));
            }
            options.leeway = l;
        }
        if let Some(names) = s.id_token_algorithms {
            options.id_token_algorithms = names.iter().map(|n| Algorithm::parse(n)).collect::<Result<_>>()?;
        }
        let discovery_url = text(s.discovery_url, "discoveryUrl")?;
        let issuer = text(s.issuer, "issuer")?;
        let endpoints = match (text(s.authorization_endpoint, "authorizationEndpoint")?, text(s.token_endpoint, "tokenEndpoint")?) {
            (Some(authorization), Some(token)) => Some(Endpoints {
                issuer: issuer.clone(),
                authorization,
                token,
                userinfo: text(s.userinfo_endpoint, "userinfoEndpoint")?,
                jwks_uri: text(s.jwks_uri, "jwksUri")?,
                end_session: text(s.end_session_endpoint, "endSessionEndpoint")?,
                revocation: text(s.revocation_endpoint, "revocationEndpoint")?,
            }),
            (None, None) => None,
            _ => return Err(Error::config("give both authorizationEndpoint and tokenEndpoint, or a discoveryUrl")),
        };
        match (&discovery_url, &endpoints) {
            (Some(_), Some(_)) => Err(Error::config("give a discoveryUrl or the endpoints by hand, not both")),
            (None, None) => Err(Error::config("give a discoveryUrl or authorizationEndpoint and tokenEndpoint")),
            _ => Ok(ClientConfig { options, discovery_url, issuer, endpoints }),
        }
    }
}

pub(super) fn check_url(url: &str, what: &str) -> Result<()> {
    let u = url::Url::parse(url).map_err(|_| Error::config(format!("{what} is not an absolute URL")))?;
    if !matches!(u.scheme(), "http" | "https") {
        return Err(Error::config(format!("{what} must be http or https")));
    }
    Ok(())
}

/// A redirect URI the app gives: RFC 8252 §7's forms, named rule when not.
pub(super) fn check_redirect_uri(uri: &str, what: &str) -> Result<()> {
    crate::oidc::redirect_uri::classify(uri).map(|_| ()).map_err(|rule| Error::config(format!("{what}: {rule}")))
}

#[cfg(test)]
#[allow(clippy::expect_used)]
mod tests {
    use super::Endpoints;
    use crate::oidc::discovery::ProviderMetadata;
    use serde_json::json;

    #[test]
    fn endpoints_use_the_discovery_names_and_read_back() {
        let e = Endpoints {
            issuer: Some("https://op.example".into()),
            authorization: "https://op.example/a".into(),
            token: "https://op.example/t".into(),
            userinfo: None,
            jwks_uri: Some("https://op.example/jwks".into()),
            end_session: None,
            revocation: Some("https://op.example/r".into()),
        };
        let v = e.to_json();
        assert_eq!(
            v,
            json!({"issuer": "https://op.example", "authorization_endpoint": "https://op.example/a", "token_endpoint": "https://op.example/t",
                   "jwks_uri": "https://op.example/jwks", "revocation_endpoint": "https://op.example/r"})
        );
        let meta = ProviderMetadata::from_json(v.to_string().as_bytes()).expect("the client's names are discovery's");
        assert_eq!(Endpoints::from(meta), e);
    }
}
