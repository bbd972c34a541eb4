//! Which claims about a user the provider releases, and where: the one home
//! of OIDC Core §5.4 (scope claims) and §5.5 (the `claims` request
//! parameter) for the id_token and userinfo.
//!
//! - The `profile`, `email`, `address` and `phone` scopes release their
//!   claims at userinfo; in the id_token only when no access token is issued
//!   (`response_type=id_token`), as §5.4 says.
//! - The `claims` parameter asks for single claims in either place (any
//!   standard claim, `tenants`, or a custom claim the flow made). `essential`
//!   changes nothing (a claim the user lacks is left out, never an error);
//!   `value`/`values` are honoured only for `acr`, which chooses the flow
//!   (see [`requested_acr`]).
//! - `descope.custom_claims` and `descope.claims` (custom claims and
//!   tenants) are idflow's own and go in both, as the platform does.

use super::Provider;
use crate::user::User;
use serde_json::{Map, Value};

/// The claims each standard scope releases (OIDC Core §5.4).
pub const SCOPE_CLAIMS: [(&str, &[&str]); 4] = [
    (
        "profile",
        &[
            "name", "family_name", "given_name", "middle_name", "nickname", "preferred_username", "profile", "picture",
            "website", "gender", "birthdate", "zoneinfo", "locale", "updated_at",
        ],
    ),
    ("email", &["email", "email_verified"]),
    ("address", &["address"]),
    ("phone", &["phone_number", "phone_number_verified"]),
];

/// Claims about the token rather than the user, listed in
/// `claims_supported` beside the scope claims.
pub const PROTOCOL_CLAIMS: [&str; 10] = ["iss", "aud", "iat", "exp", "sub", "auth_time", "nonce", "acr", "amr", "sid"];

/// The longest `claims` parameter taken, in claims named per member.
const MAX_REQUESTED: usize = 64;

/// Where released claims go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Target {
    /// An id_token; `with_access_token` when an access token is issued
    /// with it (then scope claims are left to userinfo).
    IdToken { with_access_token: bool },
    Userinfo,
    /// An access token: only idflow's own claims (tenants, custom claims).
    AccessToken,
}

impl Target {
    /// The `claims` parameter's member for this target.
    fn member(self) -> Option<&'static str> {
        match self {
            Target::IdToken { .. } => Some("id_token"),
            Target::Userinfo => Some("userinfo"),
            Target::AccessToken => None,
        }
    }

    /// Whether the standard scopes' claims go here (OIDC Core §5.4).
    fn takes_scope_claims(self) -> bool {
        matches!(self, Target::Userinfo | Target::IdToken { with_access_token: false })
    }
}

/// A standard claim (OIDC Core §5.1) of `user`, if the user has it.
pub(crate) fn standard_claim(user: &User, name: &str) -> Option<Value> {
    let text = |v: &Option<String>| v.clone().map(Value::from);
    match name {
        "name" => text(&user.name),
        "given_name" => text(&user.given_name),
        "family_name" => text(&user.family_name),
        "middle_name" => text(&user.middle_name),
        "nickname" => text(&user.nickname),
        "preferred_username" => text(&user.preferred_username),
        "profile" => text(&user.profile),
        "picture" => text(&user.picture),
        "website" => text(&user.website),
        "gender" => text(&user.gender),
        "birthdate" => text(&user.birthdate),
        "zoneinfo" => text(&user.zoneinfo),
        "locale" => text(&user.locale),
        "updated_at" => Some(user.updated_time.into()),
        "email" => text(&user.email),
        "email_verified" => user.email.is_some().then_some(user.verified_email.into()),
        "phone_number" => text(&user.phone),
        "phone_number_verified" => user.phone.is_some().then_some(user.verified_phone.into()),
        "address" => user.address.as_ref().map(crate::user::Address::to_claim),
        _ => None,
    }
}

/// Checks the `claims` authorization parameter (OIDC Core §5.5) and
/// returns it as stored with the request: an object whose `userinfo` and
/// `id_token` members, when present, map claim names to `null` or an object
/// with `essential` (a boolean), `value` or `values` (an array). Other
/// members are ignored, as the specification asks.
pub(crate) fn parse_claims_request(raw: &str) -> Result<Value, String> {
    let obj = crate::json::parse_object(raw.as_bytes()).map_err(|e| format!("claims must be a JSON object (OIDC Core §5.5): it {e}"))?;
    let mut out = Map::new();
    for member in ["userinfo", "id_token"] {
        let Some(v) = obj.get(member) else { continue };
        let claims = v.as_object().ok_or_else(|| format!("claims.{member} must be an object"))?;
        if claims.len() > MAX_REQUESTED {
            return Err(format!("claims.{member} names more than {MAX_REQUESTED} claims"));
        }
        for (name, spec) in claims {
            match spec {
                Value::Null => {}
                Value::Object(o) => {
                    if o.get("essential").is_some_and(|e| !e.is_boolean()) {
                        return Err(format!("claims.{member}.{name}.essential must be true or false"));
                    }
                    if o.get("values").is_some_and(|e| !e.is_array()) {
                        return Err(format!("claims.{member}.{name}.values must be an array"));
                    }
                }
                _ => return Err(format!("claims.{member}.{name} must be null or an object")),
            }
        }
        out.insert(member.to_owned(), v.clone());
    }
    Ok(Value::Object(out))
}

/// The scope a claim needs: a standard claim's scope (§5.4), `tenants` →
/// `descope.claims`, any other name (a custom claim) →
/// `descope.custom_claims`; `None` for claims about the token itself.
fn scope_of(name: &str) -> Option<&'static str> {
    if PROTOCOL_CLAIMS.contains(&name) {
        return None;
    }
    let standard = SCOPE_CLAIMS.iter().find(|(_, names)| names.contains(&name)).map(|(scope, _)| *scope);
    Some(standard.unwrap_or(if name == "tenants" { "descope.claims" } else { "descope.custom_claims" }))
}

