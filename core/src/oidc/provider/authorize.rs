//! Authorize (OIDC Core §3.1.2, RFC 6749 §4.1, RFC 7636) and the flow API
//! that completes a pending authorization request.

use super::http::{append_query, HttpRequest, HttpResponse, Params};
use super::token::Subject;
use super::{pages, split_scope, token_digest, Application, Provider, AUTH_REQUEST_TTL, SESSION_COOKIE};
use crate::error::{Error, ErrorCode, Result};
use crate::flow::{FlowResponse, FlowStatus};
use crate::ids::{now_secs, random_id};
use serde_json::{json, Map, Value};

/// Where an authorization response goes: the checked redirect URI, how,
/// and the state to echo.
struct Reply<'a> {
    redirect_uri: &'a str,
    form_post: bool,
    state: Option<&'a str>,
}

fn str_field<'v>(v: &'v Value, k: &str) -> Option<&'v str> {
    v.get(k).and_then(Value::as_str)
}

impl Provider {
    fn reply_error(&self, reply: &Reply<'_>, error: &str, description: &str) -> HttpResponse {
        let mut fields = vec![("error", error), ("error_description", description)];
        if let Some(s) = reply.state {
            fields.push(("state", s));
        }
        fields.push(("iss", &self.issuer));
        if reply.form_post {
            pages::form_post(reply.redirect_uri, &fields)
        } else {
            HttpResponse::redirect(&append_query(reply.redirect_uri, &fields))
        }
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
        // are shown here and never redirected (RFC 6749 §4.1.2.1).
        let Some(client_id) = params.get("client_id") else {
            return pages::error_page(400, "Invalid request", "client_id is missing");
        };
        let Some(app) = self.apps.get(client_id) else {
            return pages::error_page(400, "Unknown application", "no application has this client_id");
        };
        let redirect_uri = match params.get("redirect_uri") {
            Some(uri) if app.redirect_uri_allowed(uri) => uri.to_owned(),
            Some(_) => return pages::error_page(400, "Invalid redirect URI", "redirect_uri is not registered for this application"),
            None => return pages::error_page(400, "Invalid request", "redirect_uri is missing"),
        };
        let response_type = params.get("response_type").unwrap_or_default().to_owned();
        let implicit = response_type == "id_token" || response_type == "id_token token";
        let response_mode = params.get("response_mode");
        let reply = Reply {
            redirect_uri: &redirect_uri,
            form_post: response_mode == Some("form_post") || (implicit && response_mode.is_none()),
            state: params.get("state"),
        };
        if let Some(name) = params.repeated() {
            return self.reply_error(&reply, "invalid_request", &format!("parameter {name} is repeated"));
        }
        match self.check_authorize(app, &params, &response_type, implicit, response_mode) {
            Ok(()) => {}
            Err((error, description)) => return self.reply_error(&reply, error, &description),
        }
        let scope = split_scope(params.get("scope"));
        let prompt = split_scope(params.get("prompt"));
        let max_age = match params.get("max_age").map(str::parse::<u64>) {
            None => None,
            Some(Ok(n)) => Some(n),
            Some(Err(_)) => return self.reply_error(&reply, "invalid_request", "max_age must be a number of seconds"),
        };
        let flow = params.get("flow").map(str::to_owned).or_else(|| app.flow.clone()).or_else(|| self.project.flows.first().map(|f| f.id.clone()));
        if let Some(f) = &flow {
            if !self.project.flows.iter().any(|x| &x.id == f) {
                return self.reply_error(&reply, "invalid_request", "the flow parameter names no flow of this project");
            }
        }
        let request = json!({
            "clientId": app.client_id,
            "redirectUri": redirect_uri,
            "responseType": response_type,
            "formPost": reply.form_post,
            "scope": scope.join(" "),
            "state": params.get("state"),
            "nonce": params.get("nonce"),
            "codeChallenge": params.get("code_challenge"),
            "codeChallengeMethod": params.get("code_challenge").map(|_| params.get("code_challenge_method").unwrap_or("plain")),
            "maxAge": max_age,
            "loginHint": params.get("login_hint"),
            "flow": flow,
        });
        // An existing provider session answers at once unless the client
        // forces a login (prompt=login) or the session is older than max_age.
        let session = match self.live_session(req) {
            Ok(s) => s,
            Err(_) => return self.reply_error(&reply, "server_error", "the session store failed"),
        };
        let force_login = prompt.iter().any(|p| p == "login");
        if let Some((sid, s)) = session.filter(|_| !force_login) {
            let auth_time = s.get("authTime").and_then(Value::as_u64).unwrap_or(0);
            // max_age=0 always re-authenticates (OIDC Core §3.1.2.1).
            let fresh = max_age.is_none_or(|m| m > 0 && now_secs().saturating_sub(auth_time) <= m);
            if fresh {
                let user_id = str_field(&s, "userId").unwrap_or_default().to_owned();
                let amr = s.get("amr").cloned().unwrap_or_else(|| json!(["user"]));
                let custom = s.get("claims").and_then(Value::as_object).cloned().unwrap_or_default();
                return match self.complete(&request, &user_id, &amr, auth_time, &custom, &sid) {
                    Ok(Completion::Redirect(url)) => HttpResponse::redirect(&url),
                    Ok(Completion::FormPost(action, fields)) => {
                        let f: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
                        pages::form_post(&action, &f)
                    }
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
        let Some(flow) = flow else {
            return self.reply_error(&reply, "server_error", "the project has no flow to sign users in");
        };
        let request_id = match random_id("A") {
            Ok(id) => id,
            Err(_) => return self.reply_error(&reply, "server_error", "no randomness"),
        };
        if self.store.put_record("authreq", &request_id, &request, Some(now_secs() + AUTH_REQUEST_TTL)).is_err() {
            return self.reply_error(&reply, "server_error", "the authorization request could not be stored");
        }
        let hosting = match &app.flow_hosting_url {
            Some(u) => u.clone(),
            None => append_query(&self.url(&format!("/login/{}", self.project.project_id)), &[("flow", &flow)]),
        };
        HttpResponse::redirect(&append_query(&hosting, &[("request", &request_id)]))
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
        if params.get("request").is_some() {
            return Err(("request_not_supported", "request objects are not supported".into()));
        }
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
            return Err(("unauthorized_client", format!("this application may not use response_type {response_type:?}")));
        }
        if response_type == "code" && !app.allows_grant("authorization_code") {
            return Err(("unauthorized_client", "this application may not use the authorization_code grant".into()));
        }
        match response_mode {
            None | Some("form_post") => {}
            Some("query") if !implicit => {}
            Some(m) => return bad(&format!("response_mode {m:?} is not supported here (use query or form_post)")),
        }
        let scope = split_scope(params.get("scope"));
        if let Some(s) = scope.iter().find(|s| !app.scopes.contains(s)) {
            return Err(("invalid_scope", format!("scope {s:?} is not allowed for this application")));
        }
        if implicit {
            if !scope.iter().any(|s| s == "openid") {
                return Err(("invalid_scope", "the implicit flow needs the openid scope".into()));
            }
            if params.get("nonce").is_none() {
                return bad("the implicit flow needs a nonce");
            }
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
    fn complete(
        &self,
        request: &Value,
        user_id: &str,
        amr: &Value,
        auth_time: u64,
        custom: &Map<String, Value>,
        sid: &str,
    ) -> Result<Completion> {
        let user = self
            .store
            .user(user_id)?
            .ok_or_else(|| Error::new(ErrorCode::UserNotFound, "the signed-in user no longer exists"))?;
        if user.status == crate::users::UserStatus::Disabled {
            return Err(Error::new(ErrorCode::AccessDenied, "this user is disabled"));
        }
        let client_id = str_field(request, "clientId").unwrap_or_default();
        let redirect_uri = str_field(request, "redirectUri").unwrap_or_default();
        let state = str_field(request, "state");
        let now = now_secs();
        let response_type = str_field(request, "responseType").unwrap_or("code");
        if response_type == "code" {
            let code = random_id("")?;
            let grant_id = random_id("G")?;
            let grant_expires = now + self.project.refresh_ttl;
            self.store.put_record(
                "grant",
                &grant_id,
                &json!({"clientId": client_id, "userId": user_id, "sid": sid, "revoked": false, "expiresAt": grant_expires}),
                Some(grant_expires),
            )?;
            let mut record = request.clone();
            record["userId"] = user_id.into();
            record["authTime"] = auth_time.into();
            record["amr"] = amr.clone();
            record["claims"] = Value::Object(custom.clone());
            record["sid"] = sid.into();
            record["grantId"] = grant_id.clone().into();
            record["exp"] = (now + self.project.code_ttl).into();
            // The record outlives the code by 10 minutes so that a late
            // replay is still recognised and revokes the grant.
            self.store.put_record("code", &token_digest(&code), &record, Some(now + self.project.code_ttl + 600))?;
            self.add_grant_to_session(sid, &grant_id)?;
            let mut fields = vec![("code", code.as_str())];
            if let Some(s) = state {
                fields.push(("state", s));
            }
            fields.push(("iss", &self.issuer));
            if request.get("formPost").and_then(Value::as_bool) == Some(true) {
                let owned = fields.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
                return Ok(Completion::FormPost(redirect_uri.to_owned(), owned));
            }
            return Ok(Completion::Redirect(append_query(redirect_uri, &fields)));
        }
        // Implicit: id_token (and an access token for "id_token token").
        let scopes = split_scope(str_field(request, "scope"));
        let subject = Subject {
            client_id,
            user: Some(&user),
            subject: &user.user_id,
            scopes: &scopes,
            auth_time: Some(auth_time),
            amr: Some(amr),
            custom,
            nonce: str_field(request, "nonce"),
            sid: Some(sid),
            grant_id: None,
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
        if let Some(s) = state {
            fields.push(("state".into(), s.to_owned()));
        }
        fields.push(("iss".into(), self.issuer.clone()));
        Ok(Completion::FormPost(redirect_uri.to_owned(), fields))
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

    /// `GET /oauth2/v1/authorize/complete?id=`: the one-time auto-submitting
    /// form that delivers a `form_post` response after a flow finished.
    pub(super) fn form_post_page(&self, req: &HttpRequest) -> HttpResponse {
        let params = Params::parse(req.query.as_bytes());
        let record = params.get("id").and_then(|id| {
            let r = self.store.record("form_post", id).ok().flatten();
            let _ = self.store.delete_record("form_post", id);
            r
        });
        let Some(record) = record else {
            return pages::error_page(400, "Expired", "this sign-in response was already delivered or has expired");
        };
        let action = str_field(&record, "action").unwrap_or_default();
        let fields: Vec<(&str, &str)> = record
            .get("fields")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|p| Some((p.get(0)?.as_str()?, p.get(1)?.as_str()?)))
            .collect();
        pages::form_post(action, &fields)
    }

    pub(super) async fn flow_start(&self, req: &HttpRequest) -> HttpResponse {
        let body = match json_body(req) {
            Ok(b) => b,
            Err(e) => return flow_error(&e),
        };
        // The hosted page coming back (e.g. after an oauth step): the
        // outcome once, or the screen the execution waits on.
        if let Some(execution) = body.get("executionId").and_then(Value::as_str).filter(|e| !e.is_empty()) {
            match self.store.record("flow_result", execution) {
                Ok(Some(done)) => {
                    let _ = self.store.delete_record("flow_result", execution);
                    return HttpResponse::json_no_store(200, &done);
                }
                Ok(None) => {}
                Err(e) => return flow_error(&e),
            }
            return match self.engine.current(execution) {
                Ok(r) => HttpResponse::json_no_store(200, &r.to_json()),
                Err(e) => flow_error(&e),
            };
        }
        let request_id = match body.get("request") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
            Some(_) => return flow_error(&Error::invalid_request("request must be an authorization request id")),
        };
        let mut input = match body.get("input") {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(m)) => m.clone(),
            Some(_) => return flow_error(&Error::invalid_request("input must be an object")),
        };
        let mut flow_id = match body.get("flowId") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
            Some(_) => return flow_error(&Error::invalid_request("flowId must be a string")),
        };
        let mut request_ctx = None;
        if let Some(id) = &request_id {
            let authreq = match self.store.record("authreq", id) {
                Ok(Some(r)) => r,
                Ok(None) => return flow_error(&Error::invalid_request("the authorization request has expired or does not exist; sign in again from the application")),
                Err(e) => return flow_error(&e),
            };
            if let Some(hint) = str_field(&authreq, "loginHint") {
                input.entry("email").or_insert_with(|| hint.into());
            }
            if flow_id.is_none() {
                flow_id = str_field(&authreq, "flow").map(str::to_owned);
            }
            let client_id = str_field(&authreq, "clientId").unwrap_or_default();
            request_ctx = Some(json!({
                "clientId": client_id,
                "ssoAppId": client_id,
                "scope": str_field(&authreq, "scope").unwrap_or_default(),
                "requestId": id,
            }));
        }
        let Some(flow_id) = flow_id else {
            return flow_error(&Error::invalid_request("flowId is missing"));
        };
        let result = self.engine.start(&flow_id, input, request_ctx).await;
        self.flow_reply(result)
    }

    pub(super) async fn flow_next(&self, req: &HttpRequest) -> HttpResponse {
        let body = match json_body(req) {
            Ok(b) => b,
            Err(e) => return flow_error(&e),
        };
        let field = |k: &str| body.get(k).and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_owned);
        let (Some(execution), Some(step), Some(interaction)) = (field("executionId"), field("stepId"), field("interactionId")) else {
            return flow_error(&Error::invalid_request("executionId, stepId and interactionId are required strings"));
        };
        let input = match body.get("input") {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(m)) => m.clone(),
            Some(_) => return flow_error(&Error::invalid_request("input must be an object")),
        };
        let result = self.engine.next(&execution, &step, &interaction, input).await;
        self.flow_reply(result)
    }

