//! Authorize (OIDC Core §3.1.2, RFC 6749 §4.1, RFC 7636), the delivery of
//! a finished authorization (`/oauth2/v1/authorize/complete`, only to the
//! browser that sent the request) and the codes and implicit tokens it
//! issues.

use crate::oidc::params::{append_query, append_query_bytes, Params};
use super::http::{HttpRequest, HttpResponse};
use super::token::Subject;
use super::{claims, pages, split_scope, token_digest, Application, Provider, AUTH_REQUEST_TTL, SESSION_COOKIE};
use crate::error::{Error, ErrorCode, Result};
use crate::ids::{now_secs, random_id};
use serde_json::{json, Map, Value};

/// The longest value an authorize parameter may have (bytes).
pub const MAX_AUTHORIZE_PARAM: usize = 2048;
/// The longest `request` object taken, in bytes.
pub const MAX_REQUEST_OBJECT: usize = 8192;

/// How an authorization response travels (OAuth 2.0 Multiple Response
/// Type Encoding Practices §2.1, Form Post Response Mode §2).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Query,
    Fragment,
    FormPost,
}

/// Where an authorization response goes: the checked redirect URI, how,
/// and the state to echo as the bytes received.
struct Reply<'a> {
    redirect_uri: &'a str,
    mode: Mode,
    state: Option<&'a [u8]>,
}

pub(super) fn str_field<'v>(v: &'v Value, k: &str) -> Option<&'v str> {
    v.get(k).and_then(Value::as_str)
}

/// The request's `state` as stored: base64url of the bytes received.
fn stored_state(request: &Value) -> Option<Vec<u8>> {
    str_field(request, "state").and_then(crate::b64::decode)
}

impl Provider {
    fn reply_error(&self, reply: &Reply<'_>, error: &str, description: &str) -> HttpResponse {
        let fields = [("error", error), ("error_description", description), ("iss", self.issuer.as_str())];
        Completion::of(reply.redirect_uri, reply.mode, &fields, reply.state).into_response()
    }

