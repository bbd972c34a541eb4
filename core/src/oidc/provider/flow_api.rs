//! The flow API (`POST /v1/flow/start`, `POST /v1/flow/next`) over the
//! flow engine, and what makes an execution belong to whoever started it.
//!
//! `start` answers an `executionSecret` and binds the execution to the
//! browser's `idflow_browser` cookie; every later use of the execution
//! (`next`, reading the screen or the result, resuming after an `oauth`
//! step) needs the secret (body field `executionSecret`) or that cookie.
//! The execution id alone gets 403 `access_denied`. `POST /v1/flow/link`
//! lets a mailed `crossDevice` link approve a sign-in from elsewhere.

use super::state::{FlowOutcome, SocialResume};
use super::authorize::str_field;
use crate::oidc::params::append_query;
use super::http::{HttpRequest, HttpResponse};
use super::{token_digest, Provider};
use crate::error::{Error, ErrorCode, Result};
use crate::flow::{FlowResponse, FlowStatus};
use crate::ids::{now_secs, random_id};
use serde_json::{json, Map, Value};

/// Flow input larger than this (bytes of JSON) is refused.
pub const MAX_FLOW_INPUT: usize = 16 * 1024;

impl Provider {
    /// Whether `req` proves it owns the execution described by `owner`:
    /// its secret in the body, or the browser cookie it was started with.
    pub(super) fn owns(&self, req: &HttpRequest, body: &Map<String, Value>, owner: &Value) -> bool {
        let secret = body.get("executionSecret").and_then(Value::as_str).filter(|s| !s.is_empty());
        if let (Some(s), Some(stored)) = (secret, str_field(owner, "secret")) {
            if constant_eq(&token_digest(s), stored) {
                return true;
            }
        }
        match (self.browser_digest(req), str_field(owner, "browser")) {
            (Some(b), Some(stored)) => constant_eq(&b, stored),
            _ => false,
        }
    }

    /// Checks that `req` owns live execution `id`; else the error the flow
    /// API answers.
    fn check_owner(&self, req: &HttpRequest, body: &Map<String, Value>, id: &str) -> Result<()> {
        let owner = self
            .engine
            .owner(id)?
            .ok_or_else(|| Error::invalid_request("no such execution (it finished, expired or never existed)"))?;
        if !self.owns(req, body, &owner) {
            return Err(not_yours());
        }
        Ok(())
    }

    pub(super) async fn flow_start(&self, req: &HttpRequest) -> HttpResponse {
        let body = match req.json_object() {
            Ok(b) => b,
            Err(e) => return flow_error(&e),
        };
        if let Some(execution) = body.get("executionId").and_then(Value::as_str).filter(|e| !e.is_empty()) {
            return match self.flow_return(req, &body, execution).await {
                Ok(r) => r,
                Err(e) => flow_error(&e),
            };
        }
        match self.flow_start_new(req, &body).await {
            Ok(r) => r,
            Err(e) => flow_error(&e),
        }
    }

    /// The page coming back to an execution (a reload, or the return from
    /// an `oauth` step): the outcome once, the waiting screen, or, with
    /// `resume`, the upstream's answer kept for its owner.
    async fn flow_return(&self, req: &HttpRequest, body: &Map<String, Value>, execution: &str) -> Result<HttpResponse> {
        if let Some(done) = self.records().get::<FlowOutcome>(execution)? {
            if !self.owns(req, body, &done.owner) {
                return Err(not_yours());
            }
            // Shown once: of requests racing for it, one gets it.
            if self.records().take::<FlowOutcome>(execution)?.is_none() {
                return Err(Error::invalid_request("this outcome was already shown"));
            }
            return Ok(HttpResponse::json_no_store(200, &done.response));
        }
        self.check_owner(req, body, execution)?;
        if let Some(resume) = body.get("resume").and_then(Value::as_str).filter(|r| !r.is_empty()) {
            let pending = self
                .records()
                .get::<SocialResume>(resume)?
                .filter(|p| p.execution_id == execution)
                .ok_or_else(|| Error::invalid_request("this sign-in has expired or was already completed; start again"))?;
            if self.records().take::<SocialResume>(resume)?.is_none() {
                return Err(Error::invalid_request("this sign-in has expired or was already completed; start again"));
            }
            let result = self.oauth_resume_execution(&pending.record, &pending.input).await;
            return Ok(self.flow_reply(result, None));
        }
        let r = self.engine.current(execution)?;
        Ok(HttpResponse::json_no_store(200, &r.to_json()))
    }

