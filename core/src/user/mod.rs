//! The user model: the identities flows create and match, their fields and
//! checks, and the search a store answers. It depends on no store: the
//! stores import it, and `crate::users` (the management functions) uses both.
//!
//! Login ids are unique and compared case-insensitively for emails (they are
//! stored lower-cased); a disabled user cannot sign in. The JSON shape is the
//! one every `/v1` route and binding uses (README, "Flows").

mod profile;

pub use profile::Address;
use profile::{checked, is_birthdate, is_locale, is_web_url, is_zoneinfo};
use crate::error::{Error, Result};
use serde_json::{json, Map, Value};

/// Whether a user may sign in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserStatus {
    Enabled,
    Disabled,
}

impl UserStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            UserStatus::Enabled => "enabled",
            UserStatus::Disabled => "disabled",
        }
    }
    pub fn parse(s: &str) -> Option<UserStatus> {
        match s {
            "enabled" => Some(UserStatus::Enabled),
            "disabled" => Some(UserStatus::Disabled),
            _ => None,
        }
    }
}

/// A user's membership in a tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantMembership {
    pub tenant_id: String,
    pub roles: Vec<String>,
}

/// Every built-in user field a flow's `updateUser` step or the management
/// API can set by its `/v1` name (besides `customAttributes`, `tenants`
/// and `status`).
pub const USER_FIELDS: [&str; 18] = [
    "name", "givenName", "middleName", "familyName", "nickname", "preferredUsername", "profile", "picture", "website",
    "gender", "birthdate", "zoneinfo", "locale", "address", "phone", "email", "verifiedEmail", "verifiedPhone",
];

#[derive(Debug, Clone, PartialEq)]
pub struct User {
    pub user_id: String,
    pub login_ids: Vec<String>,
    pub email: Option<String>,
    pub verified_email: bool,
    pub phone: Option<String>,
    pub verified_phone: bool,
    pub name: Option<String>,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    pub picture: Option<String>,
    /// The other standard claims of OIDC Core §5.1, released by the
    /// `profile` scope (and `address` by the `address` scope).
    pub middle_name: Option<String>,
    pub nickname: Option<String>,
    pub preferred_username: Option<String>,
    /// The URL of the user's profile page.
    pub profile: Option<String>,
    pub website: Option<String>,
    pub gender: Option<String>,
    /// `YYYY-MM-DD`, `YYYY` or `0000-MM-DD` (OIDC Core §5.1).
    pub birthdate: Option<String>,
    /// A time zone database name, e.g. `Europe/Paris`.
    pub zoneinfo: Option<String>,
    /// A BCP 47 language tag, e.g. `fr-CA`.
    pub locale: Option<String>,
    pub address: Option<Address>,
    pub custom_attributes: Map<String, Value>,
    pub tenants: Vec<TenantMembership>,
    pub status: UserStatus,
    /// Seconds since the epoch.
    pub created_time: u64,
    pub updated_time: u64,
}

/// Normalises a login id: trimmed, and lower-cased when it is an email.
pub fn normalize_login_id(login_id: &str) -> String {
    let trimmed = login_id.trim();
    if trimmed.contains('@') {
        trimmed.to_lowercase()
    } else {
        trimmed.to_owned()
    }
}

/// A light syntactic email check (one `@`, a dot in the domain, no spaces).
pub fn looks_like_email(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else { return false };
    !local.is_empty()
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !s.chars().any(|c| c.is_whitespace() || c.is_control())
}