    pub(super) async fn authorize(&self, req: &HttpRequest) -> HttpResponse {
        let mut params = Params::parse(req.query.as_bytes());
        if req.method == "POST" {
            if !req.content_type_is("application/x-www-form-urlencoded") {
                return pages::error_page(400, "Invalid request", "authorize takes a form body (application/x-www-form-urlencoded)");
            }
            let body = Params::parse(&req.body);
            params.merge_missing(body);
        }
        // Until the client and its redirect URI are known to be good, errors
        // are shown here and never redirected (RFC 6749 §3.1, §4.1.2.1).
        for name in ["client_id", "redirect_uri"] {
            if params.is_repeated(name) {
                return pages::error_page(400, "Invalid request", &format!("{name} is repeated"));
            }
            if params.get(name).is_some_and(|v| v.len() > MAX_AUTHORIZE_PARAM) {
                return pages::error_page(400, "Invalid request", &format!("{name} is too long"));
            }
        }
        let Some(client_id) = params.get("client_id") else {
            return pages::error_page(400, "Invalid request", "client_id is missing");
        };
        let Some(app) = self.apps.get(client_id) else {
            return pages::error_page(400, "Unknown application", "no application has this client_id");
        };
        // A request object (OIDC Core §6.1, RFC 9101) supersedes the
        // query's parameters. Its client_id and redirect_uri must agree with
        // the query's when both are given (else the page, never a redirect);
        // any other refusal goes to the query's registered redirect_uri.
        let mut object_error = None;
        if params.is_repeated("request") {
            object_error = Some("request is repeated".to_owned());
        } else if let Some(jwt) = params.get("request").map(str::to_owned) {
            let verified = match jwt.len() {
                n if n > MAX_REQUEST_OBJECT => Err(format!("the request object is longer than {MAX_REQUEST_OBJECT} bytes")),
                _ => self.request_object(app, &jwt).await,
            };
            match verified {
                Ok((pairs, signed)) => {
                    for name in ["client_id", "redirect_uri"] {
                        let inside = pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
                        if inside.is_some_and(|v| params.get(name).is_some_and(|q| q != v)) {
                            return pages::error_page(400, "Invalid request object", &format!("the request object's {name} differs from the {name} parameter"));
                        }
                    }
                    let response_type = pairs.iter().find(|(k, _)| k == "response_type").map(|(_, v)| v.as_str());
                    if response_type.is_some_and(|v| params.get("response_type").is_some_and(|q| q != v)) {
                        object_error = Some("the request object's response_type differs from the response_type parameter".to_owned());
                    } else {
                        // A signed object is the whole request (RFC 9101
                        // §5): the query adds only what OIDC Core §6.1 keeps
                        // there (client_id, response_type, scope) when the
                        // object lacks it. An unsigned one is merged (§6.3.3).
                        if signed {
                            let mut only = Params::default();
                            for name in ["client_id", "response_type", "scope"] {
                                if let Some(v) = params.get(name) {
                                    only.supersede(name, v.to_owned());
                                }
                            }
                            params = only;
                        }
                        for (k, v) in pairs {
                            params.supersede(&k, v);
                        }
                    }
                }
                Err(m) => object_error = Some(m),
            }
        }
        params.remove("request");
        let redirect_uri = match params.get("redirect_uri") {
            Some(uri) if app.redirect_uri_allowed(uri) => uri.to_owned(),
            Some(_) => return pages::error_page(400, "Invalid redirect URI", "redirect_uri is not registered for this application"),
            None => return pages::error_page(400, "Invalid request", "redirect_uri is missing"),
        };
        let response_type = params.get("response_type").unwrap_or_default().to_owned();
        let implicit = response_type == "id_token" || response_type == "id_token token";
        let response_mode = params.get("response_mode");
        let enabled = app.response_types.iter().any(|r| r == &response_type);
        let mode = match response_mode {
            Some("form_post") => Mode::FormPost,
            Some("query") if !implicit => Mode::Query,
            Some("fragment") => Mode::Fragment,
            // Implicit answers default to form_post for the applications
            // that enabled it; a type nobody enabled answers in the type's
            // default mode, the fragment (OIDC Core §3.2.2.5).
            _ if implicit && enabled => Mode::FormPost,
            _ if implicit => Mode::Fragment,
            _ => Mode::Query,
        };
        let state = params.get_bytes("state").filter(|s| s.len() <= MAX_AUTHORIZE_PARAM);
        let reply = Reply { redirect_uri: &redirect_uri, mode, state };
        if params.get_bytes("state").is_some_and(|s| s.len() > MAX_AUTHORIZE_PARAM) {
            return self.reply_error(&reply, "invalid_request", &format!("state is longer than {MAX_AUTHORIZE_PARAM} bytes"));
        }
        if let Some(name) = params.repeated() {
            return self.reply_error(&reply, "invalid_request", &format!("parameter {name} is repeated"));
        }
        if let Some(name) = params.longest_over(MAX_AUTHORIZE_PARAM) {
            return self.reply_error(&reply, "invalid_request", &format!("parameter {name} is longer than {MAX_AUTHORIZE_PARAM} bytes"));
        }
        if mode == Mode::Fragment && !implicit {
            return self.reply_error(&reply, "invalid_request", "response_mode fragment is only for the implicit flow here (use query or form_post)");
        }
        if let Some(m) = object_error {
            return self.reply_error(&reply, "invalid_request_object", &m);
        }
        if let Err((error, description)) = self.check_authorize(app, &params, &response_type, implicit, response_mode) {
            return self.reply_error(&reply, error, &description);
        }
        // Unknown or unallowed scope values are ignored (OIDC Core §3.1.2.1).
        let scope: Vec<String> = split_scope(params.get("scope")).into_iter().filter(|s| app.scopes.contains(s)).collect();
        if implicit && !scope.iter().any(|s| s == "openid") {
            return self.reply_error(&reply, "invalid_scope", "the implicit flow needs the openid scope");
        }
        let prompt = split_scope(params.get("prompt"));
        let max_age = match params.get("max_age").map(str::parse::<u64>) {
            None => None,
            Some(Ok(n)) => Some(n),
            Some(Err(_)) => return self.reply_error(&reply, "invalid_request", "max_age must be a number of seconds"),
        };
        let claims_request = match params.get("claims").map(claims::parse_claims_request) {
            None => None,
            Some(Ok(c)) => Some(claims::within_scopes(c, &app.scopes)),
            Some(Err(m)) => return self.reply_error(&reply, "invalid_request", &m),
        };
        // The flow: `flow=` if this application may run it, else the first
        // of `acr_values` (then the `claims` parameter's acr values) it may
        // run, else its default. An essential acr it cannot satisfy is a
        // failed authentication (OIDC Core §5.5.1.1).
        let mut acr_values = split_scope(params.get("acr_values"));
        let (claimed_acr, acr_essential) = claims::requested_acr(claims_request.as_ref());
        let allowed_acr: Vec<String> = claimed_acr.iter().filter(|a| app.flows.contains(a)).cloned().collect();
        if acr_essential && !claimed_acr.is_empty() {
            // Essential values are the only flows that may answer, whatever
            // acr_values or a kept session say.
            if allowed_acr.is_empty() {
                return self.reply_error(&reply, "access_denied", "no flow of this application gives the essential acr the claims parameter asks for");
            }
            if params.get("flow").is_some_and(|f| !allowed_acr.iter().any(|a| a == f)) {
                return self.reply_error(&reply, "access_denied", "the flow parameter names a flow the essential acr does not allow");
            }
            acr_values = allowed_acr;
        } else {
            acr_values.extend(allowed_acr);
        }
        let flow = match params.get("flow") {
            Some(f) if app.flows.iter().any(|x| x == f) => f.to_owned(),
            Some(_) => return self.reply_error(&reply, "invalid_request", "the flow parameter names no flow this application may run (its flows)"),
            None => match acr_values.iter().find(|a| app.flows.contains(a)) {
                Some(a) => a.clone(),
                None => match app.flows.first() {
                    Some(f) => f.clone(),
                    None => return self.reply_error(&reply, "server_error", "the project has no flow to sign users in"),
                },
            },
        };
        let hint_sub = match params.get("id_token_hint") {
            None => None,
            Some(t) => match self.id_token_hint(t) {
                Some(c) => c.get("sub").and_then(Value::as_str).map(str::to_owned),
                None => return self.reply_error(&reply, "invalid_request", "id_token_hint is not an id_token from this provider"),
            },
        };
        // claims.id_token.sub.value: only that user may answer (§5.5.1).
        let required_sub = claims::requested_sub(claims_request.as_ref());
        let request = json!({
            "clientId": app.client_id,
            "redirectUri": redirect_uri,
            "responseType": response_type,
            "formPost": mode == Mode::FormPost,
            "scope": scope.join(" "),
            "state": state.map(crate::b64::encode),
            "nonce": params.get("nonce"),
            "codeChallenge": params.get("code_challenge"),
            "codeChallengeMethod": params.get("code_challenge").map(|_| params.get("code_challenge_method").unwrap_or("plain")),
            "maxAge": max_age,
            "loginHint": params.get("login_hint"),
            "flow": flow,
            "claimsRequest": claims_request,
        });
        // An existing provider session answers at once unless the client
        // forces a login (prompt=login), the session is older than max_age,
        // it was made by a flow this request does not accept, or
        // id_token_hint names another user (OIDC Core §3.1.2.1).
        let session = match self.live_session(req) {
            Ok(s) => s,
            Err(_) => return self.reply_error(&reply, "server_error", "the session store failed"),
        };
        let force_login = prompt.iter().any(|p| p == "login");
        let session = session.filter(|(_, s)| {
            let made_by = str_field(s, "flow").unwrap_or_default();
            let flow_ok = if params.get("flow").is_some() {
                made_by == flow
            } else if !acr_values.is_empty() {
                acr_values.iter().any(|a| a == made_by)
            } else {
                app.flows.iter().any(|f| f == made_by)
            };
            let user_ok = [&hint_sub, &required_sub].into_iter().flatten().all(|sub| str_field(s, "userId") == Some(sub.as_str()));
            flow_ok && user_ok && !force_login
        });
        if let Some((sid, s)) = session {
            let auth_time = s.get("authTime").and_then(Value::as_u64).unwrap_or(0);
            // max_age=0 always re-authenticates (OIDC Core §3.1.2.1).
            let fresh = max_age.is_none_or(|m| m > 0 && now_secs().saturating_sub(auth_time) <= m);
            if fresh {
                let login = SignIn {
                    user_id: str_field(&s, "userId").unwrap_or_default(),
                    amr: s.get("amr").cloned().unwrap_or_else(|| json!([])),
                    acr: str_field(&s, "flow").unwrap_or_default(),
                    auth_time,
                    custom: s.get("claims").and_then(Value::as_object).cloned().unwrap_or_default(),
                    sid: &sid,
                };
                return match self.complete(&request, &login) {
                    Ok(completion) => completion.into_response(),
                    Err(e) if e.code == ErrorCode::AccessDenied || e.code == ErrorCode::UserNotFound => {
                        self.reply_error(&reply, "login_required", "the session's user can no longer sign in")
                    }
                    Err(_) => self.reply_error(&reply, "server_error", "the authorization could not be completed"),
                };
            }
        }
        if prompt.iter().any(|p| p == "none") {
            return self.reply_error(&reply, "login_required", "the user is not signed in (prompt=none)");
        }
        let request_id = match random_id("A") {
            Ok(id) => id,
            Err(_) => return self.reply_error(&reply, "server_error", "no randomness"),
        };
        // The request belongs to this browser: its answer is delivered only
        // where this cookie comes back.
        let browser = match self.browser_binding(req) {
            Ok(b) => b,
            Err(_) => return self.reply_error(&reply, "server_error", "no randomness"),
        };
        let mut request = request;
        request["browser"] = browser.digest.clone().into();
        if self.store.put_record("authreq", &request_id, &request, Some(now_secs() + AUTH_REQUEST_TTL)).is_err() {
            return self.reply_error(&reply, "server_error", "the authorization request could not be stored");
        }
        let hosting = match &app.flow_hosting_url {
            Some(u) => u.clone(),
            None => append_query(&self.url(&format!("/login/{}", self.project.project_id)), &[("flow", &flow)]),
        };
        HttpResponse::redirect(&append_query(&hosting, &[("request", &request_id)])).with_header("Set-Cookie", browser.cookie)
    }

