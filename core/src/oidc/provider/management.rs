//! The management API (`/v1/mgmt/...`): the bindings' users API and key
//! rotation over HTTP, for running several servers without a binding.
//! Off unless the project names `management.keys`; each request carries
//! one of them as `Authorization: Bearer <secret>` (kept as a digest,
//! compared in constant time). Failed authentications count toward
//! `rateLimits.clientAuthFailuresPerIp`, and an address at that limit is
//! refused before any key is checked. Answers are JSON; errors are
//! `{"error": {"code", "message"}}` with the codes of the bindings.
//!
//! | method and path | does |
//! |---|---|
//! | `GET /v1/mgmt/users?text=&status=&limit=&offset=` | search users |
//! | `POST /v1/mgmt/users` | create (`loginId` and the `/v1` user fields) |
//! | `GET`, `PATCH`, `DELETE /v1/mgmt/users/{userId}` | read, update, delete |
//! | `PUT /v1/mgmt/users/{userId}/password` | `{"password"}` sets it (the policy applies), `{"hash"}` imports one |
//! | `DELETE /v1/mgmt/users/{userId}/password` | removes it |
//! | `POST /v1/mgmt/users/{userId}/sign-out-everywhere` | ends every sign-in |
//! | `DELETE /v1/mgmt/users/{userId}/totp` | removes the authenticator app |
//! | `GET /v1/mgmt/users/{userId}/passkeys`, `DELETE .../passkeys/{id}` | lists, removes passkeys |
//! | `POST /v1/mgmt/login-ids/unlock` | `{"loginId"}`: ends a lockout |
//! | `POST /v1/mgmt/keys/rotate` | `{"alg"?, "prepublish"?}`: adds a signing key |

use super::config::{check_fields, digest, secret_matches, string};
use super::http::{HttpRequest, HttpResponse};
use super::Provider;
use crate::error::{Error, ErrorCode, Result};
use crate::oidc::params::Params;
use crate::users;
use serde_json::{json, Map, Value};

/// A management key: its id (for the operator) and the digest of its secret.
#[derive(Debug, Clone)]
pub(super) struct ManagementKey {
    pub id: String,
    secret_digest: [u8; 32],
}

const FIELDS: [&str; 1] = ["keys"];
const KEY_FIELDS: [&str; 2] = ["id", "secret"];

/// `management` from the project file (none: the API is off).
pub(super) fn keys_from_json(value: Option<&Value>) -> Result<Vec<ManagementKey>> {
    let Some(value) = value.filter(|v| !v.is_null()) else { return Ok(Vec::new()) };
    let m = value.as_object().ok_or_else(|| Error::config("management must be an object"))?;
    check_fields(m, &FIELDS, "management")?;
    let list = m.get("keys").and_then(Value::as_array).ok_or_else(|| Error::config("management.keys must be an array"))?;
    let mut keys: Vec<ManagementKey> = Vec::new();
    for (i, k) in list.iter().enumerate() {
        let at = format!("management.keys[{i}]");
        let k = k.as_object().ok_or_else(|| Error::config(format!("{at} must be an object")))?;
        check_fields(k, &KEY_FIELDS, &at)?;
        let text = |f: &str| string(k, f, &at)?.ok_or_else(|| Error::config(format!("{at}.{f} must be a non-empty string")));
        let id = text("id")?;
        let secret = crate::env::resolve_env(&text("secret")?)?;
        if secret.len() < 32 {
            return Err(Error::config(format!("{at}.secret must be at least 32 characters (use a random value)")));
        }
        if keys.iter().any(|x| x.id == id) {
            return Err(Error::config(format!("{at}: id {id:?} is used twice")));
        }
        keys.push(ManagementKey { id, secret_digest: digest(&secret) });
    }
    Ok(keys)
}

fn reply(e: &Error) -> HttpResponse {
    let status = match e.code {
        ErrorCode::UserNotFound => 404,
        ErrorCode::InvalidClient => 401,
        ErrorCode::AccessDenied => 403,
        ErrorCode::UserExists => 409,
        ErrorCode::RateLimited => 429,
        ErrorCode::Storage | ErrorCode::Internal | ErrorCode::Network | ErrorCode::Config => 500,
        _ => 400,
    };
    let message = if status == 500 { "the server could not complete the request" } else { e.message.as_str() };
    let r = HttpResponse::json_no_store(status, &json!({"error": {"code": e.code.as_str(), "message": message}}));
    if status == 401 {
        r.with_header("WWW-Authenticate", "Bearer realm=\"idflow management\"")
    } else {
        r
    }
}

impl Provider {
    /// `/v1/mgmt/...`.
    pub(super) async fn management(&self, req: &HttpRequest, path: &str) -> HttpResponse {
        if self.management_keys.is_empty() {
            return HttpResponse::json(404, &json!({"error": "not_found", "error_description": "no such endpoint"}));
        }
        if let Err(e) = self.management_caller(req) {
            return reply(&e);
        }
        let parts: Vec<&str> = path.trim_start_matches("/v1/mgmt/").split('/').collect();
        match self.manage(req, &parts).await {
            Ok(Some((status, Some(body)))) => HttpResponse::json_no_store(status, &body),
            Ok(Some((status, None))) => HttpResponse::new(status).with_header("Cache-Control", "no-store"),
            Ok(None) => HttpResponse::json_no_store(404, &json!({"error": {"code": "invalid_request", "message": "no such management endpoint"}})),
            Err(e) => reply(&e),
        }
    }