impl User {
    /// A new enabled user with one login id (an email login id also becomes
    /// the unverified email).
    pub fn new(user_id: String, login_id: &str, now: u64) -> User {
        let login_id = normalize_login_id(login_id);
        let email = looks_like_email(&login_id).then(|| login_id.clone());
        User {
            user_id,
            login_ids: vec![login_id],
            email,
            verified_email: false,
            phone: None,
            verified_phone: false,
            name: None,
            given_name: None,
            family_name: None,
            picture: None,
            middle_name: None,
            nickname: None,
            preferred_username: None,
            profile: None,
            website: None,
            gender: None,
            birthdate: None,
            zoneinfo: None,
            locale: None,
            address: None,
            custom_attributes: Map::new(),
            tenants: Vec::new(),
            status: UserStatus::Enabled,
            created_time: now,
            updated_time: now,
        }
    }
    /// The `/v1` JSON shape.
    pub fn to_json(&self) -> Value {
        json!({
            "userId": self.user_id,
            "loginIds": self.login_ids,
            "email": self.email,
            "verifiedEmail": self.verified_email,
            "phone": self.phone,
            "verifiedPhone": self.verified_phone,
            "name": self.name,
            "givenName": self.given_name,
            "familyName": self.family_name,
            "picture": self.picture,
            "middleName": self.middle_name,
            "nickname": self.nickname,
            "preferredUsername": self.preferred_username,
            "profile": self.profile,
            "website": self.website,
            "gender": self.gender,
            "birthdate": self.birthdate,
            "zoneinfo": self.zoneinfo,
            "locale": self.locale,
            "address": self.address.as_ref().map(Address::to_json),
            "customAttributes": self.custom_attributes,
            "tenants": self.tenants.iter().map(|t| json!({"tenantId": t.tenant_id, "roles": t.roles})).collect::<Vec<_>>(),
            "status": self.status.as_str(),
            "createdTime": self.created_time,
            "updatedTime": self.updated_time,
        })
    }
    /// Reads the `/v1` JSON shape back (the stores keep users this way).
    pub fn from_json(v: &Value) -> Option<User> {
        let s = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
        let b = |k: &str| v.get(k).and_then(Value::as_bool).unwrap_or(false);
        let n = |k: &str| v.get(k).and_then(Value::as_u64).unwrap_or(0);
        Some(User {
            user_id: s("userId")?,
            login_ids: v.get("loginIds")?.as_array()?.iter().filter_map(|l| l.as_str().map(str::to_owned)).collect(),
            email: s("email"),
            verified_email: b("verifiedEmail"),
            phone: s("phone"),
            verified_phone: b("verifiedPhone"),
            name: s("name"),
            given_name: s("givenName"),
            family_name: s("familyName"),
            picture: s("picture"),
            middle_name: s("middleName"),
            nickname: s("nickname"),
            preferred_username: s("preferredUsername"),
            profile: s("profile"),
            website: s("website"),
            gender: s("gender"),
            birthdate: s("birthdate"),
            zoneinfo: s("zoneinfo"),
            locale: s("locale"),
            address: v.get("address").and_then(|a| Address::from_json(a).ok()),
            custom_attributes: v.get("customAttributes").and_then(Value::as_object).cloned().unwrap_or_default(),
            tenants: v
                .get("tenants")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|t| {
                    Some(TenantMembership {
                        tenant_id: t.get("tenantId")?.as_str()?.to_owned(),
                        roles: t.get("roles")?.as_array()?.iter().filter_map(|r| r.as_str().map(str::to_owned)).collect(),
                    })
                })
                .collect(),
            status: UserStatus::parse(&s("status")?)?,
            created_time: n("createdTime"),
            updated_time: n("updatedTime"),
        })
    }
    /// Sets a built-in field by its JSON name; `Err` names what was wrong.
    pub fn set_field(&mut self, field: &str, value: &Value) -> Result<(), String> {
        let text = || -> Result<Option<String>, String> {
            match value {
                Value::Null => Ok(None),
                Value::String(s) => Ok(Some(s.clone())),
                Value::Number(n) => Ok(Some(n.to_string())),
                _ => Err(format!("user field {field} takes a string")),
            }
        };
        let flag = || -> Result<bool, String> {
            match value {
                Value::Bool(b) => Ok(*b),
                Value::String(s) if s == "true" || s == "false" => Ok(s == "true"),
                _ => Err(format!("user field {field} takes true or false")),
            }
        };
        match field {
            "name" => self.name = text()?,
            "givenName" => self.given_name = text()?,
            "familyName" => self.family_name = text()?,
            "picture" => self.picture = text()?,
            "middleName" => self.middle_name = text()?,
            "nickname" => self.nickname = text()?,
            "preferredUsername" => self.preferred_username = text()?,
            "profile" => self.profile = checked(text()?, is_web_url, "an absolute http(s) URL")?,
            "website" => self.website = checked(text()?, is_web_url, "an absolute http(s) URL")?,
            "gender" => self.gender = text()?,
            "birthdate" => self.birthdate = checked(text()?, is_birthdate, "YYYY-MM-DD, YYYY or 0000-MM-DD (OIDC Core §5.1)")?,
            "zoneinfo" => self.zoneinfo = checked(text()?, is_zoneinfo, "a time zone name such as Europe/Paris")?,
            "locale" => self.locale = checked(text()?, is_locale, "a BCP 47 language tag such as fr-CA")?,
            "address" => {
                self.address = match value {
                    Value::Null => None,
                    v => Some(Address::from_json(v)?).filter(|a| !a.is_empty()),
                }
            }
            "phone" => self.phone = text()?,
            "email" => {
                let email = text()?.map(|e| normalize_login_id(&e));
                if let Some(e) = &email {
                    if !looks_like_email(e) {
                        return Err("user field email is not an email address".into());
                    }
                }
                self.email = email;
            }
            "verifiedEmail" => self.verified_email = flag()?,
            "verifiedPhone" => self.verified_phone = flag()?,
            other => return Err(format!("{other:?} is not a user field")),
        }
        Ok(())
    }
}

