//! Userinfo (OIDC Core §5.3, RFC 6750), revocation (RFC 7009) and
//! RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0).

use super::state::{Grant, LogoutConfirm, RefreshToken, RevokedJti, Session};
use super::claims::Target;
use crate::oidc::params::{append_query, Params};
use super::http::{HttpRequest, HttpResponse};
use super::{oauth_error, pages, split_scope, token_digest, Provider};
use crate::error::{Error, ErrorCode, Result};
use crate::jose::{self, Algorithm, Validation};
use serde_json::{json, Map, Value};

/// Claims of an access token that are not custom claims.
const ACCESS_TOKEN_CLAIMS: [&str; 13] =
    ["iss", "sub", "aud", "client_id", "scope", "jti", "iat", "exp", "auth_time", "amr", "acr", "sid", "tenants"];

fn bearer_error(status: u16, error: &str, description: &str) -> HttpResponse {
    let desc = description.replace(['"', '\\'], "'");
    HttpResponse::json_no_store(status, &json!({"error": error, "error_description": description}))
        .with_header("WWW-Authenticate", format!("Bearer realm=\"idflow\", error=\"{error}\", error_description=\"{desc}\""))
}

impl Provider {
    fn published_algs(&self) -> Vec<Algorithm> {
        let mut algs: Vec<Algorithm> = Vec::new();
        for k in self.keys().published.keys() {
            if let Some(a) = k.alg() {
                if !algs.contains(&a) {
                    algs.push(a);
                }
            }
        }
        algs
    }

    /// Verifies one of this provider's access tokens: signature, `typ`,
    /// issuer, audience, expiry, and that neither it nor its grant is revoked.
    pub fn verify_access_token(&self, token: &str) -> Result<Map<String, Value>> {
        self.verify_access_token_and_grant(token).map(|(claims, _)| claims)
    }

    /// An access token this provider issued: signed by a published key,
    /// this issuer, this project's audience, typed `at+jwt` (so no other
    /// kind of token passes), not expired (no leeway), with `jti` and
    /// `sub`. Revocation and grants are checked by the callers.
    fn verify_own_access_token(&self, token: &str) -> Result<jose::Token> {
        let mut v = Validation::new(&self.published_algs());
        v.issuer = Some(self.issuer.clone());
        v.audience = vec![self.project.project_id.clone()];
        v.leeway = 0;
        v.required_claims = vec!["exp".into(), "jti".into(), "sub".into()];
        let t = jose::verify(token, &self.keys().published, &v)?;
        let typ = t.header.get("typ").and_then(Value::as_str).unwrap_or_default().to_ascii_lowercase();
        if typ != "at+jwt" && typ != "application/at+jwt" {
            return Err(Error::invalid_token("not an access token (typ is not at+jwt)"));
        }
        Ok(t)
    }

    /// [`Provider::verify_access_token`], with the record of the grant the
    /// token was issued under (none for client_credentials tokens).
    fn verify_access_token_and_grant(&self, token: &str) -> Result<(Map<String, Value>, Option<Grant>)> {
        let t = self.verify_own_access_token(token)?;
        let jti = t.claims.get("jti").and_then(Value::as_str).unwrap_or_default();
        if self.records().exists::<RevokedJti>(jti)? {
            return Err(Error::invalid_token("the access token has been revoked"));
        }
        let grant = match jti.split_once('.') {
            Some((grant_id, _)) => Some(
                self.live_grant(grant_id)?.ok_or_else(|| Error::invalid_token("the access token's grant has been revoked"))?,
            ),
            None => None,
        };
        Ok((t.claims, grant))
    }