    /// The flow API's answer; a completed flow for an authorization request
    /// becomes a session (cookie) and an authorization response.
    fn flow_reply(&self, result: Result<FlowResponse>) -> HttpResponse {
        let (response, cookie) = match self.complete_flow(result) {
            Ok(x) => x,
            Err(e) => return flow_error(&e),
        };
        let mut out = HttpResponse::json_no_store(200, &response.to_json());
        if let Some(c) = cookie {
            out = out.with_header("Set-Cookie", c);
        }
        out
    }

    /// A flow's answer, with a completed authorization request turned into
    /// a session (its cookie) and an authorization response (`redirect`).
    pub(super) fn complete_flow(&self, result: Result<FlowResponse>) -> Result<(FlowResponse, Option<String>)> {
        let mut response = result?;
        let mut cookie = None;
        if let (FlowStatus::Completed, Some(auth)) = (response.status, response.authenticated.clone()) {
            if let Some(request_id) = auth.request.as_ref().and_then(|r| str_field(r, "requestId")) {
                match self.finish_authorization(request_id, &auth) {
                    Ok((url, sid)) => {
                        response.redirect = Some(url);
                        cookie = Some(self.session_cookie(&sid, self.project.refresh_ttl));
                    }
                    Err(e) => {
                        response.status = FlowStatus::Failed;
                        response.error = Some(e);
                    }
                }
            }
        }
        Ok((response, cookie))
    }

