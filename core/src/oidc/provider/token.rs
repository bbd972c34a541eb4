//! The token endpoint (RFC 6749 §3.2, §4.1.3, §4.4, §6; RFC 7636 §4.6;
//! RFC 7523 client assertions) and the tokens it mints.

use super::client_auth::Client;

use crate::oidc::params::Params;
use super::http::{HttpRequest, HttpResponse};
use super::{oauth_error, split_scope, token_digest, Provider};
use crate::error::{Error, ErrorCode, Result};
use crate::ids::{now_secs, random_id};
use super::state::{Authentication, Code, CodeUsed, RefreshToken, RefreshUsed};
use crate::user::{User, UserStatus};
use serde_json::{json, Map, Value};

/// Who and what a token is for.
pub(crate) struct Subject<'a> {
    pub client_id: &'a str,
    /// `None` for client_credentials.
    pub user: Option<&'a User>,
    pub subject: &'a str,
    pub scopes: &'a [String],
    pub auth_time: Option<u64>,
    pub amr: Option<&'a Value>,
    /// The flow that signed the user in.
    pub acr: Option<&'a str>,
    pub custom: &'a Map<String, Value>,
    /// The request's `claims` parameter (OIDC Core §5.5), as checked.
    pub claims_request: Option<&'a Value>,
    pub nonce: Option<&'a str>,
    pub sid: Option<&'a str>,
    /// Access tokens from a grant carry it in their `jti` (`{grant}.{random}`),
    /// so revoking the grant revokes them without a write per token.
    pub grant_id: Option<&'a str>,
}

impl<'a> Subject<'a> {
    /// A user's subject from what a code or refresh token carries of its
    /// sign-in.
    fn from_grant(
        client_id: &'a str,
        user: &'a User,
        scopes: &'a [String],
        auth: &'a Authentication,
        claims_request: Option<&'a Value>,
        nonce: Option<&'a str>,
        grant_id: &'a str,
    ) -> Subject<'a> {
        Subject {
            client_id,
            user: Some(user),
            subject: &user.user_id,
            scopes,
            auth_time: auth.auth_time,
            amr: Some(&auth.amr).filter(|a| !a.is_null()),
            acr: auth.acr.as_deref(),
            custom: &auth.claims,
            claims_request: claims_request.filter(|c| c.is_object()),
            nonce,
            sid: auth.sid.as_deref(),
            grant_id: Some(grant_id),
        }
    }
}

/// A refresh token about to be issued: its store id, record and expiry.
struct NewRefresh {
    digest: String,
    record: RefreshToken,
    expires_at: u64,
}

fn invalid_grant(m: &str) -> Error {
    Error::new(ErrorCode::InvalidGrant, m)
}

