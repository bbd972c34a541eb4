//! The project file (JSON): project id, base URL, token lifetimes,
//! connectors and flows. The provider's sections (`applications`,
//! `accessKeys`, `roles`, `oauthProviders`, ...) are kept as given for the
//! provider to read; any other field is an error that names it.

use crate::connectors::{HttpConnector, HttpConnectorConfig};
use crate::credentials::password::PasswordSettings;
use crate::error::{Error, Result};
use crate::flow::{parse_flow, EngineConfig, Flow, FlowEngine};
use crate::jose::{Algorithm, Key};
use crate::store::Store;
use serde_json::{Map, Value};
use std::path::Path;
use std::sync::Arc;

const FIELDS: [&str; 18] = [
    "projectId", "baseUrl", "signing", "tokens", "applications", "accessKeys", "connectors", "roles",
    "oauthProviders", "flows", "tenants", "encryption", "redirectUrls", "rateLimits", "trustedProxies", "passwords", "email",
    "management",
];

/// Why `url` cannot be a redirect URL, if it cannot (the rule of
/// [`crate::oidc::redirect_uri`]).
fn check_redirect_url(url: &str) -> std::result::Result<(), String> {
    crate::oidc::redirect_uri::classify(url).map(|_| ())
}

/// `https://app.example` (no path, query or fragment) names an origin.
fn is_origin(text: &str) -> bool {
    let rest = text.split_once("://").map_or("", |(_, r)| r);
    !rest.is_empty() && !rest.contains(['/', '?', '#'])
}

/// A parsed project.
#[derive(Debug, Clone)]
pub struct Project {
    pub project_id: String,
    pub base_url: String,
    /// Signing algorithm for generated keys. Defaults to RS256.
    pub signing_alg: Algorithm,
    /// `signing.prepublish`: seconds a rotated-in key is published before
    /// it signs (default 3600).
    pub signing_prepublish: u64,
    /// Seconds. Default 600.
    pub session_ttl: u64,
    /// Seconds. Default 30 days.
    pub refresh_ttl: u64,
    /// Authorization code lifetime, seconds. Default 60.
    pub code_ttl: u64,
    /// Seconds after a refresh during which the same client presenting the
    /// rotated token gets the same answer again (a lost reply) instead of
    /// a revoked family. Defaults to 0 (off); at most 300.
    pub refresh_reuse_grace: u64,
    pub connectors: Vec<HttpConnectorConfig>,
    pub flows: Vec<Flow>,
    /// Password policy, hashing cost and lockout (`passwords`).
    pub passwords: PasswordSettings,
    /// How mail is sent (`email`).
    pub email: Option<crate::messaging::EmailSettings>,
    /// Role name → permissions (`roles: [{"name", "permissions"}]`).
    pub roles: std::collections::HashMap<String, Vec<String>>,
    /// Where a login outside the OIDC endpoints (social login by API) may
    /// send a browser with a code: exact URLs, or origins
    /// (`https://app.example`) that approve every path on them.
    /// Defaults to none (each provider's own `redirectUrl` still counts).
    pub redirect_urls: Vec<String>,
    /// Sections kept for the provider (applications, accessKeys, roles, ...).
    pub extra: Map<String, Value>,
}

fn ttl(map: &Map<String, Value>, field: &str, default: u64) -> Result<u64> {
    match map.get(field) {
        None | Some(Value::Null) => Ok(default),
        Some(v) => v
            .as_u64()
            .filter(|n| *n > 0)
            .ok_or_else(|| Error::config(format!("tokens.{field} must be a positive number of seconds"))),
    }
}

impl Project {
    /// The issuer: `{baseUrl}/{projectId}`.
    /// Replaces `baseUrl` with `base_url` when given (a deployment's public
    /// URL, e.g. behind a proxy).
    pub fn override_base_url(&mut self, base_url: Option<&str>) {
        if let Some(b) = base_url {
            self.base_url = b.trim_end_matches('/').to_owned();
        }
    }

    pub fn issuer(&self) -> String {
        format!("{}/{}", self.base_url.trim_end_matches('/'), self.project_id)
    }