    pub(super) fn userinfo(&self, req: &HttpRequest) -> HttpResponse {
        let header = req.header("authorization").and_then(|h| {
            (h.len() > 7 && h[..7].eq_ignore_ascii_case("bearer ")).then(|| h[7..].trim().to_owned())
        });
        let form = (req.method == "POST" && req.content_type_is("application/x-www-form-urlencoded"))
            .then(|| Params::parse(&req.body))
            .and_then(|p| p.get("access_token").map(str::to_owned));
        let token = match (header, form) {
            (Some(_), Some(_)) => return bearer_error(400, "invalid_request", "send the access token once (header or body)"),
            (Some(t), None) | (None, Some(t)) => t,
            (None, None) => {
                return HttpResponse::json_no_store(401, &json!({"error": "invalid_token", "error_description": "no access token"}))
                    .with_header("WWW-Authenticate", "Bearer realm=\"idflow\"")
            }
        };
        let (claims, grant) = match self.verify_access_token_and_grant(&token) {
            Ok(c) => c,
            Err(e) if e.code == ErrorCode::Storage => return oauth_error(&e),
            Err(e) => return bearer_error(401, "invalid_token", &e.message),
        };
        let scopes = split_scope(claims.get("scope").and_then(Value::as_str));
        if !scopes.iter().any(|s| s == "openid") {
            return bearer_error(403, "insufficient_scope", "userinfo needs a token with the openid scope");
        }
        let sub = claims.get("sub").and_then(Value::as_str).unwrap_or_default();
        let user = match self.store.user(sub) {
            Ok(Some(u)) => u,
            Ok(None) => return bearer_error(401, "invalid_token", "the token's user no longer exists"),
            Err(e) => return oauth_error(&e),
        };
        let custom: Map<String, Value> =
            claims.iter().filter(|(k, _)| !ACCESS_TOKEN_CLAIMS.contains(&k.as_str())).map(|(k, v)| (k.clone(), v.clone())).collect();
        // The `claims` parameter of the authorization behind the token.
        let requested = grant.and_then(|g| g.claims_request).filter(Value::is_object);
        let mut out = Map::new();
        out.insert("sub".into(), user.user_id.clone().into());
        self.release_user_claims(&user, &scopes, &custom, requested.as_ref(), Target::Userinfo, &mut out);
        HttpResponse::json_no_store(200, &Value::Object(out))
    }

    pub(super) async fn revoke(&self, req: &HttpRequest) -> HttpResponse {
        match self.revoke_inner(req).await {
            Ok(()) => HttpResponse::new(200).with_header("Cache-Control", "no-store"),
            Err(e) => oauth_error(&e),
        }
    }

    async fn revoke_inner(&self, req: &HttpRequest) -> Result<()> {
        if !req.content_type_is("application/x-www-form-urlencoded") {
            return Err(Error::invalid_request("revocation takes a form body (application/x-www-form-urlencoded)"));
        }
        let params = Params::parse(&req.body);
        let client = self.authenticate_client(req, &params).await?;
        let token = params.get("token").ok_or_else(|| Error::invalid_request("token is missing"))?;
        // Unknown, foreign or already-revoked tokens still answer 200
        // (RFC 7009 §2.2): the client cannot learn anything from it.
        if let Some(rt) = self.records().get::<RefreshToken>(&token_digest(token))? {
            if rt.client_id == client.id() && !rt.grant_id.is_empty() {
                self.revoke_grant(&rt.grant_id)?;
            }
            return Ok(());
        }
        if let Ok(t) = self.verify_own_access_token(token) {
            if t.claims.get("client_id").and_then(Value::as_str) == Some(client.id()) {
                let jti = t.claims.get("jti").and_then(Value::as_str).unwrap_or_default();
                let exp = t.claims.get("exp").and_then(Value::as_u64).unwrap_or(0);
                self.records().put(jti, &RevokedJti, Some(exp + 1))?;
            }
        }
        Ok(())
    }

    /// The claims of an id_token this provider signed (`id_token_hint`);
    /// its expiry does not matter.
    pub(super) fn id_token_hint(&self, token: &str) -> Option<Map<String, Value>> {
        jose::verify_jws(token, &self.keys().published, &self.published_algs(), 16 * 1024)
            .ok()
            .and_then(|jws| crate::json::parse_object(&jws.payload).ok())
            .filter(|c| c.get("iss").and_then(Value::as_str) == Some(self.issuer.as_str()))
    }