    fn finish_authorization(&self, request_id: &str, auth: &crate::flow::Authenticated) -> Result<(String, String)> {
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
            &json!({"userId": auth.user_id, "authTime": now, "amr": auth.amr, "claims": auth.custom_claims, "grants": [], "expiresAt": expires}),
            Some(expires),
        )?;
        let url = match self.complete(&request, &auth.user_id, &auth.amr, now, &auth.custom_claims, &sid)? {
            Completion::Redirect(url) => url,
            Completion::FormPost(action, fields) => {
                let id = random_id("P")?;
                let pairs: Vec<Value> = fields.into_iter().map(|(k, v)| json!([k, v])).collect();
                self.store.put_record("form_post", &id, &json!({"action": action, "fields": pairs}), Some(now + AUTH_REQUEST_TTL))?;
                append_query(&self.url("/oauth2/v1/authorize/complete"), &[("id", &id)])
            }
        };
        Ok((url, sid))
    }
}

enum Completion {
    Redirect(String),
    FormPost(String, Vec<(String, String)>),
}

fn json_body(req: &HttpRequest) -> Result<Map<String, Value>> {
    if !req.content_type_is("application/json") {
        return Err(Error::invalid_request("the flow API takes a JSON body (Content-Type: application/json)"));
    }
    crate::json::parse_object(&req.body).map_err(|e| Error::invalid_request(format!("the body is not a JSON object: {e}")))
}

fn flow_error(e: &Error) -> HttpResponse {
    let status = match e.code {
        ErrorCode::FlowNotFound => 404,
        ErrorCode::Storage | ErrorCode::Internal => 500,
        _ => 400,
    };
    let message = if status == 500 { "the server could not complete the request" } else { e.message.as_str() };
    HttpResponse::json_no_store(status, &json!({"status": "failed", "error": {"code": e.code.as_str(), "message": message}}))
}