    async fn flow_start_new(&self, req: &HttpRequest, body: &Map<String, Value>) -> Result<HttpResponse> {
        self.count_ip(req, "flow_start", self.limits.flow_starts_per_ip, "flow starts from this address")?;
        let request_id = match body.get("request") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
            Some(_) => return Err(Error::invalid_request("request must be an authorization request id")),
        };
        let mut input = flow_input(body)?;
        let mut flow_id = match body.get("flowId") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
            Some(_) => return Err(Error::invalid_request("flowId must be a string")),
        };
        let mut request_ctx = None;
        let mut page = self.url(&format!("/login/{}", self.project.project_id));
        if let Some(id) = &request_id {
            let authreq = self
                .records()
                .get::<super::state::AuthRequest>(id)?
                .ok_or_else(|| Error::invalid_request("the authorization request has expired or does not exist; sign in again from the application"))?;
            if let Some(hint) = &authreq.login_hint {
                input.entry("email").or_insert_with(|| hint.clone().into());
            }
            let client_id = authreq.client_id.as_str();
            let app = self.apps.get(client_id).ok_or_else(|| Error::internal("the request's application is gone"))?;
            match &flow_id {
                // An application runs only its own flows.
                Some(f) if !app.flows.contains(f) => {
                    return Err(Error::invalid_request("flowId names a flow this application may not run (its flows)"))
                }
                Some(_) => {}
                None => flow_id = Some(authreq.flow.clone()).filter(|f| !f.is_empty()),
            }
            if let Some(u) = &app.flow_hosting_url {
                page = u.clone();
            }
            request_ctx = Some(json!({
                "clientId": client_id,
                "ssoAppId": client_id,
                "scope": authreq.scope,
                "requestId": id,
            }));
        }
        let flow_id = flow_id.ok_or_else(|| Error::invalid_request("flowId is missing"))?;
        let secret = random_id("X")?;
        let browser = self.browser_binding(req)?;
        let owner = json!({"secret": token_digest(&secret), "browser": browser.digest, "page": page});
        let result = self.engine.start_owned(&flow_id, input, request_ctx, owner).await;
        Ok(self.flow_reply(result, Some(&secret)).with_header("Set-Cookie", browser.cookie))
    }

    pub(super) async fn flow_next(&self, req: &HttpRequest) -> HttpResponse {
        let body = match req.json_object() {
            Ok(b) => b,
            Err(e) => return flow_error(&e),
        };
        let field = |k: &str| body.get(k).and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_owned);
        let (Some(execution), Some(step), Some(interaction)) = (field("executionId"), field("stepId"), field("interactionId")) else {
            return flow_error(&Error::invalid_request("executionId, stepId and interactionId are required strings"));
        };
        if let Err(e) = self.check_owner(req, &body, &execution) {
            return flow_error(&e);
        }
        if let Err(e) = self.count("answers", &execution, self.limits.answers_per_execution, "answers to this execution") {
            return flow_error(&e);
        }
        let input = match flow_input(&body) {
            Ok(i) => i,
            Err(e) => return flow_error(&e),
        };
        // Every answer from an address counts as a possible failed
        // sign-in before any step runs, and is marked passed unless it was
        // one: an address with too many failures (or too many answers in
        // flight) waits out the window.
        let attempt = match self.client_ip(req) {
            Some(ip) => match self.attempt("password_failures", &ip, self.limits.password_failures_per_ip, "failed sign-ins from this address") {
                Ok(a) => a,
                Err(e) => return flow_error(&e),
            },
            None => None,
        };
        let result = self.engine.next(&execution, &step, &interaction, input).await;
        self.metrics.answer(match &result {
            Ok(r) => match (&r.error, r.status) {
                (Some(e), _) => e.code.as_str(),
                (None, s) => s.as_str(),
            },
            Err(e) => e.code.as_str(),
        });
        let failed = result
            .as_ref()
            .is_ok_and(|r| r.error.as_ref().is_some_and(|e| matches!(e.code, ErrorCode::InvalidCredentials | ErrorCode::UserLocked | ErrorCode::InvalidCode)));
        if !failed {
            if let Err(e) = self.passed(attempt) {
                return flow_error(&e);
            }
        }
        self.flow_reply(result, None)
    }

    /// `POST /v1/flow/link` (`{executionId, token}`): a mailed
    /// `crossDevice` link, opened in a browser that does not own the
    /// execution, approves its sign-in ([`crate::flow::FlowEngine::approve_link`]).
    pub(super) fn flow_link(&self, req: &HttpRequest) -> HttpResponse {
        let approved = (|| {
            let body = req.json_object()?;
            let field = |k: &str| body.get(k).and_then(Value::as_str).filter(|s| !s.is_empty());
            let (Some(execution), Some(token)) = (field("executionId"), field("token")) else {
                return Err(Error::invalid_request("executionId and token are required strings"));
            };
            self.count_ip(req, "flow_link", self.limits.flow_starts_per_ip, "links opened from this address")?;
            self.engine.approve_link(execution, token)
        })();
        match approved {
            Ok(()) => HttpResponse::json_no_store(200, &json!({"status": "approved"})),
            Err(e) => flow_error(&e),
        }
    }

    /// The flow API's answer; a completed flow for an authorization request
    /// becomes a session and an authorization response (`redirect`). A
    /// new execution's answer carries its secret.
    fn flow_reply(&self, result: Result<FlowResponse>, secret: Option<&str>) -> HttpResponse {
        let response = match self.complete_flow(result) {
            Ok(x) => x,
            Err(e) => return flow_error(&e),
        };
        let mut json = response.to_json();
        if let (Some(s), FlowStatus::Waiting) = (secret, response.status) {
            json["executionSecret"] = s.into();
        }
        HttpResponse::json_no_store(200, &json)
    }

    /// A flow's answer, with a completed authorization request turned into
    /// a session and the URL that delivers its response (`redirect`).
    pub(super) fn complete_flow(&self, result: Result<FlowResponse>) -> Result<FlowResponse> {
        let mut response = result?;
        if let (FlowStatus::Completed, Some(auth)) = (response.status, response.authenticated.clone()) {
            if let Some(request_id) = auth.request.as_ref().and_then(|r| str_field(r, "requestId")) {
                match self.finish_authorization(request_id, &auth) {
                    Ok(url) => response.redirect = Some(url),
                    Err(e) => {
                        response.status = FlowStatus::Failed;
                        response.error = Some(e);
                    }
                }
            }
        }
        Ok(response)
    }

    /// Keeps a finished execution's answer for its owner's page (read once
    /// through `start` with the execution id) and returns that page's URL.
    pub(super) fn keep_flow_result(&self, execution: &str, response: &FlowResponse, owner: &Value) -> Result<String> {
        if response.status != FlowStatus::Waiting {
            self.records().put(execution, &FlowOutcome { response: response.to_json(), owner: owner.clone() }, Some(now_secs() + 60))?;
        }
        Ok(self.owner_page(owner, execution, None))
    }

    /// The page an execution's owner drives it from, back at `execution`.
    pub(super) fn owner_page(&self, owner: &Value, execution: &str, resume: Option<&str>) -> String {
        let default = self.url(&format!("/login/{}", self.project.project_id));
        let page = str_field(owner, "page").unwrap_or(&default);
        let mut pairs = vec![("execution", execution)];
        if let Some(r) = resume {
            pairs.push(("resume", r));
        }
        append_query(page, &pairs)
    }
}