/// The `claims` request without the claims an application may not be given:
/// each one needs its scope among the application's `scopes` (`allowed`),
/// so `claims` never reaches past what `scope` could.
pub(crate) fn within_scopes(mut request: Value, allowed: &[String]) -> Value {
    for member in ["userinfo", "id_token"] {
        if let Some(m) = request.get_mut(member).and_then(Value::as_object_mut) {
            m.retain(|name, _| scope_of(name).is_none_or(|s| allowed.iter().any(|a| a == s)));
        }
    }
    request
}

/// The authorization error for an essential `acr` the provider cannot
/// give (OpenID Connect Core Error Code `unmet_authentication_requirements`).
pub(crate) const UNMET_ACR: &str = "unmet_authentication_requirements";

/// What the `claims` parameter asks of `acr` in the id_token: its wanted
/// values (`value` or `values`, in order) and whether it is essential.
pub(crate) fn requested_acr(request: Option<&Value>) -> (Vec<String>, bool) {
    let Some(spec) = request.and_then(|r| r.get("id_token")).and_then(|t| t.get("acr")).filter(|s| s.is_object()) else {
        return (Vec::new(), false);
    };
    let mut values: Vec<String> = spec.get("value").and_then(Value::as_str).map(str::to_owned).into_iter().collect();
    values.extend(spec.get("values").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str).map(str::to_owned));
    (values, spec.get("essential").and_then(Value::as_bool) == Some(true))
}

/// What `claims.id_token.sub.value` asks for: the only user whose sign-in
/// may answer (OIDC Core §5.5.1).
pub(crate) fn requested_sub(request: Option<&Value>) -> Option<String> {
    request?.get("id_token")?.get("sub")?.get("value")?.as_str().map(str::to_owned)
}

impl Provider {
    /// Adds to `out` the claims about `user` that `target` releases for
    /// `scopes`, the custom claims of the sign-in (`custom`) and the
    /// request's `claims` parameter (`requested`). Claims already in `out`
    /// (the protocol's) are kept.
    pub(crate) fn release_user_claims(
        &self,
        user: &User,
        scopes: &[String],
        custom: &Map<String, Value>,
        requested: Option<&Value>,
        target: Target,
        out: &mut Map<String, Value>,
    ) {
        let has = |s: &str| scopes.iter().any(|x| x == s);
        let put = |out: &mut Map<String, Value>, name: &str, value: Option<Value>| {
            if let Some(v) = value {
                out.entry(name.to_owned()).or_insert(v);
            }
        };
        if target.takes_scope_claims() {
            for (scope, names) in SCOPE_CLAIMS {
                if has(scope) {
                    for name in names {
                        put(out, name, standard_claim(user, name));
                    }
                }
            }
        }
        if has("descope.claims") {
            put(out, "tenants", crate::users::provision::tenants_claim(user, &self.project.roles));
        }
        if has("descope.custom_claims") {
            crate::jose::add_custom_claims(out, custom);
        }
        let asked = target.member().and_then(|m| requested?.get(m)).and_then(Value::as_object);
        for name in asked.into_iter().flat_map(|m| m.keys()) {
            let value = match name.as_str() {
                "tenants" => crate::users::provision::tenants_claim(user, &self.project.roles),
                n if PROTOCOL_CLAIMS.contains(&n) => None,
                n => standard_claim(user, n).or_else(|| custom.get(n).cloned()),
            };
            put(out, name, value);
        }
    }

    /// Every claim `claims_supported` names: the protocol's, the standard
    /// scopes', `tenants`, and the applications' `claimsSupported`.
    pub(crate) fn supported_claims(&self) -> Vec<String> {
        let mut claims: Vec<String> = PROTOCOL_CLAIMS.iter().map(|c| (*c).to_owned()).collect();
        let standard = SCOPE_CLAIMS.iter().flat_map(|(_, names)| names.iter().copied());
        let apps = self.applications().into_iter().flat_map(|a| a.claims_supported.iter().map(String::as_str));
        for c in standard.chain(["tenants"]).chain(apps) {
            if !claims.iter().any(|x| x == c) {
                claims.push(c.to_owned());
            }
        }
        claims
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_claims_parameter_is_checked() {
        let ok = parse_claims_request(r#"{"userinfo":{"name":{"essential":true}},"id_token":{"acr":{"values":["a","b"]},"email":null},"x":1}"#)
            .unwrap();
        assert_eq!(ok, json!({"userinfo":{"name":{"essential":true}},"id_token":{"acr":{"values":["a","b"]},"email":null}}));
        assert_eq!(requested_acr(Some(&ok)), (vec!["a".to_owned(), "b".to_owned()], false));
        for bad in [
            "nope",
            "[]",
            r#"{"userinfo":[]}"#,
            r#"{"id_token":{"email":true}}"#,
            r#"{"id_token":{"email":{"essential":"yes"}}}"#,
            r#"{"id_token":{"acr":{"values":"a"}}}"#,
        ] {
            assert!(parse_claims_request(bad).is_err(), "{bad}");
        }
        let many: Map<String, Value> = (0..65).map(|i| (format!("c{i}"), Value::Null)).collect();
        assert!(parse_claims_request(&json!({"userinfo": many}).to_string()).is_err());
        let sub = parse_claims_request(r#"{"id_token":{"sub":{"value":"U1"}}}"#).unwrap();
        assert_eq!(requested_sub(Some(&sub)).as_deref(), Some("U1"));
    }
}