    /// The key the request authenticates with; rate limited per address.
    fn management_caller(&self, req: &HttpRequest) -> Result<&ManagementKey> {
        let ip = self.client_ip(req);
        if let Some(ip) = &ip {
            if self.at_limit("auth_ip", ip, self.limits.client_auth_failures_per_ip)? {
                return Err(super::limits::rate_limited("failed authentications"));
            }
        }
        let secret = req.header("authorization").and_then(|h| (h.len() > 7 && h[..7].eq_ignore_ascii_case("bearer ")).then(|| h[7..].trim()));
        // Every key is compared, so the time does not tell which one nearly matched.
        let found = secret.and_then(|s| self.management_keys.iter().fold(None, |hit, k| if secret_matches(s, &k.secret_digest) { Some(k) } else { hit }));
        match found {
            Some(k) => Ok(k),
            None => {
                if let Some(ip) = &ip {
                    self.count("auth_ip", ip, u64::MAX, "failed authentications")?;
                }
                Err(Error::new(ErrorCode::InvalidClient, "a management key is required: Authorization: Bearer <secret>"))
            }
        }
    }

    /// The endpoint's status and body; `None` when there is no such endpoint.
    async fn manage(&self, req: &HttpRequest, parts: &[&str]) -> Result<Option<(u16, Option<Value>)>> {
        let store = self.store.as_ref();
        let body = || if req.body.is_empty() { Ok(Map::new()) } else { req.json_object() };
        let text = |m: &Map<String, Value>, k: &str| m.get(k).and_then(Value::as_str).map(str::to_owned).ok_or_else(|| Error::invalid_request(format!("{k} must be a string")));
        let method = req.method.as_str();
        Ok(Some(match (method, parts) {
            ("GET", ["users"]) => {
                let q = Params::parse(req.query.as_bytes());
                let number = |k: &str, default: usize| q.get(k).map_or(Ok(default), |v| v.parse::<usize>().map_err(|_| Error::invalid_request(format!("{k} must be a whole number"))));
                let status = q.get("status").map(|s| crate::user::UserStatus::parse(s).ok_or_else(|| Error::invalid_request("status must be \"enabled\" or \"disabled\""))).transpose()?;
                let query = crate::user::UserQuery { text: q.get("text").map(str::to_owned), status, limit: number("limit", 100)?.min(1000), offset: number("offset", 0)? };
                let found = users::search_users(store, &query)?;
                (200, Some(json!({"users": found.iter().map(crate::user::User::to_json).collect::<Vec<_>>()})))
            }
            ("POST", ["users"]) => {
                let mut fields = body()?;
                let login_id = text(&fields, "loginId")?;
                fields.remove("loginId");
                (201, Some(users::create_user(store, &login_id, &fields)?.to_json()))
            }
            ("GET", ["users", id]) => (200, Some(users::get_user(store, id)?.to_json())),
            ("PATCH", ["users", id]) => (200, Some(users::update_user(store, id, &body()?)?.to_json())),
            ("DELETE", ["users", id]) => {
                users::delete_user(store, id)?;
                (204, None)
            }
            ("PUT", ["users", id, "password"]) => {
                let b = body()?;
                match (b.get("password"), b.get("hash")) {
                    (Some(_), None) => users::password::set(store, self.engine.passwords(), id, text(&b, "password")?).await?,
                    (None, Some(_)) => users::password::import_hash(store, id, &text(&b, "hash")?)?,
                    _ => return Err(Error::invalid_request("give password or hash")),
                }
                (204, None)
            }
            ("DELETE", ["users", id, "password"]) => {
                users::password::remove(store, id)?;
                (204, None)
            }
            ("POST", ["users", id, "sign-out-everywhere"]) => {
                users::sessions::sign_out_everywhere(store, id)?;
                (204, None)
            }
            ("DELETE", ["users", id, "totp"]) => {
                users::totp::remove(store, id)?;
                (204, None)
            }
            ("GET", ["users", id, "passkeys"]) => (200, Some(json!({"passkeys": users::passkeys::list(store, id)?}))),
            ("DELETE", ["users", id, "passkeys", passkey]) => {
                users::passkeys::remove(store, id, passkey)?;
                (204, None)
            }
            ("POST", ["login-ids", "unlock"]) => {
                users::password::unlock(store, &text(&body()?, "loginId")?)?;
                (204, None)
            }
            ("POST", ["keys", "rotate"]) => {
                let b = body()?;
                let alg = b.get("alg").map(|_| text(&b, "alg")).transpose()?;
                let prepublish = match b.get("prepublish") {
                    None | Some(Value::Null) => None,
                    Some(v) => Some(v.as_u64().filter(|n| *n <= 30 * 24 * 3600).ok_or_else(|| Error::invalid_request("prepublish must be seconds from 0 to 2592000"))?),
                };
                (201, Some(self.rotate_keys(alg.as_deref(), prepublish)?.to_json()))
            }
            _ => return Ok(None),
        }))
    }
}