    /// Everything after the redirect URI is known good; errors redirect.
    fn check_authorize(
        &self,
        app: &Application,
        params: &Params,
        response_type: &str,
        implicit: bool,
        response_mode: Option<&str>,
    ) -> std::result::Result<(), (&'static str, String)> {
        let bad = |m: &str| Err(("invalid_request", m.to_owned()));
        if params.get("request_uri").is_some() {
            return Err(("request_uri_not_supported", "request_uri is not supported".into()));
        }
        if response_type.is_empty() {
            return bad("response_type is missing");
        }
        if !["code", "id_token", "id_token token"].contains(&response_type) {
            return Err(("unsupported_response_type", format!("response_type {response_type:?} is not supported")));
        }
        if !app.response_types.iter().any(|r| r == response_type) {
            if implicit {
                return Err(("unsupported_response_type", format!("response_type {response_type:?} is not enabled for this application")));
            }
            return Err(("unauthorized_client", format!("this application may not use response_type {response_type:?}")));
        }
        if response_type == "code" && !app.allows_grant("authorization_code") {
            return Err(("unauthorized_client", "this application may not use the authorization_code grant".into()));
        }
        match response_mode {
            None | Some("form_post") => {}
            Some("query") if !implicit => {}
            Some("fragment") if implicit => {}
            Some(m) => return bad(&format!("response_mode {m:?} is not supported here (use query or form_post)")),
        }
        if implicit && params.get("nonce").is_none() {
            return bad("the implicit flow needs a nonce");
        }
        let prompt = split_scope(params.get("prompt"));
        if let Some(p) = prompt.iter().find(|p| !["none", "login", "consent", "select_account"].contains(&p.as_str())) {
            return bad(&format!("prompt {p:?} is not supported"));
        }
        if prompt.len() > 1 && prompt.iter().any(|p| p == "none") {
            return bad("prompt=none cannot be combined with other values");
        }
        if !implicit {
            match (params.get("code_challenge"), params.get("code_challenge_method")) {
                (None, Some(_)) => return bad("code_challenge_method without code_challenge"),
                (None, None) if app.public => return bad("code_challenge is required for public clients (PKCE, RFC 7636)"),
                (None, None) => {}
                (Some(c), method) => {
                    let method = method.unwrap_or("plain");
                    match method {
                        // RFC 7636 §4.2: BASE64URL of a SHA-256 is exactly 43 characters.
                        "S256" if !crate::pkce::is_s256_challenge(c) => {
                            return bad("an S256 code_challenge is exactly 43 characters of base64url (RFC 7636 §4.2)")
                        }
                        "S256" => {}
                        "plain" if app.allow_plain_pkce => {}
                        "plain" => return bad("code_challenge_method plain is not allowed; use S256"),
                        other => return bad(&format!("code_challenge_method {other:?} is not supported")),
                    }
                    if !(43..=128).contains(&c.len()) || !c.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b)) {
                        return bad("code_challenge must be 43-128 characters of [A-Za-z0-9-._~]");
                    }
                }
            }
        }
        Ok(())
    }

    /// The session behind the cookie, if it is live.
    pub(super) fn live_session(&self, req: &HttpRequest) -> Result<Option<(String, Value)>> {
        let Some(sid) = req.cookie(SESSION_COOKIE) else {
            return Ok(None);
        };
        Ok(self.store.record("session", sid)?.map(|s| (sid.to_owned(), s)))
    }

    /// Issues the authorization response for a signed-in user: a code (and
    /// its grant) or, for the implicit flow, the tokens themselves.
    pub(super) fn complete(&self, request: &Value, login: &SignIn<'_>) -> Result<Completion> {
        let user = self
            .store
            .user(login.user_id)?
            .ok_or_else(|| Error::new(ErrorCode::UserNotFound, "the signed-in user no longer exists"))?;
        if user.status == crate::user::UserStatus::Disabled {
            return Err(Error::new(ErrorCode::AccessDenied, "this user is disabled"));
        }
        let client_id = str_field(request, "clientId").unwrap_or_default();
        let redirect_uri = str_field(request, "redirectUri").unwrap_or_default();
        let state = stored_state(request);
        let mode = if request.get("formPost").and_then(Value::as_bool) == Some(true) { Mode::FormPost } else { Mode::Query };
        let now = now_secs();
        let response_type = str_field(request, "responseType").unwrap_or("code");
        // claims.id_token.sub.value: only that user may answer (§5.5.1).
        if claims::requested_sub(request.get("claimsRequest")).is_some_and(|sub| sub != login.user_id) {
            let mode = if response_type != "code" && mode == Mode::Query { Mode::Fragment } else { mode };
            let fields = [
                ("error", "access_denied"),
                ("error_description", "the signed-in user is not the one the claims parameter names (sub)"),
                ("iss", self.issuer.as_str()),
            ];
            return Ok(Completion::of(redirect_uri, mode, &fields, state.as_deref()));
        }
        if response_type == "code" {
            let code = random_id("")?;
            let grant_id = self.new_grant(request, login, now + self.project.refresh_ttl)?;
            let mut record = request.clone();
            record["userId"] = login.user_id.into();
            record["authTime"] = login.auth_time.into();
            record["amr"] = login.amr.clone();
            record["acr"] = login.acr.into();
            record["claims"] = Value::Object(login.custom.clone());
            record["sid"] = login.sid.into();
            record["grantId"] = grant_id.clone().into();
            record["exp"] = (now + self.project.code_ttl).into();
            // The record outlives the code by 10 minutes so that a late
            // replay is still recognised and revokes the grant.
            self.store.put_record("code", &token_digest(&code), &record, Some(now + self.project.code_ttl + 600))?;
            let fields = [("code", code.as_str()), ("iss", self.issuer.as_str())];
            return Ok(Completion::of(redirect_uri, mode, &fields, state.as_deref()));
        }
        // Implicit: id_token (and an access token for "id_token token",
        // whose grant keeps the claims request for userinfo).
        let grant_id = match response_type {
            "id_token token" => Some(self.new_grant(request, login, now + self.project.session_ttl)?),
            _ => None,
        };
        let scopes = split_scope(str_field(request, "scope"));
        let subject = Subject {
            client_id,
            user: Some(&user),
            subject: &user.user_id,
            scopes: &scopes,
            auth_time: Some(login.auth_time),
            amr: Some(&login.amr),
            acr: Some(login.acr),
            custom: &login.custom,
            claims_request: request.get("claimsRequest"),
            nonce: str_field(request, "nonce"),
            sid: Some(login.sid),
            grant_id: grant_id.as_deref(),
        };
        let mut fields: Vec<(String, String)> = Vec::new();
        let access = if response_type == "id_token token" {
            let (at, _) = self.mint_access_token(&subject)?;
            fields.push(("access_token".into(), at.clone()));
            fields.push(("token_type".into(), "Bearer".into()));
            fields.push(("expires_in".into(), self.project.session_ttl.to_string()));
            Some(at)
        } else {
            None
        };
        fields.push(("id_token".into(), self.mint_id_token(&subject, access.as_deref(), None)?));
        fields.push(("iss".into(), self.issuer.clone()));
        let refs: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        Ok(Completion::of(redirect_uri, Mode::FormPost, &refs, state.as_deref()))
    }

    /// A grant for what `login` authorized by `request` (revoked with the
    /// session, read back by userinfo for the `claims` request).
    fn new_grant(&self, request: &Value, login: &SignIn<'_>, expires_at: u64) -> Result<String> {
        let grant_id = random_id("G")?;
        let record = json!({
            "clientId": str_field(request, "clientId"), "userId": login.user_id, "sid": login.sid, "revoked": false,
            "expiresAt": expires_at, "claimsRequest": request.get("claimsRequest"),
        });
        self.store.put_record("grant", &grant_id, &record, Some(expires_at))?;
        self.add_grant_to_session(login.sid, &grant_id)?;
        Ok(grant_id)
    }

    fn add_grant_to_session(&self, sid: &str, grant_id: &str) -> Result<()> {
        if let Some(mut s) = self.store.record("session", sid)? {
            let expires = s.get("expiresAt").and_then(Value::as_u64);
            match s.get_mut("grants").and_then(Value::as_array_mut) {
                Some(g) => g.push(grant_id.into()),
                None => s["grants"] = json!([grant_id]),
            }
            self.store.put_record("session", sid, &s, expires)?;
        }
        Ok(())
    }

    /// A finished flow's authorization: starts the provider session, issues
    /// the response and keeps it for [`Provider::complete_page`], which
    /// hands it only to the browser that sent the authorization request.
    /// Returns the URL that delivers it.
    pub(super) fn finish_authorization(&self, request_id: &str, auth: &crate::flow::Authenticated) -> Result<String> {
        let request = self
            .store
            .record("authreq", request_id)?
            .ok_or_else(|| Error::invalid_request("the authorization request expired while the flow ran; sign in again"))?;
        self.store.delete_record("authreq", request_id)?;
        let now = now_secs();
        let sid = random_id("S")?;
        let expires = now + self.project.refresh_ttl;
        self.store.put_record(
            "session",
            &sid,
            &json!({"userId": auth.user_id, "authTime": now, "amr": auth.amr, "flow": auth.flow_id, "claims": auth.custom_claims, "grants": [], "expiresAt": expires}),
            Some(expires),
        )?;
        let login = SignIn { user_id: &auth.user_id, amr: auth.amr.clone(), acr: &auth.flow_id, auth_time: now, custom: auth.custom_claims.clone(), sid: &sid };
        let delivery = self.complete(&request, &login)?.to_json();
        let id = random_id("P")?;
        let record = json!({"delivery": delivery, "sid": sid, "browser": str_field(&request, "browser")});
        self.store.put_record("completion", &id, &record, Some(now + AUTH_REQUEST_TTL))?;
        Ok(append_query(&self.url("/oauth2/v1/authorize/complete"), &[("id", &id)]))
    }

    /// `GET /oauth2/v1/authorize/complete?id=`: delivers a finished
    /// authorization once, and only to the browser whose cookie bound the
    /// authorization request; sets the provider's session cookie.
    pub(super) fn complete_page(&self, req: &HttpRequest) -> HttpResponse {
        let params = Params::parse(req.query.as_bytes());
        let Some(id) = params.get("id") else {
            return pages::error_page(400, "Expired", "this sign-in response was already delivered or has expired");
        };
        let record = match self.store.record("completion", id) {
            Ok(Some(r)) => r,
            Ok(None) => return pages::error_page(400, "Expired", "this sign-in response was already delivered or has expired"),
            Err(_) => return pages::error_page(500, "Sign-in failed", "the server could not complete the request"),
        };
        let bound = str_field(&record, "browser");
        if bound.is_none() || self.browser_digest(req).as_deref() != bound {
            return pages::error_page(
                403,
                "Wrong browser",
                "this sign-in was started in another browser; go back to the application and sign in again from here",
            );
        }
        if self.store.delete_record("completion", id).is_err() {
            return pages::error_page(500, "Sign-in failed", "the server could not complete the request");
        }
        let out = match record.get("delivery").and_then(Completion::from_json) {
            Some(c) => c.into_response(),
            None => return pages::error_page(500, "Sign-in failed", "the server could not complete the request"),
        };
        match str_field(&record, "sid") {
            Some(sid) => out.with_header("Set-Cookie", self.session_cookie(sid, self.project.refresh_ttl)),
            None => out,
        }
    }
}