    /// RP-Initiated Logout 1.0. The session behind the cookie ends at once
    /// only with proof that the request comes from it: an `id_token_hint`
    /// whose `sid` is that session. Otherwise the user is asked first (§2):
    /// a page that POSTs back a one-time token bound to the session, which
    /// a cross-site form cannot send (the cookie is SameSite=Lax). A hint
    /// never ends any session but the cookie's.
    pub(super) fn logout(&self, req: &HttpRequest) -> HttpResponse {
        let mut params = Params::parse(req.query.as_bytes());
        if req.method == "POST" && req.content_type_is("application/x-www-form-urlencoded") {
            params.merge_missing(Params::parse(&req.body));
        }
        let cookie_sid = match self.live_session(req) {
            Ok(s) => s.map(|(sid, _)| sid),
            Err(_) => return pages::error_page(500, "Sign-out failed", "the session could not be read; try again"),
        };
        if req.method == "POST" {
            if let Some(token) = params.get("confirm") {
                return self.logout_confirmed(token, cookie_sid.as_deref());
            }
        }
        let hint = match params.get("id_token_hint") {
            None => None,
            Some(t) => match self.id_token_hint(t) {
                Some(c) => Some(c),
                None => return pages::error_page(400, "Invalid logout request", "id_token_hint is not an id_token from this provider"),
            },
        };
        let hint_client = hint.as_ref().and_then(|c| match c.get("aud") {
            Some(Value::String(s)) => Some(s.clone()),
            Some(Value::Array(a)) => a.first().and_then(Value::as_str).map(str::to_owned),
            _ => None,
        });
        let client_id = match (hint_client, params.get("client_id")) {
            (Some(a), Some(b)) if a != b => {
                return pages::error_page(400, "Invalid logout request", "client_id does not match the id_token_hint")
            }
            (Some(a), _) => Some(a),
            (None, b) => b.map(str::to_owned),
        };
        let redirect = match params.get("post_logout_redirect_uri") {
            None => None,
            Some(uri) => {
                let registered = client_id
                    .as_deref()
                    .and_then(|c| self.apps.get(c))
                    .is_some_and(|app| app.post_logout_redirect_uris.iter().any(|u| u == uri));
                if !registered {
                    return pages::error_page(
                        400,
                        "Invalid logout request",
                        "post_logout_redirect_uri is not registered for this application (send id_token_hint or client_id)",
                    );
                }
                Some(uri.to_owned())
            }
        };
        let state = params.get("state").map(str::to_owned);
        let Some(sid) = cookie_sid else {
            // Nothing to end here.
            return self.logged_out(redirect.as_deref(), state.as_deref());
        };
        let proven = hint.as_ref().and_then(|c| c.get("sid")).and_then(Value::as_str) == Some(sid.as_str());
        if proven {
            if self.end_session(&sid).is_err() {
                return pages::error_page(500, "Sign-out failed", "the session could not be ended; try again");
            }
            return self.logged_out(redirect.as_deref(), state.as_deref());
        }
        let token = match crate::ids::random_id("L") {
            Ok(t) => t,
            Err(_) => return pages::error_page(500, "Sign-out failed", "try again"),
        };
        let pending = LogoutConfirm { sid: Some(sid), redirect: redirect.clone(), state };
        if self.records().put(&token_digest(&token), &pending, Some(crate::ids::now_secs() + 600)).is_err() {
            return pages::error_page(500, "Sign-out failed", "try again");
        }
        pages::logout_confirm_page(&self.url("/oauth2/v1/logout"), &token, redirect.as_deref())
    }

    /// The confirmation page's POST: ends the session the token was made
    /// for, if it is still the cookie's.
    fn logout_confirmed(&self, token: &str, cookie_sid: Option<&str>) -> HttpResponse {
        let digest = token_digest(token);
        let pending = match self.records().get::<LogoutConfirm>(&digest) {
            Ok(Some(p)) => p,
            Ok(None) => return pages::error_page(400, "Sign-out failed", "this sign-out page has expired; sign out again from the application"),
            Err(_) => return pages::error_page(500, "Sign-out failed", "try again"),
        };
        let sid = pending.sid.as_deref();
        if sid.is_none() || sid != cookie_sid {
            return pages::error_page(403, "Sign-out failed", "this sign-out was not asked for by this browser's session");
        }
        match self.records().take::<LogoutConfirm>(&digest) {
            Ok(Some(_)) => {}
            Ok(None) => return pages::error_page(400, "Sign-out failed", "this sign-out page has expired; sign out again from the application"),
            Err(_) => return pages::error_page(500, "Sign-out failed", "try again"),
        }
        if self.end_session(sid.unwrap_or_default()).is_err() {
            return pages::error_page(500, "Sign-out failed", "the session could not be ended; try again");
        }
        self.logged_out(pending.redirect.as_deref(), pending.state.as_deref())
    }

    fn logged_out(&self, redirect: Option<&str>, state: Option<&str>) -> HttpResponse {
        let clear = self.session_cookie("", 0);
        match redirect {
            Some(uri) => {
                let target = match state {
                    Some(s) => append_query(uri, &[("state", s)]),
                    None => uri.to_owned(),
                };
                HttpResponse::redirect(&target).with_header("Set-Cookie", clear)
            }
            None => pages::logged_out_page().with_header("Set-Cookie", clear),
        }
    }

    /// Ends a provider session and revokes the grants made under it.
    fn end_session(&self, sid: &str) -> Result<()> {
        if let Some(s) = self.records().get::<Session>(sid)? {
            for g in &s.grants {
                self.revoke_grant(g)?;
            }
            self.records().delete::<Session>(sid)?;
        }
        Ok(())
    }
}