    /// Reads a project file (JSON, or TOML when the name ends in `.toml`,
    /// mapped one to one); flow paths are relative to its folder.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Project> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::config(format!("cannot read project file {}: {e}", path.display())))?;
        let dir = path.parent().unwrap_or(Path::new("."));
        if path.extension().is_some_and(|e| e.eq_ignore_ascii_case("toml")) {
            let doc: toml::Table = toml::from_str(&text)
                .map_err(|e| Error::config(format!("{} is not valid TOML: {}", path.display(), e.message())))?;
            let json = serde_json::to_string(&doc).map_err(|_| Error::config("the TOML project could not be converted"))?;
            return Project::from_json(&json, dir);
        }
        Project::from_json(&text, dir)
    }

    /// Parses project JSON; relative flow paths resolve against `base_dir`.
    pub fn from_json(text: &str, base_dir: &Path) -> Result<Project> {
        let doc = crate::json::parse_object(text.as_bytes())
            .map_err(|e| Error::config(format!("the project file is not a valid JSON object: {e}")))?;
        for key in doc.keys() {
            if !FIELDS.contains(&key.as_str()) {
                return Err(Error::config(format!("unknown project field {key:?}")));
            }
        }
        let string = |field: &str| -> Result<String> {
            match doc.get(field) {
                Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
                _ => Err(Error::config(format!("the project needs {field} (a non-empty string)"))),
            }
        };
        let project_id = string("projectId")?;
        let base_url = string("baseUrl")?;
        reqwest::Url::parse(&base_url).map_err(|_| Error::config("baseUrl is not a URL"))?;
        // A section given with the wrong type is an error, never a silent default.
        let section = |field: &str| -> Result<Map<String, Value>> {
            match doc.get(field) {
                None | Some(Value::Null) => Ok(Map::new()),
                Some(Value::Object(m)) => Ok(m.clone()),
                Some(_) => Err(Error::config(format!("{field} must be an object"))),
            }
        };
        let list = |field: &str| -> Result<&[Value]> {
            match doc.get(field) {
                None | Some(Value::Null) => Ok(&[]),
                Some(Value::Array(items)) => Ok(items),
                Some(_) => Err(Error::config(format!("{field} must be an array"))),
            }
        };
        let signing = section("signing")?;
        if let Some(k) = signing.keys().find(|k| !matches!(k.as_str(), "alg" | "prepublish")) {
            return Err(Error::config(format!("unknown field signing.{k}")));
        }
        let signing_alg = match signing.get("alg") {
            None => Algorithm::RS256,
            Some(Value::String(a)) => {
                let alg = Algorithm::parse(a).map_err(|e| Error::config(format!("signing.alg: {}", e.message)))?;
                if alg.key_type() == crate::jose::KeyType::Oct {
                    return Err(Error::config("signing.alg must be asymmetric (RS*, PS*, ES*, EdDSA)"));
                }
                alg
            }
            Some(_) => return Err(Error::config("signing.alg must be a string")),
        };
        let signing_prepublish = match signing.get("prepublish") {
            None | Some(Value::Null) => crate::oidc::provider::keys::DEFAULT_PREPUBLISH,
            Some(v) => v
                .as_u64()
                .filter(|n| *n <= 30 * 24 * 3600)
                .ok_or_else(|| Error::config("signing.prepublish must be a whole number of seconds from 0 to 2592000 (30 days)"))?,
        };
        let tokens = section("tokens")?;
        let session_ttl = ttl(&tokens, "sessionTtl", 600)?;
        let refresh_ttl = ttl(&tokens, "refreshTtl", 30 * 24 * 3600)?;
        let code_ttl = ttl(&tokens, "codeTtl", 60)?;
        let refresh_reuse_grace = match tokens.get("refreshReuseGrace") {
            None | Some(Value::Null) => 0,
            Some(v) => v
                .as_u64()
                .filter(|n| *n <= 300)
                .ok_or_else(|| Error::config("tokens.refreshReuseGrace must be a number of seconds from 0 to 300"))?,
        };
        if let Some(k) = tokens.keys().find(|k| !["sessionTtl", "refreshTtl", "codeTtl", "refreshReuseGrace"].contains(&k.as_str())) {
            return Err(Error::config(format!("unknown field tokens.{k}")));
        }
        let connectors: Vec<HttpConnectorConfig> = list("connectors")?.iter().map(HttpConnectorConfig::from_json).collect::<Result<_>>()?;
        for (i, c) in connectors.iter().enumerate() {
            if connectors[..i].iter().any(|earlier| earlier.id == c.id) {
                return Err(Error::config(format!("connectors[{i}]: the connector id {:?} is declared twice", c.id)));
            }
        }
        let mut flows: Vec<Flow> = Vec::new();
        for (i, entry) in list("flows")?.iter().enumerate() {
            let (text, origin) = match entry {
                Value::String(rel) => {
                    let p = base_dir.join(rel);
                    let t = std::fs::read_to_string(&p)
                        .map_err(|e| Error::config(format!("flows[{i}]: cannot read {}: {e}", p.display())))?;
                    (t, rel.clone())
                }
                Value::Object(_) => (entry.to_string(), format!("flows[{i}]")),
                _ => return Err(Error::config(format!("flows[{i}] must be a file path or a flow object"))),
            };
            let flow = parse_flow(&text).map_err(|e| Error::new(e.code, format!("{origin}: {}", e.message)))?;
            if flows.iter().any(|f| f.id == flow.id) {
                return Err(Error::config(format!("{origin}: the flow id {:?} is declared twice", flow.id)));
            }
            flows.push(flow);
        }
        // The sections the provider reads are checked for their type here, once.
        for field in ["applications", "accessKeys"] {
            list(field)?;
        }
        let mut roles = std::collections::HashMap::new();
        for (i, role) in list("roles")?.iter().enumerate() {
            let name = role
                .get("name")
                .and_then(Value::as_str)
                .filter(|n| !n.is_empty())
                .ok_or_else(|| Error::config(format!("roles[{i}] needs a name")))?;
            let permissions = match role.get("permissions") {
                None | Some(Value::Null) => Vec::new(),
                Some(Value::Array(p)) => p
                    .iter()
                    .map(|x| x.as_str().map(str::to_owned))
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(|| Error::config(format!("roles[{i}].permissions must be strings")))?,
                Some(_) => return Err(Error::config(format!("roles[{i}].permissions must be an array"))),
            };
            if roles.insert(name.to_owned(), permissions).is_some() {
                return Err(Error::config(format!("role {name:?} is declared twice")));
            }
        }
        let mut redirect_urls = Vec::new();
        match doc.get("redirectUrls") {
            None | Some(Value::Null) => {}
            Some(Value::Array(items)) => {
                for (i, item) in items.iter().enumerate() {
                    let text = item.as_str().filter(|s| !s.is_empty()).ok_or_else(|| Error::config(format!("redirectUrls[{i}] must be a URL")))?;
                    check_redirect_url(text).map_err(|m| Error::config(format!("redirectUrls[{i}]: {m}")))?;
                    redirect_urls.push(text.to_owned());
                }
            }
            Some(_) => return Err(Error::config("redirectUrls must be an array of URLs")),
        }
        let extra = doc
            .iter()
            .filter(|(k, _)| {
                ["applications", "accessKeys", "roles", "oauthProviders", "tenants", "encryption", "rateLimits", "trustedProxies", "management"].contains(&k.as_str())
            })
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let passwords = PasswordSettings::from_json(doc.get("passwords"))?;
        let email = crate::messaging::EmailSettings::from_json(doc.get("email"), &base_url)?;
        if let Some(id) = email.as_ref().and_then(|e| e.connector_id()) {
            if !connectors.iter().any(|c| c.id == id) {
                return Err(Error::config(format!("email.http.connector {id:?} is not among the project's connectors")));
            }
        }
        Ok(Project {
            passwords,
            email,
            project_id,
            base_url,
            signing_alg,
            signing_prepublish,
            session_ttl,
            refresh_ttl,
            code_ttl,
            refresh_reuse_grace,
            connectors,
            flows,
            roles,
            redirect_urls,
            extra,
        })
    }

    /// Whether `url` is an approved place to send a browser with a code:
    /// one of `redirectUrls` exactly, a URL on an approved origin, or one
    /// of `also` (a provider's own `redirectUrl`). Control characters and
    /// user info are never approved; private-use schemes only when listed.
    pub fn redirect_url_approved(&self, url: &str, also: &[&str]) -> bool {
        if check_redirect_url(url).is_err() {
            return false;
        }
        if also.contains(&url) || self.redirect_urls.iter().any(|r| r == url) {
            return true;
        }
        let Ok(given) = url::Url::parse(url) else {
            return false;
        };
        self.redirect_urls.iter().any(|r| {
            is_origin(r) && url::Url::parse(r).is_ok_and(|o| matches!(o.scheme(), "http" | "https") && o.origin() == given.origin())
        })
    }

    /// A flow engine for this project over `store`, signing with `key`.
    pub fn engine(&self, key: Key, store: Arc<dyn Store>) -> Result<FlowEngine> {
        let mut config = EngineConfig::new(self.issuer(), key);
        config.audience = self.project_id.clone();
        config.session_ttl = self.session_ttl;
        config.refresh_ttl = self.refresh_ttl;
        config.roles = self.roles.clone();
        config.passwords = self.passwords.clone();
        config.email = self.email.clone();
        config.encryption = self.extra.get("encryption").cloned();
        let mut engine = FlowEngine::new(config, store);
        for c in &self.connectors {
            engine.add_connector(HttpConnector::new(c.clone())?);
        }
        for f in &self.flows {
            engine.add_flow(f.clone())?;
        }
        Ok(engine)
    }
}