fn not_yours() -> Error {
    Error::new(
        ErrorCode::AccessDenied,
        "this execution belongs to whoever started it: send its executionSecret (or use the browser that started it)",
    )
}

fn constant_eq(a: &str, b: &str) -> bool {
    crate::pkce::constant_time_eq(a.as_bytes(), b.as_bytes())
}

/// The body's `input`: an object of at most [`MAX_FLOW_INPUT`] bytes.
fn flow_input(body: &Map<String, Value>) -> Result<Map<String, Value>> {
    match body.get("input") {
        None | Some(Value::Null) => Ok(Map::new()),
        Some(Value::Object(m)) => {
            if serde_json::to_vec(m).map_or(usize::MAX, |v| v.len()) > MAX_FLOW_INPUT {
                return Err(Error::invalid_request(format!("input is larger than {MAX_FLOW_INPUT} bytes")));
            }
            Ok(m.clone())
        }
        Some(_) => Err(Error::invalid_request("input must be an object")),
    }
}


fn flow_error(e: &Error) -> HttpResponse {
    let status = match e.code {
        ErrorCode::FlowNotFound => 404,
        ErrorCode::AccessDenied => 403,
        ErrorCode::RateLimited => 429,
        ErrorCode::Storage | ErrorCode::Internal => 500,
        _ => 400,
    };
    let message = if status == 500 { "the server could not complete the request" } else { e.message.as_str() };
    HttpResponse::json_no_store(status, &json!({"status": "failed", "error": {"code": e.code.as_str(), "message": message}}))
}