impl Provider {
    pub(super) async fn token(&self, req: &HttpRequest) -> HttpResponse {
        match self.token_inner(req).await {
            Ok(v) => HttpResponse::json_no_store(200, &v),
            Err(e) => {
                let mut r = oauth_error(&e);
                if e.code == ErrorCode::InvalidClient && req.header("authorization").is_some() {
                    r = r.with_header("WWW-Authenticate", "Basic realm=\"idflow\"");
                }
                r
            }
        }
    }
    async fn token_inner(&self, req: &HttpRequest) -> Result<Value> {
        if !req.content_type_is("application/x-www-form-urlencoded") {
            return Err(Error::invalid_request("the token endpoint takes a form body (application/x-www-form-urlencoded)"));
        }
        let params = Params::parse(&req.body);
        if let Some(name) = params.repeated() {
            return Err(Error::invalid_request(format!("parameter {name} is repeated")));
        }
        let grant_type = params.get("grant_type").ok_or_else(|| Error::invalid_request("grant_type is missing"))?;
        if !["authorization_code", "refresh_token", "client_credentials"].contains(&grant_type) {
            return Err(Error::new(ErrorCode::UnsupportedGrantType, format!("grant_type {grant_type:?} is not supported")));
        }
        let client = self.authenticate_client(req, &params).await?;
        match (&client, grant_type) {
            (Client::Key(_), "client_credentials") => {}
            (Client::Key(_), _) => return Err(Error::new(ErrorCode::UnauthorizedClient, "access keys only use client_credentials")),
            (Client::App(app), g) if !app.allows_grant(g) => {
                return Err(Error::new(ErrorCode::UnauthorizedClient, format!("this application may not use {g}")))
            }
            _ => {}
        }
        let (grant, issued) = match grant_type {
            "authorization_code" => ("authorization_code", self.code_grant(&client, &params)),
            "refresh_token" => ("refresh_token", self.refresh_grant(&client, &params)),
            _ => ("client_credentials", self.client_credentials(&client, &params)),
        };
        if issued.is_ok() {
            self.metrics.token(grant);
        }
        issued
    }
    fn code_grant(&self, client: &Client<'_>, params: &Params) -> Result<Value> {
        let code = params.get("code").ok_or_else(|| Error::invalid_request("code is missing"))?;
        let digest = token_digest(code);
        let record = self.records().get::<Code>(&digest)?.ok_or_else(|| invalid_grant("the code is invalid or has expired"))?;
        if record.request.client_id != client.id() {
            return Err(invalid_grant("the code was issued to another client"));
        }
        let grant_id = record.grant_id.as_str();
        // The grant is checked before the redemption: a replay racing this
        // request revokes it only after this request has won, so the winner
        // is answered (and its tokens then revoked with the grant).
        let grant = self.live_grant(grant_id)?.ok_or_else(|| invalid_grant("the grant has been revoked"))?;
        // Single use: the first redemption wins; a second one revokes every
        // token issued from the code (RFC 6749 §4.1.2).
        let expires = record.exp;
        if !self.records().redeem(&digest, &CodeUsed, Some(expires + 600))? {
            self.revoke_grant(grant_id)?;
            return Err(invalid_grant("the code was already used; the tokens issued from it are revoked"));
        }
        if expires <= now_secs() {
            return Err(invalid_grant("the code has expired"));
        }
        if params.get("redirect_uri") != Some(record.request.redirect_uri.as_str()) {
            return Err(invalid_grant("redirect_uri does not match the authorization request"));
        }
        match (record.request.code_challenge.as_deref(), params.get("code_verifier")) {
            (Some(challenge), Some(verifier)) => {
                let method = crate::pkce::Method::parse(record.request.code_challenge_method.as_deref().unwrap_or("plain"))?;
                let ok = crate::pkce::verify(verifier, challenge, method, true)
                    .map_err(|e| invalid_grant(&format!("code_verifier: {}", e.message)))?;
                if !ok {
                    return Err(invalid_grant("code_verifier does not match the code_challenge"));
                }
            }
            (Some(_), None) => return Err(invalid_grant("code_verifier is missing (the request used PKCE)")),
            (None, Some(_)) => return Err(invalid_grant("code_verifier given but the request had no code_challenge")),
            (None, None) => {}
        }
        let user = self.active_user(&record.auth.user_id)?;
        let scopes = split_scope(Some(&record.request.scope));
        let subject = Subject::from_grant(client.id(), &user, &scopes, &record.auth, record.request.claims_request.as_ref(), record.request.nonce.as_deref(), grant_id);
        self.token_response(client, &subject, grant.expires_at)
    }
    fn refresh_grant(&self, client: &Client<'_>, params: &Params) -> Result<Value> {
        let token = params.get("refresh_token").ok_or_else(|| Error::invalid_request("refresh_token is missing"))?;
        let digest = token_digest(token);
        let record = self.records().get::<RefreshToken>(&digest)?.ok_or_else(|| invalid_grant("the refresh token is invalid or has expired"))?;
        if record.client_id != client.id() {
            return Err(invalid_grant("the refresh token was issued to another client"));
        }
        let grant_id = record.grant_id.as_str();
        let granted = split_scope(Some(&record.scope));
        let scopes = match params.get("scope") {
            None => granted,
            Some(s) => {
                let asked = split_scope(Some(s));
                if let Some(w) = asked.iter().find(|a| !granted.contains(a)) {
                    return Err(Error::new(ErrorCode::InvalidScope, format!("scope {w:?} was not granted; a refresh can only narrow scope")));
                }
                asked
            }
        };
        // Rotation: each refresh token works once; presenting a rotated one
        // means it leaked, so the whole family is revoked (unless it is the
        // same client retrying within tokens.refreshReuseGrace).
        if self.records().exists::<RefreshUsed>(&digest)? {
            return self.refresh_reused(client, &digest, grant_id);
        }
        let grant = self.live_grant(grant_id)?.ok_or_else(|| invalid_grant("the grant has been revoked"))?;
        let user = self.active_user(&record.auth.user_id)?;
        let subject = Subject::from_grant(client.id(), &user, &scopes, &record.auth, record.claims_request.as_ref(), None, grant_id);
        // The narrowed scope is what the new refresh token carries; the
        // family keeps its original expiry.
        let (out, next) = self.token_response_parts(client, &subject, grant.expires_at)?;
        let now = now_secs();
        let grace = self.project.refresh_reuse_grace;
        let mut marker = RefreshUsed { at: now, client_id: client.id().to_owned(), response: None, next: None };
        if grace > 0 {
            // What a retry within the grace window gets back: this answer.
            marker.response = Some(self.vault.seal(&format!("rt_used:{digest}"), &out)?);
        }
        if let Some(n) = &next {
            marker.next = Some(n.digest.clone());
        }
        let redeemed = match &next {
            Some(n) => self.records().redeem_with(&digest, &marker, record.exp, (&n.digest, &n.record, n.expires_at))?,
            None => self.records().redeem(&digest, &marker, record.exp)?,
        };
        if !redeemed {
            return self.refresh_reused(client, &digest, grant_id);
        }
        Ok(out)
    }

