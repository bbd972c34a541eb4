//! The token endpoint (RFC 6749 §3.2, §4.1.3, §4.4, §6; RFC 7636 §4.6;
//! RFC 7523 client assertions) and the tokens it mints.

use super::config::{secret_matches, AuthMethod};
use crate::oidc::params::Params;
use super::http::{HttpRequest, HttpResponse};
use super::claims::Target;
use super::{oauth_error, split_scope, token_digest, AccessKey, Application, Provider};
use crate::error::{Error, ErrorCode, Result};
use crate::ids::{now_secs, random_id};
use crate::jose::{self, Minter, TokenKind, Validation};
use crate::store::RecordWrite;
use crate::user::{User, UserStatus};
use serde_json::{json, Map, Value};

const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// The longest lifetime a client assertion may claim: one hour, which
/// common clients (authlib signs for 3600 s) stay within; its `jti` is
/// remembered for all of it.
const MAX_ASSERTION_LIFETIME: u64 = 3600;

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
    /// A user's subject from a stored grant record (a code's or a refresh
    /// token's): `authTime`, `amr` and `sid` come from the record.
    fn from_grant(
        client_id: &'a str,
        user: &'a User,
        scopes: &'a [String],
        record: &'a Value,
        custom: &'a Map<String, Value>,
        nonce: Option<&'a str>,
        grant_id: &'a str,
    ) -> Subject<'a> {
        Subject {
            client_id,
            user: Some(user),
            subject: &user.user_id,
            scopes,
            auth_time: record.get("authTime").and_then(Value::as_u64),
            amr: record.get("amr"),
            acr: record.get("acr").and_then(Value::as_str),
            custom,
            claims_request: record.get("claimsRequest").filter(|c| c.is_object()),
            nonce,
            sid: record.get("sid").and_then(Value::as_str),
            grant_id: Some(grant_id),
        }
    }
}

/// A refresh token about to be issued: its store id, record and expiry.
struct NewRefresh {
    digest: String,
    record: Value,
    expires_at: u64,
}

/// An authenticated client.
pub(crate) enum Client<'a> {
    App(&'a Application),
    Key(&'a AccessKey),
}

impl Client<'_> {
    pub fn id(&self) -> &str {
        match self {
            Client::App(a) => &a.client_id,
            Client::Key(k) => &k.id,
        }
    }
}

/// `amr` (only when a method verified something), `acr` and `sid`.
fn add_auth_claims(s: &Subject<'_>, claims: &mut Map<String, Value>) {
    if let Some(a) = s.amr.filter(|a| a.as_array().is_some_and(|x| !x.is_empty())) {
        claims.insert("amr".into(), a.clone());
    }
    if let Some(acr) = s.acr.filter(|a| !a.is_empty()) {
        claims.insert("acr".into(), acr.into());
    }
    if let Some(sid) = s.sid {
        claims.insert("sid".into(), sid.into());
    }
}

/// The client id a request claims (before anything is verified): the
/// Basic user, `client_id`, or a client assertion's `iss`.
fn claimed_client_id(req: &HttpRequest, params: &Params) -> String {
    let basic = req.header("authorization").filter(|h| h.len() > 6 && h[..6].eq_ignore_ascii_case("basic ")).and_then(|h| {
        let raw = crate::b64::decode_std(h[6..].trim())?;
        let text = String::from_utf8(raw).ok()?;
        text.split_once(':').map(|(id, _)| id.to_owned())
    });
    basic
        .or_else(|| params.get("client_id").map(str::to_owned))
        .or_else(|| {
            let assertion = params.get("client_assertion")?;
            let claims = jose::decode_unverified(assertion).ok()?.claims;
            claims.get("iss").and_then(Value::as_str).map(str::to_owned)
        })
        .unwrap_or_default()
}