// ---- management API (bindings and the provider call these) -----------------

/// Applies `fields` (the `/v1` names: built-in fields, `customAttributes`
/// merged in, `status`); an unknown field is `invalid_request`.
pub fn apply_fields(user: &mut User, fields: &Map<String, Value>) -> Result<()> {
    for (k, v) in fields {
        match k.as_str() {
            "customAttributes" => match v {
                Value::Object(attrs) => {
                    for (name, value) in attrs {
                        if value.is_null() {
                            user.custom_attributes.remove(name);
                        } else {
                            user.custom_attributes.insert(name.clone(), value.clone());
                        }
                    }
                }
                _ => return Err(Error::invalid_request("customAttributes must be an object")),
            },
            "tenants" => {
                let items = v.as_array().ok_or_else(|| Error::invalid_request("tenants must be an array"))?;
                let mut tenants = Vec::with_capacity(items.len());
                for t in items {
                    let tenant_id = t
                        .get("tenantId")
                        .and_then(Value::as_str)
                        .filter(|s| !s.is_empty())
                        .ok_or_else(|| Error::invalid_request("each tenant needs a tenantId"))?;
                    let roles = match t.get("roles") {
                        None | Some(Value::Null) => Vec::new(),
                        Some(Value::Array(r)) => r
                            .iter()
                            .map(|x| x.as_str().map(str::to_owned))
                            .collect::<Option<Vec<_>>>()
                            .ok_or_else(|| Error::invalid_request("tenant roles must be strings"))?,
                        Some(_) => return Err(Error::invalid_request("tenant roles must be an array")),
                    };
                    tenants.push(TenantMembership { tenant_id: tenant_id.to_owned(), roles });
                }
                user.tenants = tenants;
            }
            "status" => {
                user.status = v
                    .as_str()
                    .and_then(UserStatus::parse)
                    .ok_or_else(|| Error::invalid_request("status must be \"enabled\" or \"disabled\""))?;
            }
            other => user.set_field(other, v).map_err(Error::invalid_request)?,
        }
    }
    Ok(())
}

/// A user search: `text` matches (case-insensitively, as a substring) a
/// login id, the email or the name; `status` filters; `limit` defaults to 100.
#[derive(Debug, Clone, PartialEq)]
pub struct UserQuery {
    pub text: Option<String>,
    pub status: Option<UserStatus>,
    pub limit: usize,
    pub offset: usize,
}

impl Default for UserQuery {
    fn default() -> Self {
        UserQuery { text: None, status: None, limit: 100, offset: 0 }
    }
}

impl UserQuery {
    /// Whether `user` matches (the one definition both stores use).
    pub fn matches(&self, user: &User) -> bool {
        if self.status.is_some_and(|s| s != user.status) {
            return false;
        }
        match &self.text {
            None => true,
            Some(t) => {
                let t = t.to_lowercase();
                let hit = |v: &Option<String>| v.as_ref().is_some_and(|v| v.to_lowercase().contains(&t));
                user.login_ids.iter().any(|l| l.to_lowercase().contains(&t)) || hit(&user.email) || hit(&user.name)
            }
        }
    }