/// Fails unless docs/configuration.md names every field of `fields` (as
/// `` `field` ``): the reference cannot fall behind the parser.
#[cfg(test)]
pub(crate) fn assert_documented(what: &str, fields: &[&str]) {
    const DOC: &str = include_str!("../../docs/configuration.md");
    let missing: Vec<&&str> = fields.iter().filter(|f| !DOC.contains(&format!("`{f}`"))).collect();
    assert!(missing.is_empty(), "docs/configuration.md does not document the {what} fields {missing:?}");
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_project_field_is_documented() {
        super::assert_documented("project", &super::FIELDS);
    }

    #[test]
    fn every_passwords_field_is_documented() {
        use crate::credentials::password::{FIELDS, HASHING_FIELDS, LOCKOUT_FIELDS};
        super::assert_documented("passwords", &FIELDS);
        super::assert_documented("passwords.hashing", &HASHING_FIELDS);
        super::assert_documented("passwords.lockout", &LOCKOUT_FIELDS);
    }

    #[test]
    fn every_email_field_is_documented() {
        super::assert_documented("email", &crate::messaging::FIELDS);
        super::assert_documented("email.smtp", &crate::messaging::SMTP_FIELDS);
        super::assert_documented("email.http", &crate::messaging::HTTP_FIELDS);
        super::assert_documented("email templates", &crate::messaging::TEMPLATE_FIELDS);
    }
}
