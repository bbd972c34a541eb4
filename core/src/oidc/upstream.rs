//! Upstream identity providers ("social login", docs/configuration.md,
//! `oauthProviders`): the project's `oauthProviders` settings, and the
//! mapping of an upstream's verified claims onto an idflow user. The
//! provider's social-login endpoints are `provider/social_login.rs`.
//!
//! Users from a provider are keyed by (provider, `sub`): the login id
//! `{provider}:{sub}` (or the mapped `loginId` claim). A promoted email is
//! another login id of the same user; `mergeUsersByEmail` attaches a
//! first-time provider login to the user who already owns that verified
//! email.

use super::client::{ClientConfig, OidcClient, ResponseType};
use crate::error::{Error, ErrorCode, Result};
use crate::flow::Context;
use crate::jose::Key;
use crate::store::Store;
use crate::user::{looks_like_email, normalize_login_id, User};
use crate::users::provision::{self, ExternalSignIn};
use serde_json::{Map, Value};
use std::sync::Arc;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TriggerMethod {
    All,
    /// Only the `oauth` flow step; the API path answers `access_denied`.
    FlowsOnly,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmailHandling {
    PromoteIfVerified,
    PromoteAlways,
    AttributeOnly,
}

/// Claim paths for the user's fields (`customAttributes` by attribute name).
#[derive(Debug, Clone, PartialEq)]
pub struct AttributeMapping {
    pub login_id: String,
    pub email: String,
    pub name: String,
    pub given_name: String,
    pub family_name: String,
    pub phone: String,
    pub picture: String,
    pub custom_attributes: Vec<(String, String)>,
}

impl Default for AttributeMapping {
    fn default() -> Self {
        AttributeMapping {
            login_id: "sub".into(),
            email: "email".into(),
            name: "name".into(),
            given_name: "given_name".into(),
            family_name: "family_name".into(),
            phone: "phone_number".into(),
            picture: "picture".into(),
            custom_attributes: Vec::new(),
        }
    }
}

/// One `oauthProviders` entry.
#[derive(Debug, Clone)]
pub struct OAuthProvider {
    pub name: String,
    pub trigger_method: TriggerMethod,
    pub client: ClientConfig,
    pub response_type: ResponseType,
    pub authorization_params: Vec<(String, String)>,
    pub token_params: Vec<(String, String)>,
    pub prompt: Vec<String>,
    pub mapping: AttributeMapping,
    pub update_user_on_login: bool,
    pub manage_provider_tokens: bool,
    /// Where the API path sends the browser after the callback by default.
    pub redirect_url: Option<String>,
    pub email_handling: EmailHandling,
    pub merge_users_by_email: bool,
}

const FIELDS: [&str; 29] = [
    "name", "triggerMethod", "clientId", "clientSecret", "clientAuth", "scopes", "grantType", "discoveryUrl", "issuer",
    "authorizationEndpoint", "tokenEndpoint", "userinfoEndpoint", "jwksUri", "endSessionEndpoint", "revocationEndpoint",
    "authorizationParams", "tokenParams", "prompt", "attributeMapping", "updateUserOnLogin", "manageProviderTokens",
    "callbackDomain", "redirectUrl", "emailHandling", "mergeUsersByEmail", "timeout", "leeway", "idTokenAlgorithms",
    "description",
];

fn string_pairs(v: Option<&Value>, at: &str) -> Result<Vec<(String, String)>> {
    crate::oidc::params::string_pairs(v, at).map_err(Error::config)
}

impl OAuthProvider {
    /// Parses an entry. `base_url` makes the default callback URL
    /// (`{base_url}/v1/oauth/callback`); `signing_key` signs `private_key_jwt`
    /// assertions (the project's key).
    pub fn from_json(v: &Value, index: usize, base_url: &str, signing_key: &Key) -> Result<OAuthProvider> {
        let at = format!("oauthProviders[{index}]");
        let obj = v.as_object().ok_or_else(|| Error::config(format!("{at} must be an object")))?;
        if let Some(k) = obj.keys().find(|k| !FIELDS.contains(&k.as_str())) {
            return Err(Error::config(format!("unknown field {at}.{k}")));
        }
        let name = obj
            .get("name")
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'))
            .ok_or_else(|| Error::config(format!("{at} needs a name of letters, digits, - and _")))?
            .to_owned();
        let at = format!("oauth provider {name:?}");
        let text = |k: &str| obj.get(k).and_then(Value::as_str).map(str::to_owned);
        let flag = |k: &str, default: bool| -> Result<bool> {
            match obj.get(k) {
                None | Some(Value::Null) => Ok(default),
                Some(Value::Bool(b)) => Ok(*b),
                Some(_) => Err(Error::config(format!("{at}.{k} must be true or false"))),
            }
        };
        let trigger_method = match text("triggerMethod").as_deref() {
            None | Some("all") => TriggerMethod::All,
            Some("flowsOnly") => TriggerMethod::FlowsOnly,
            Some(o) => return Err(Error::config(format!("{at}.triggerMethod {o:?} is not all or flowsOnly"))),
        };
        let response_type = match text("grantType").as_deref() {
            None | Some("authorization_code") => ResponseType::Code,
            Some("implicit") => ResponseType::IdToken,
            Some(o) => return Err(Error::config(format!("{at}.grantType {o:?} is not authorization_code or implicit"))),
        };
        let email_handling = match text("emailHandling").as_deref() {
            None | Some("promoteIfVerified") => EmailHandling::PromoteIfVerified,
            Some("promoteAlways") => EmailHandling::PromoteAlways,
            Some("attributeOnly") => EmailHandling::AttributeOnly,
            Some(o) => return Err(Error::config(format!("{at}.emailHandling {o:?} is not promoteIfVerified, promoteAlways or attributeOnly"))),
        };
        let callback = match text("callbackDomain") {
            Some(d) => {
                if d.contains('/') || d.contains(':') && !d.contains('[') {
                    return Err(Error::config(format!("{at}.callbackDomain must be a host name, e.g. auth.example.com")));
                }
                format!("https://{d}/v1/oauth/callback")
            }
            None => format!("{}/v1/oauth/callback", base_url.trim_end_matches('/')),
        };
        // The client settings share their names with the OIDC client's.
        let mut client: Map<String, Value> = obj
            .iter()
            .filter(|(k, _)| {
                ["clientId", "clientSecret", "clientAuth", "scopes", "discoveryUrl", "issuer", "authorizationEndpoint", "tokenEndpoint",
                    "userinfoEndpoint", "jwksUri", "endSessionEndpoint", "revocationEndpoint", "timeout", "leeway", "idTokenAlgorithms"]
                    .contains(&k.as_str())
            })
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        client.insert("redirectUri".into(), callback.into());
        let wants_key = client.get("clientAuth").and_then(Value::as_str) == Some("private_key_jwt");
        let client = ClientConfig::from_json(&client, wants_key.then(|| signing_key.clone()))
            .map_err(|e| Error::config(format!("{at}: {}", e.message)))?;
        let mut mapping = AttributeMapping::default();
        match obj.get("attributeMapping") {
            None | Some(Value::Null) => {}
            Some(Value::Object(m)) => {
                for (k, v) in m {
                    let path = || v.as_str().filter(|s| !s.is_empty()).map(str::to_owned).ok_or_else(|| Error::config(format!("{at}.attributeMapping.{k} must be a claim path")));
                    match k.as_str() {
                        "loginId" => mapping.login_id = path()?,
                        "email" => mapping.email = path()?,
                        "name" => mapping.name = path()?,
                        "givenName" => mapping.given_name = path()?,
                        "familyName" => mapping.family_name = path()?,
                        "phone" => mapping.phone = path()?,
                        "picture" => mapping.picture = path()?,
                        "customAttributes" => mapping.custom_attributes = string_pairs(Some(v), &format!("{at}.attributeMapping.customAttributes"))?,
                        other => return Err(Error::config(format!("unknown field {at}.attributeMapping.{other}"))),
                    }
                }
            }
            Some(_) => return Err(Error::config(format!("{at}.attributeMapping must be an object"))),
        }
        let prompt = match obj.get("prompt") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::String(s)) => s.split(' ').filter(|x| !x.is_empty()).map(str::to_owned).collect(),
            Some(Value::Array(a)) => a
                .iter()
                .map(|p| p.as_str().map(str::to_owned))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| Error::config(format!("{at}.prompt must be strings")))?,
            Some(_) => return Err(Error::config(format!("{at}.prompt must be a string or an array"))),
        };
        Ok(OAuthProvider {
            trigger_method,
            client,
            response_type,
            authorization_params: string_pairs(obj.get("authorizationParams"), &format!("{at}.authorizationParams"))?,
            token_params: string_pairs(obj.get("tokenParams"), &format!("{at}.tokenParams"))?,
            prompt,
            mapping,
            update_user_on_login: flag("updateUserOnLogin", true)?,
            manage_provider_tokens: flag("manageProviderTokens", false)?,
            redirect_url: text("redirectUrl"),
            email_handling,
            merge_users_by_email: flag("mergeUsersByEmail", false)?,
            name,
        })
    }

    /// The OIDC client for this provider (discovers on first use).
    pub async fn connect(&self) -> Result<OidcClient> {
        OidcClient::from_config(self.client.clone()).await
    }

    /// Signs the upstream user in ([`provision::external`]): finds the user
    /// by (provider, login id), else (with `mergeUsersByEmail`) by verified
    /// email, else creates one; applies the mapping at creation, and on
    /// later logins when `updateUserOnLogin`. Returns the user.
    pub fn provision(&self, store: &dyn Store, claims: &Map<String, Value>, now: u64) -> Result<User> {
        let ctx = Context::from_value(Value::Object(claims.clone()))?;
        let text = |path: &str| -> Option<String> {
            match ctx.get(path) {
                Some(Value::String(s)) if !s.trim().is_empty() => Some(s.trim().to_owned()),
                Some(Value::Number(n)) => Some(n.to_string()),
                _ => None,
            }
        };
        let subject = text(&self.mapping.login_id).ok_or_else(|| {
            Error::new(ErrorCode::InvalidToken, format!("the provider's claims have no {:?} for the login id", self.mapping.login_id))
        })?;
        let external = format!("{}:{subject}", self.name);
        let email = text(&self.mapping.email).filter(|e| looks_like_email(e)).map(|e| normalize_login_id(&e));
        let verified = ctx.get("email_verified").is_some_and(|v| v == &Value::Bool(true) || v == "true");
        let promote = match self.email_handling {
            EmailHandling::PromoteAlways => true,
            EmailHandling::PromoteIfVerified => verified,
            EmailHandling::AttributeOnly => false,
        };
        let identity = ExternalSignIn {
            login_id: &external,
            merge_by_email: email.as_deref().filter(|_| self.merge_users_by_email && verified),
            promote_email: email.as_deref().filter(|_| promote),
        };
        let user = provision::external(store, &identity, now, |user, created| {
            if !(created || self.update_user_on_login) {
                return;
            }
            let set = |field: &mut Option<String>, path: &str| {
                if let Some(v) = text(path) {
                    *field = Some(v);
                }
            };
            set(&mut user.name, &self.mapping.name);
            set(&mut user.given_name, &self.mapping.given_name);
            set(&mut user.family_name, &self.mapping.family_name);
            set(&mut user.picture, &self.mapping.picture);
            if let Some(p) = text(&self.mapping.phone) {
                user.phone = Some(p);
                user.verified_phone = ctx.get("phone_number_verified") == Some(&Value::Bool(true));
            }
            if let Some(e) = &email {
                user.email = Some(e.clone());
                user.verified_email = verified;
            }
            for (attr, path) in &self.mapping.custom_attributes {
                if let Some(v) = ctx.get(path) {
                    user.custom_attributes.insert(attr.clone(), v.clone());
                }
            }
        })?;
        Ok(user)
    }
}

/// The providers of a project, by name.
#[derive(Debug, Default, Clone)]
pub struct OAuthProviders {
    pub providers: Vec<Arc<OAuthProvider>>,
}

impl OAuthProviders {
    pub fn from_json(v: Option<&Value>, base_url: &str, signing_key: &Key) -> Result<OAuthProviders> {
        let mut providers: Vec<Arc<OAuthProvider>> = Vec::new();
        match v {
            None | Some(Value::Null) => {}
            Some(Value::Array(items)) => {
                for (i, item) in items.iter().enumerate() {
                    let p = OAuthProvider::from_json(item, i, base_url, signing_key)?;
                    if providers.iter().any(|x| x.name == p.name) {
                        return Err(Error::config(format!("oauth provider {:?} is declared twice", p.name)));
                    }
                    providers.push(Arc::new(p));
                }
            }
            Some(_) => return Err(Error::config("oauthProviders must be an array")),
        }
        Ok(OAuthProviders { providers })
    }

    pub fn get(&self, name: &str) -> Option<&Arc<OAuthProvider>> {
        self.providers.iter().find(|p| p.name == name)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_oauth_provider_field_is_documented() {
        crate::project::assert_documented("oauthProviders", &super::FIELDS);
    }
}