/// Who signed in, and how: what a code or implicit token says about it.
pub(super) struct SignIn<'a> {
    pub user_id: &'a str,
    pub amr: Value,
    /// The flow that signed the user in (`acr`).
    pub acr: &'a str,
    pub auth_time: u64,
    pub custom: Map<String, Value>,
    pub sid: &'a str,
}

/// An authorization response, ready to go: a redirect (query or
/// fragment) or an auto-posting form.
pub(super) enum Completion {
    Redirect(String),
    FormPost(String, Vec<(String, String)>),
}

impl Completion {
    /// `fields` and then `state` (as the exact bytes received) for
    /// `redirect_uri`, the way `mode` says.
    fn of(redirect_uri: &str, mode: Mode, fields: &[(&str, &str)], state: Option<&[u8]>) -> Completion {
        let mut pairs: Vec<(&str, &[u8])> = fields.iter().map(|(k, v)| (*k, v.as_bytes())).collect();
        if let Some(s) = state {
            pairs.push(("state", s));
        }
        match mode {
            Mode::FormPost => {
                let owned = pairs.iter().map(|(k, v)| ((*k).to_owned(), String::from_utf8_lossy(v).into_owned())).collect();
                Completion::FormPost(redirect_uri.to_owned(), owned)
            }
            Mode::Query => Completion::Redirect(append_query_bytes(redirect_uri, &pairs)),
            Mode::Fragment => {
                let encoded = append_query_bytes("", &pairs);
                let base = redirect_uri.split('#').next().unwrap_or_default();
                Completion::Redirect(format!("{base}#{}", encoded.trim_start_matches('?')))
            }
        }
    }

    fn into_response(self) -> HttpResponse {
        match self {
            Completion::Redirect(url) => HttpResponse::redirect(&url),
            Completion::FormPost(action, fields) => {
                let refs: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
                pages::form_post(&action, &refs)
            }
        }
    }

    /// As kept until [`Provider::complete_page`] delivers it.
    fn to_json(&self) -> Value {
        match self {
            Completion::Redirect(url) => json!({"url": url}),
            Completion::FormPost(action, fields) => {
                let pairs: Vec<Value> = fields.iter().map(|(k, v)| json!([k, v])).collect();
                json!({"action": action, "fields": pairs})
            }
        }
    }

    fn from_json(v: &Value) -> Option<Completion> {
        if let Some(url) = str_field(v, "url") {
            return Some(Completion::Redirect(url.to_owned()));
        }
        let fields = v
            .get("fields")?
            .as_array()?
            .iter()
            .map(|p| Some((p.get(0)?.as_str()?.to_owned(), p.get(1)?.as_str()?.to_owned())))
            .collect::<Option<Vec<_>>>()?;
        Some(Completion::FormPost(str_field(v, "action")?.to_owned(), fields))
    }
}