    /// A refresh token presented again. Within `tokens.refreshReuseGrace`
    /// of its rotation, the same client whose successor is still unused
    /// gets the very answer of the rotation again (its reply was lost);
    /// anything else is a leaked token, and the family is revoked.
    fn refresh_reused(&self, client: &Client<'_>, digest: &str, grant_id: &str) -> Result<Value> {
        let grace = self.project.refresh_reuse_grace;
        if grace > 0 {
            if let Some(marker) = self.records().get::<RefreshUsed>(digest)? {
                let same_client = marker.client_id == client.id();
                let next_unused = match &marker.next {
                    Some(next) => !self.records().exists::<RefreshUsed>(next)?,
                    None => true,
                };
                if same_client && next_unused && now_secs() <= marker.at + grace && self.grant_live(grant_id)? {
                    if let Some(sealed) = &marker.response {
                        return self.vault.open_sealed(&format!("rt_used:{digest}"), sealed);
                    }
                }
            }
        }
        self.revoke_grant(grant_id)?;
        Err(invalid_grant("the refresh token was already used; its whole family is revoked"))
    }
    fn client_credentials(&self, client: &Client<'_>, params: &Params) -> Result<Value> {
        let asked = split_scope(params.get("scope"));
        let (allowed, custom): (Vec<String>, Map<String, Value>) = match client {
            Client::Key(k) => (k.scopes.clone(), k.custom_claims.clone()),
            Client::App(a) => {
                if a.public {
                    return Err(Error::new(ErrorCode::UnauthorizedClient, "public clients cannot use client_credentials"));
                }
                // No user signs in here, so user scopes (openid, profile, ...) do not apply.
                let machine = a.scopes.iter().filter(|s| !super::STANDARD_SCOPES.contains(&s.as_str())).cloned().collect();
                (machine, Map::new())
            }
        };
        if let Some(s) = asked.iter().find(|s| !allowed.contains(s)) {
            return Err(Error::new(ErrorCode::InvalidScope, format!("scope {s:?} is not allowed for this client")));
        }
        let scopes = if asked.is_empty() { allowed } else { asked };
        let subject = Subject {
            client_id: client.id(),
            user: None,
            subject: client.id(),
            scopes: &scopes,
            auth_time: None,
            amr: None,
            acr: None,
            custom: &custom,
            claims_request: None,
            nonce: None,
            sid: None,
            grant_id: None,
        };
        let (access, _) = self.mint_access_token(&subject)?;
        Ok(json!({"access_token": access, "token_type": "Bearer", "expires_in": self.project.session_ttl, "scope": scopes.join(" ")}))
    }
    fn active_user(&self, user_id: &str) -> Result<User> {
        let user = self.store.user(user_id)?.ok_or_else(|| invalid_grant("the user no longer exists"))?;
        if user.status == UserStatus::Disabled {
            return Err(invalid_grant("the user is disabled"));
        }
        Ok(user)
    }
    /// Access token, id_token (with `openid`) and, when the client may
    /// refresh, a new refresh token (stored here), living until the grant
    /// expires (`grant_expires`).
    fn token_response(&self, client: &Client<'_>, s: &Subject<'_>, grant_expires: Option<u64>) -> Result<Value> {
        let (out, next) = self.token_response_parts(client, s, grant_expires)?;
        if let Some(n) = next {
            self.records().put(&n.digest, &n.record, Some(n.expires_at))?;
        }
        Ok(out)
    }
    /// [`Provider::token_response`] without storing the new refresh token,
    /// which the caller writes (the refresh grant: with the old token's
    /// redemption, in one transaction).
    fn token_response_parts(&self, client: &Client<'_>, s: &Subject<'_>, grant_expires: Option<u64>) -> Result<(Value, Option<NewRefresh>)> {
        let (access, _) = self.mint_access_token(s)?;
        let mut out = json!({"access_token": access, "token_type": "Bearer", "expires_in": self.project.session_ttl, "scope": s.scopes.join(" ")});
        if s.scopes.iter().any(|x| x == "openid") {
            out["id_token"] = self.mint_id_token(s, Some(&access), None)?.into();
        }
        let refreshable = match client {
            Client::App(app) => {
                app.allows_grant("refresh_token") && (!app.public || s.scopes.iter().any(|x| x == "offline_access"))
            }
            Client::Key(_) => false,
        };
        if !refreshable {
            return Ok((out, None));
        }
        let token = random_id("")?;
        let now = now_secs();
        let grant_exp = grant_expires.unwrap_or(now + self.project.refresh_ttl);
        let record = RefreshToken {
            auth: Authentication {
                user_id: s.subject.to_owned(),
                auth_time: s.auth_time,
                amr: s.amr.cloned().unwrap_or(Value::Null),
                acr: s.acr.map(str::to_owned),
                claims: s.custom.clone(),
                sid: s.sid.map(str::to_owned),
            },
            grant_id: s.grant_id.unwrap_or_default().to_owned(),
            client_id: s.client_id.to_owned(),
            scope: s.scopes.join(" "),
            claims_request: s.claims_request.cloned(),
            exp: Some(grant_exp),
        };
        let next = NewRefresh { digest: token_digest(&token), record, expires_at: grant_exp };
        out["refresh_token"] = token.into();
        Ok((out, Some(next)))
    }
}