fn invalid_client(m: &str) -> Error {
    Error::new(ErrorCode::InvalidClient, m)
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
        match grant_type {
            "authorization_code" => self.code_grant(&client, &params),
            "refresh_token" => self.refresh_grant(&client, &params),
            _ => self.client_credentials(&client, &params),
        }
    }

    /// Client authentication, rate limited: a client id or an address
    /// with too many failures this window is refused before its secret is
    /// even checked, so secrets cannot be guessed at speed.
    pub(crate) async fn authenticate_client(&self, req: &HttpRequest, params: &Params) -> Result<Client<'_>> {
        let claimed = claimed_client_id(req, params);
        let ip = self.client_ip(req);
        let (per_client, per_ip) = (self.limits.client_auth_failures_per_client, self.limits.client_auth_failures_per_ip);
        let over_ip = match &ip {
            Some(ip) => self.at_limit("auth_ip", ip, per_ip)?,
            None => false,
        };
        if over_ip || self.at_limit("auth_client", &claimed, per_client)? {
            return Err(super::limits::rate_limited("failed client authentications"));
        }
        let result = self.authenticate_client_once(req, params).await;
        if matches!(&result, Err(e) if e.code == ErrorCode::InvalidClient) {
            self.count("auth_client", &claimed, u64::MAX, "failed client authentications")?;
            if let Some(ip) = &ip {
                self.count("auth_ip", ip, u64::MAX, "failed client authentications")?;
            }
        }
        result
    }

    /// Client authentication (RFC 6749 §2.3, RFC 7523 §2.2). A client uses
    /// exactly one method, and it must be its registered one.
    async fn authenticate_client_once(&self, req: &HttpRequest, params: &Params) -> Result<Client<'_>> {
        let basic = match req.header("authorization") {
            Some(h) if h.len() > 6 && h[..6].eq_ignore_ascii_case("basic ") => {
                let raw = crate::b64::decode_std(h[6..].trim()).ok_or_else(|| invalid_client("the Basic credentials are not base64"))?;
                let text = String::from_utf8(raw).map_err(|_| invalid_client("the Basic credentials are not UTF-8"))?;
                let (id, secret) = text.split_once(':').ok_or_else(|| invalid_client("the Basic credentials need id:secret"))?;
                // RFC 6749 §2.3.1: both halves are form-urlencoded.
                let decode = |s: &str| url::form_urlencoded::parse(format!("x={s}").as_bytes()).next().map(|(_, v)| v.into_owned());
                Some((decode(id).unwrap_or_default(), decode(secret).unwrap_or_default()))
            }
            _ => None,
        };
        let assertion = params.get("client_assertion");
        let post_secret = params.get("client_secret");
        let methods = [basic.is_some(), assertion.is_some(), post_secret.is_some()].iter().filter(|b| **b).count();
        if methods > 1 {
            return Err(Error::invalid_request("use exactly one client authentication method"));
        }
        if let Some(assertion) = assertion {
            if params.get("client_assertion_type") != Some(ASSERTION_TYPE) {
                return Err(invalid_client("client_assertion_type must be urn:ietf:params:oauth:client-assertion-type:jwt-bearer"));
            }
            return self.assertion_client(assertion, params.get("client_id")).await;
        }
        let (client_id, secret, method) = match (&basic, post_secret) {
            (Some((id, s)), _) => (id.clone(), Some(s.clone()), AuthMethod::ClientSecretBasic),
            (None, Some(s)) => (
                params.get("client_id").ok_or_else(|| invalid_client("client_id is missing"))?.to_owned(),
                Some(s.to_owned()),
                AuthMethod::ClientSecretPost,
            ),
            (None, None) => (
                params.get("client_id").ok_or_else(|| invalid_client("client authentication is missing"))?.to_owned(),
                None,
                AuthMethod::None,
            ),
        };
        if let Some(id) = params.get("client_id") {
            if id != client_id {
                return Err(invalid_client("client_id does not match the authenticated client"));
            }
        }
        if let Some(app) = self.apps.get(&client_id) {
            if app.auth_method != method {
                return Err(invalid_client(&format!("this application authenticates with {}", app.auth_method.as_str())));
            }
            if let (Some(secret), Some(stored)) = (&secret, &app.secret_digest) {
                if !secret_matches(secret, stored) {
                    return Err(invalid_client("client authentication failed"));
                }
            }
            return Ok(Client::App(app));
        }
        if let Some(key) = self.access_keys.get(&client_id) {
            let secret = secret.ok_or_else(|| invalid_client("an access key authenticates with its secret"))?;
            if !secret_matches(&secret, &key.secret_digest) {
                return Err(invalid_client("client authentication failed"));
            }
            if key.expires_at.is_some_and(|t| t <= now_secs()) {
                return Err(invalid_client("this access key has expired"));
            }
            return Ok(Client::Key(key));
        }
        Err(invalid_client("client authentication failed"))
    }

    async fn assertion_client(&self, assertion: &str, client_id: Option<&str>) -> Result<Client<'_>> {
        let unverified = jose::decode_unverified(assertion).map_err(|_| invalid_client("client_assertion is not a JWT"))?;
        let iss = unverified.claims.get("iss").and_then(Value::as_str).unwrap_or_default();
        let sub = unverified.claims.get("sub").and_then(Value::as_str).unwrap_or_default();
        if iss.is_empty() || iss != sub {
            return Err(invalid_client("client_assertion needs iss = sub = the client id"));
        }
        if client_id.is_some_and(|c| c != iss) {
            return Err(invalid_client("client_id does not match the client_assertion"));
        }
        // A request object (signed with the same keys) is not a client
        // assertion, even when it carries sub and jti (RFC 9101 §10.8).
        let typ = unverified.header.get("typ").and_then(Value::as_str).unwrap_or_default();
        if typ.eq_ignore_ascii_case("oauth-authz-req+jwt") || ["response_type", "redirect_uri"].iter().any(|k| unverified.claims.contains_key(*k)) {
            return Err(invalid_client("client_assertion is a request object, not a client assertion"));
        }
        let app = self.apps.get(iss).ok_or_else(|| invalid_client("client authentication failed"))?;
        if app.auth_method != AuthMethod::PrivateKeyJwt {
            return Err(invalid_client("this application does not authenticate with private_key_jwt"));
        }
        let mut v = Validation::new(&super::request_object::client_signing_algs());
        v.issuer = Some(app.client_id.clone());
        v.audience = vec![self.url("/oauth2/v1/token"), self.issuer.clone()];
        v.required_claims = vec!["exp".into(), "jti".into(), "sub".into(), "aud".into()];
        let token = self.verify_client_jwt(app, assertion, &v).await.map_err(|e| match e.code {
            ErrorCode::Network => Error::new(ErrorCode::InvalidClient, "the client's JWKS could not be fetched"),
            _ => invalid_client(&format!("client_assertion refused: {}", e.message)),
        })?;
        let now = now_secs();
        let exp = token.claims.get("exp").and_then(Value::as_u64).unwrap_or(0);
        if exp > now + MAX_ASSERTION_LIFETIME + 60 {
            return Err(invalid_client("client_assertion lives too long (exp at most one hour ahead)"));
        }
        let jti = token.claims.get("jti").and_then(Value::as_str).unwrap_or_default();
        // Remember the jti until the assertion could no longer be accepted.
        if !self.store.insert_record("client_jti", &format!("{}:{jti}", app.client_id), &json!(true), Some(exp + 61))? {
            return Err(invalid_client("client_assertion was already used (jti replay)"));
        }
        Ok(Client::App(app))
    }

    fn code_grant(&self, client: &Client<'_>, params: &Params) -> Result<Value> {
        let code = params.get("code").ok_or_else(|| Error::invalid_request("code is missing"))?;
        let digest = token_digest(code);
        let record = self.store.record("code", &digest)?.ok_or_else(|| invalid_grant("the code is invalid or has expired"))?;
        let field = |k: &str| record.get(k).and_then(Value::as_str);
        if field("clientId") != Some(client.id()) {
            return Err(invalid_grant("the code was issued to another client"));
        }
        let grant_id = field("grantId").unwrap_or_default().to_owned();
        // Single use: the first redemption wins; a second one revokes every
        // token issued from the code (RFC 6749 §4.1.2).
        let expires = record.get("exp").and_then(Value::as_u64).unwrap_or(0);
        if !self.store.insert_record("code_used", &digest, &json!(true), Some(expires + 600))? {
            self.revoke_grant(&grant_id)?;
            return Err(invalid_grant("the code was already used; the tokens issued from it are revoked"));
        }
        if expires <= now_secs() {
            return Err(invalid_grant("the code has expired"));
        }
        if params.get("redirect_uri") != field("redirectUri") {
            return Err(invalid_grant("redirect_uri does not match the authorization request"));
        }
        match (field("codeChallenge"), params.get("code_verifier")) {
            (Some(challenge), Some(verifier)) => {
                let method = crate::pkce::Method::parse(field("codeChallengeMethod").unwrap_or("plain"))?;
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
        if !self.grant_live(&grant_id)? {
            return Err(invalid_grant("the grant has been revoked"));
        }
        let user_id = field("userId").unwrap_or_default();
        let user = self.active_user(user_id)?;
        let scopes = split_scope(field("scope"));
        let custom = record.get("claims").and_then(Value::as_object).cloned().unwrap_or_default();
        let subject = Subject::from_grant(client.id(), &user, &scopes, &record, &custom, field("nonce"), &grant_id);
        self.token_response(client, &subject, true)
    }

    fn refresh_grant(&self, client: &Client<'_>, params: &Params) -> Result<Value> {
        let token = params.get("refresh_token").ok_or_else(|| Error::invalid_request("refresh_token is missing"))?;
        let digest = token_digest(token);
        let record = self.store.record("rt", &digest)?.ok_or_else(|| invalid_grant("the refresh token is invalid or has expired"))?;
        let field = |k: &str| record.get(k).and_then(Value::as_str);
        if field("clientId") != Some(client.id()) {
            return Err(invalid_grant("the refresh token was issued to another client"));
        }
        let grant_id = field("grantId").unwrap_or_default().to_owned();
        let expires = record.get("exp").and_then(Value::as_u64);
        let granted = split_scope(field("scope"));
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
        if self.store.record("rt_used", &digest)?.is_some() {
            return self.refresh_reused(client, &digest, &grant_id);
        }
        if !self.grant_live(&grant_id)? {
            return Err(invalid_grant("the grant has been revoked"));
        }
        let user = self.active_user(field("userId").unwrap_or_default())?;
        let custom = record.get("claims").and_then(Value::as_object).cloned().unwrap_or_default();
        let subject = Subject::from_grant(client.id(), &user, &scopes, &record, &custom, None, &grant_id);
        // The narrowed scope is what the new refresh token carries; the
        // family keeps its original expiry.
        let (out, next) = self.token_response_parts(client, &subject, true)?;
        let now = now_secs();
        let grace = self.project.refresh_reuse_grace;
        let mut marker = json!({"at": now, "clientId": client.id()});
        if grace > 0 {
            // What a retry within the grace window gets back: this answer.
            marker["response"] = self.vault.seal(&format!("rt_used:{digest}"), &out)?;
        }
        let redeemed = match &next {
            Some(n) => {
                marker["next"] = n.digest.clone().into();
                let then = RecordWrite { kind: "rt", id: &n.digest, value: &n.record, expires_at: Some(n.expires_at) };
                self.store.redeem_and_put(&RecordWrite { kind: "rt_used", id: &digest, value: &marker, expires_at: expires }, &then)?
            }
            None => self.store.insert_record("rt_used", &digest, &marker, expires)?,
        };
        if !redeemed {
            return self.refresh_reused(client, &digest, &grant_id);
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
            if let Some(marker) = self.store.record("rt_used", digest)? {
                let at = marker.get("at").and_then(Value::as_u64).unwrap_or(0);
                let same_client = marker.get("clientId").and_then(Value::as_str) == Some(client.id());
                let next_unused = match marker.get("next").and_then(Value::as_str) {
                    Some(next) => self.store.record("rt_used", next)?.is_none(),
                    None => true,
                };
                if same_client && next_unused && now_secs() <= at + grace && self.grant_live(grant_id)? {
                    if let Some(sealed) = marker.get("response") {
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
    /// refresh, a new refresh token (stored here).
    fn token_response(&self, client: &Client<'_>, s: &Subject<'_>, may_refresh: bool) -> Result<Value> {
        let (out, next) = self.token_response_parts(client, s, may_refresh)?;
        if let Some(n) = next {
            self.store.put_record("rt", &n.digest, &n.record, Some(n.expires_at))?;
        }
        Ok(out)
    }

    /// [`Provider::token_response`] without storing the new refresh token,
    /// which the caller writes (the refresh grant: with the old token's
    /// redemption, in one transaction).
    fn token_response_parts(&self, client: &Client<'_>, s: &Subject<'_>, may_refresh: bool) -> Result<(Value, Option<NewRefresh>)> {
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
        if !(may_refresh && refreshable) {
            return Ok((out, None));
        }
        let token = random_id("")?;
        let now = now_secs();
        let grant_exp = self
            .store
            .record("grant", s.grant_id.unwrap_or_default())?
            .and_then(|g| g.get("expiresAt").and_then(Value::as_u64))
            .unwrap_or(now + self.project.refresh_ttl);
        let record = json!({
            "grantId": s.grant_id, "clientId": s.client_id, "userId": s.subject, "scope": s.scopes.join(" "),
            "authTime": s.auth_time, "amr": s.amr, "acr": s.acr, "claims": s.custom, "claimsRequest": s.claims_request,
            "sid": s.sid, "exp": grant_exp,
        });
        let next = NewRefresh { digest: token_digest(&token), record, expires_at: grant_exp };
        out["refresh_token"] = token.into();
        Ok((out, Some(next)))
    }

    /// An RFC 9068 access token (`typ: at+jwt`).
    pub(crate) fn mint_access_token(&self, s: &Subject<'_>) -> Result<(String, u64)> {
        let jti = match s.grant_id {
            Some(g) => format!("{g}.{}", random_id("")?),
            None => random_id("T")?,
        };
        let mut claims = Map::new();
        claims.insert("client_id".into(), s.client_id.into());
        claims.insert("scope".into(), s.scopes.join(" ").into());
        claims.insert("jti".into(), jti.into());
        if let Some(t) = s.auth_time {
            claims.insert("auth_time".into(), t.into());
        }
        add_auth_claims(s, &mut claims);
        match s.user {
            Some(user) => self.release_user_claims(user, s.scopes, s.custom, None, Target::AccessToken, &mut claims),
            None => {
                // An access key's claims are always its own.
                for (k, v) in s.custom {
                    claims.entry(k.clone()).or_insert_with(|| v.clone());
                }
            }
        }
        self.minter().mint(TokenKind::Access, s.subject, &self.project.project_id, now_secs(), self.project.session_ttl, claims)
    }

    /// An id_token (OIDC Core §2) with `at_hash` when an access token is
    /// issued alongside.
    pub(crate) fn mint_id_token(&self, s: &Subject<'_>, access_token: Option<&str>, _code: Option<&str>) -> Result<String> {
        let mut claims = Map::new();
        claims.insert("azp".into(), s.client_id.into());
        if let Some(t) = s.auth_time {
            claims.insert("auth_time".into(), t.into());
        }
        if let Some(n) = s.nonce {
            claims.insert("nonce".into(), n.into());
        }
        if let Some(at) = access_token {
            claims.insert("at_hash".into(), self.keys.alg.half_hash(at).into());
        }
        add_auth_claims(s, &mut claims);
        if let Some(user) = s.user {
            let target = Target::IdToken { with_access_token: access_token.is_some() };
            self.release_user_claims(user, s.scopes, s.custom, s.claims_request, target, &mut claims);
        }
        Ok(self.minter().mint(TokenKind::Id, s.subject, s.client_id, now_secs(), self.project.session_ttl, claims)?.0)
    }

    /// Issues this provider's JWTs with its active key.
    fn minter(&self) -> Minter<'_> {
        Minter::new(&self.issuer, &self.keys.active)
    }
}