    /// The page of `users` (in user-id order) this query asks for: the
    /// matching ones after `offset`, `limit` at most; reading stops there.
    pub fn page<E>(&self, users: impl IntoIterator<Item = std::result::Result<User, E>>) -> std::result::Result<Vec<User>, E> {
        let mut out = Vec::new();
        if self.limit == 0 {
            return Ok(out);
        }
        let mut skipped = 0;
        for user in users {
            let user = user?;
            if !self.matches(&user) {
                continue;
            }
            if skipped < self.offset {
                skipped += 1;
                continue;
            }
            out.push(user);
            if out.len() >= self.limit {
                break;
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn login_ids_and_emails() {
        assert_eq!(normalize_login_id("  Ann@Example.COM "), "ann@example.com");
        assert_eq!(normalize_login_id("Ext-ID-7"), "Ext-ID-7");
        assert!(looks_like_email("a@b.co"));
        for bad in ["a@b", "@b.co", "a b@c.de", "a@b@c.de", "a@.b", "a@b."] {
            assert!(!looks_like_email(bad), "{bad}");
        }
        let mut u = User::new("U1".into(), "Ann@Example.com", 5);
        assert_eq!(u.email.as_deref(), Some("ann@example.com"));
        assert!(u.set_field("verifiedEmail", &Value::Bool(true)).is_ok());
        assert!(u.set_field("email", &Value::String("nope".into())).is_err());
        assert!(u.set_field("colour", &Value::Null).is_err());
        assert_eq!(u.to_json()["loginIds"][0], "ann@example.com");
        u.tenants.push(TenantMembership { tenant_id: "T1".into(), roles: vec!["admin".into()] });
        u.custom_attributes.insert("plan".into(), Value::from("pro"));
        assert_eq!(User::from_json(&u.to_json()), Some(u));
    }

    #[test]
    fn standard_profile_fields_are_checked_and_kept() {
        let mut u = User::new("U1".into(), "ann@example.com", 5);
        for (field, good) in [
            ("middleName", "Q."),
            ("nickname", "annie"),
            ("preferredUsername", "ann"),
            ("profile", "https://people.example/ann"),
            ("website", "http://ann.example/"),
            ("gender", "female"),
            ("birthdate", "1990-04-01"),
            ("birthdate", "0000-04-01"),
            ("birthdate", "1990"),
            ("zoneinfo", "America/Argentina/Buenos_Aires"),
            ("locale", "fr-CA"),
            ("locale", "en_US"),
        ] {
            assert_eq!(u.set_field(field, &Value::from(good)), Ok(()), "{field} {good}");
        }
        for (field, bad) in [
            ("profile", "javascript:alert(1)"),
            ("website", "ann.example"),
            ("birthdate", "1990-13-01"),
            ("birthdate", "01/04/1990"),
            ("zoneinfo", "../etc/passwd"),
            ("locale", "f"),
            ("locale", "fr CA"),
        ] {
            let e = u.set_field(field, &Value::from(bad)).unwrap_err();
            assert!(e.contains(bad), "{e}");
        }
        let address = json!({"formatted": "1 Main St\nSpringfield", "streetAddress": "1 Main St", "locality": "Springfield", "country": "US"});
        assert_eq!(u.set_field("address", &address), Ok(()));
        assert_eq!(
            u.address.as_ref().map(Address::to_claim),
            Some(json!({"formatted": "1 Main St\nSpringfield", "street_address": "1 Main St", "locality": "Springfield", "country": "US"}))
        );
        assert!(u.set_field("address", &json!({"street": "x"})).unwrap_err().contains("address.street"));
        assert!(u.set_field("address", &json!({"locality": 7})).is_err());
        assert!(u.set_field("address", &json!("1 Main St")).is_err());
        assert_eq!(User::from_json(&u.to_json()), Some(u.clone()));
        assert_eq!(u.to_json()["address"]["streetAddress"], "1 Main St");
        assert_eq!(u.set_field("address", &Value::Null), Ok(()));
        assert_eq!(u.address, None);
        assert_eq!(u.set_field("address", &json!({})), Ok(()));
        assert_eq!(u.address, None, "an empty address is no address");
        for f in USER_FIELDS {
            assert!(!u.set_field(f, &Value::Null).is_err_and(|e| e.contains("is not a user field")), "{f}");
        }
    }
}
