//! The flow engine: runs flows step by step, keeping each execution's state
//! in the [`Store`] between requests.
//!
//! `start` runs from the flow's start step until it needs the user (a
//! screen), ends, or fails; `next` answers the waiting screen and goes on.
//! Answers are claimed with a compare-and-swap on the execution's version
//! before anything runs, so a replayed or concurrent `next` for the same
//! step is refused instead of running the step twice. Each request runs at
//! most `max_steps_per_request` steps, so a cycle without a screen fails
//! with `invalid_flow` instead of spinning. Password inputs live only for
//! the request that submits them and are never persisted.

use super::api::{screen_view, Authenticated, FlowResponse, FlowStatus};

use super::context::Context;
use super::model::{Flow, StepKind};
use super::steps::{InputType, Next, OAuthStep, ScreenStep, StepRun};
use crate::connectors::{ConnectorCall, HttpConnector};
use crate::error::{Error, ErrorCode, Result};
use crate::jose::Key;
use crate::store::{ExecutionRecord, Store};
use crate::user::{looks_like_email, User};
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::sync::Arc;

/// Engine settings; every field has a default.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// `iss` of session and refresh JWTs.
    pub issuer: String,
    /// `aud` of session and refresh JWTs: the project id (RFC 8725 §3.11, so
    /// a JWT meant for another project is refused). Defaults to the last
    /// path segment of the issuer, which is the project id in
    /// `{baseUrl}/{projectId}`.
    pub audience: String,
    /// The project's signing key (private).
    pub signing_key: Key,
    /// Session JWT lifetime in seconds. Defaults to 600.
    pub session_ttl: u64,
    /// Refresh JWT lifetime in seconds. Defaults to 30 days.
    pub refresh_ttl: u64,
    /// How long an execution may wait for its next answer. Defaults to 30 min.
    pub execution_ttl: u64,
    /// Steps run per request before the flow is declared a cycle. Defaults to 100.
    pub max_steps_per_request: usize,
    /// Role name → the permissions it grants (the project's `roles`).
    pub roles: HashMap<String, Vec<String>>,
    /// Password policy, hashing cost and lockout (the project's `passwords`).
    pub passwords: crate::credentials::password::PasswordSettings,
    /// How mail is sent (the project's `email`); `emailCode` steps need it.
    pub email: Option<crate::messaging::EmailSettings>,
    /// The project's `encryption` section: the data key that seals
    /// authenticator secrets (see [`crate::vault::Vault::open`]).
    pub encryption: Option<Value>,
    /// How authenticator apps name the project; empty means the audience.
    pub totp_issuer: String,
}

impl EngineConfig {
    pub fn new(issuer: impl Into<String>, signing_key: Key) -> EngineConfig {
        let issuer = issuer.into();
        let audience = issuer.trim_end_matches('/').rsplit('/').next().unwrap_or_default().to_owned();
        EngineConfig {
            issuer,
            audience,
            signing_key,
            session_ttl: 600,
            refresh_ttl: 30 * 24 * 3600,
            execution_ttl: 30 * 60,
            max_steps_per_request: 100,
            roles: HashMap::new(),
            passwords: Default::default(),
            email: None,
            encryption: None,
            totp_issuer: String::new(),
        }
    }
}

/// Engine state kept in the context under a root flows cannot address.
pub(crate) const INTERNAL: &str = "_idflow";

use crate::ids::{now_secs as now, random_id};

enum Outcome {
    /// Waiting on this step; with the error a step of this request failed
    /// with and its `onError` handled, which the answer shows.
    Waiting(String, Option<Error>),
    Completed,
    Failed(Error),
}

/// Starts social login for `oauth` steps: returns the upstream
/// authorization URL for `provider` and remembers which execution and step
/// the callback resumes (the OIDC provider implements it).
pub trait OAuthStarter: Send + Sync {
    fn start<'a>(
        &'a self,
        provider: &'a str,
        prompt: Option<&'a str>,
        execution_id: &'a str,
        step_id: &'a str,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<String>> + Send + 'a>>;
}

/// Runs flows against a store.
pub struct FlowEngine {
    pub(super) config: EngineConfig,
    flows: HashMap<String, Arc<Flow>>,
    pub(super) connectors: HashMap<String, HttpConnector>,
    pub(super) store: Arc<dyn Store>,
    pub(super) oauth: Option<Arc<dyn OAuthStarter>>,
    /// Opened on first use (authenticator secrets), so engines that never
    /// seal anything make no data key.
    vault: std::sync::OnceLock<crate::vault::Vault>,
    /// The passkey relying party (the issuer's host), made on first use.
    relying_party: std::sync::OnceLock<webauthn_rs::Webauthn>,
}

impl FlowEngine {
    pub fn new(config: EngineConfig, store: Arc<dyn Store>) -> FlowEngine {
        FlowEngine { config, flows: HashMap::new(), connectors: HashMap::new(), store, oauth: None, vault: std::sync::OnceLock::new(), relying_party: std::sync::OnceLock::new() }
    }
    /// The data key that seals secrets at rest, opened on first use.
    pub(crate) fn vault(&self) -> Result<&crate::vault::Vault> {
        if let Some(v) = self.vault.get() {
            return Ok(v);
        }
        let opened = crate::vault::Vault::open(self.config.encryption.as_ref(), self.store.as_ref())?;
        Ok(self.vault.get_or_init(|| opened))
    }
    /// The passkey relying party: the issuer's host and origin.
    pub(crate) fn relying_party(&self) -> Result<&webauthn_rs::Webauthn> {
        if let Some(rp) = self.relying_party.get() {
            return Ok(rp);
        }
        let made = crate::credentials::passkey::relying_party(&self.config.issuer, &self.config.audience)?;
        Ok(self.relying_party.get_or_init(|| made))
    }
    /// The view of screen `step_id` for `execution_id`, with what its
    /// steps put on it (an authenticator enrollment, recovery codes).
    fn screen(&self, execution_id: &str, step_id: &str, screen: &ScreenStep, ctx: &Context) -> Result<Value> {
        let mut view = screen_view(step_id, screen);
        super::steps::decorate_screen(self, execution_id, step_id, ctx, &mut view)?;
        Ok(view)
    }
    /// Lets `oauth` steps start social login through `starter`.
    pub fn set_oauth(&mut self, starter: Arc<dyn OAuthStarter>) {
        self.oauth = Some(starter);
    }
    pub fn add_connector(&mut self, connector: HttpConnector) {
        self.connectors.insert(connector.config().id.clone(), connector);
    }
    /// Adds a parsed flow; every connector it names must already be added.
    pub fn add_flow(&mut self, flow: Flow) -> Result<()> {
        for step in &flow.steps {
            if let StepKind::Connector(c) = &step.kind {
                if !self.connectors.contains_key(&c.connector) {
                    return Err(Error::new(
                        ErrorCode::InvalidFlow,
                        format!("flow {:?}, step {:?}: connector {:?} is not configured", flow.id, step.id, c.connector),
                    ));
                }
            }
        }
        self.flows.insert(flow.id.clone(), Arc::new(flow));
        Ok(())
    }
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }
    /// The project's password policy, hashing cost and lockout.
    pub fn passwords(&self) -> &crate::credentials::password::PasswordSettings {
        &self.config.passwords
    }
    /// The connector "Test Results" panel: calls connector `id` once with
    /// the given method, endpoint and optional JSON body.
    pub async fn test_connector(
        &self,
        id: &str,
        method: &str,
        endpoint: &str,
        body: Option<Value>,
    ) -> Result<crate::connectors::ConnectorTestResult> {
        let connector = self
            .connectors
            .get(id)
            .ok_or_else(|| Error::config(format!("no connector with id {id:?} in this project")))?;
        let method = super::Method::parse(method)
            .ok_or_else(|| Error::invalid_request("method must be GET, POST, PUT, PATCH or DELETE"))?;
        let call = ConnectorCall { method, endpoint: endpoint.to_owned(), headers: Vec::new(), body, timeout: None };
        Ok(connector.test(&call).await)
    }
    fn flow(&self, id: &str) -> Result<Arc<Flow>> {
        self.flows
            .get(id)
            .cloned()
            .ok_or_else(|| Error::new(ErrorCode::FlowNotFound, format!("no flow with id {id:?}")))
    }
    /// Starts `flow_id`. `input` pre-fills the `form.*` names the flow
    /// reads (e.g. a login hint; other names are dropped);
    /// `request` is the authorization request a flow runs for (`request.*`).
    pub async fn start(&self, flow_id: &str, input: Map<String, Value>, request: Option<Value>) -> Result<FlowResponse> {
        self.start_owned(flow_id, input, request, Value::Null).await
    }
    /// [`FlowEngine::start`] for an execution that belongs to someone: the
    /// provider keeps here what proves it (digests of the execution secret
    /// and of the browser binding), read back by [`FlowEngine::owner`].
    pub async fn start_owned(&self, flow_id: &str, input: Map<String, Value>, request: Option<Value>, owner: Value) -> Result<FlowResponse> {
        let flow = self.flow(flow_id)?;
        let mut ctx = Context::new();
        // Only what the flow reads is kept: undeclared input never reaches
        // the stored execution.
        for (k, v) in input.into_iter().filter(|(k, _)| flow.form_inputs.contains(k)) {
            ctx.set(&format!("form.{k}"), v)?;
        }
        if let Some(r) = request {
            ctx.set("request", r)?;
        }
        if !owner.is_null() {
            ctx.set(&format!("{INTERNAL}.owner"), owner)?;
        }
        let execution_id = random_id("E")?;
        let outcome = self.run(&flow, &flow.start, &mut ctx, &execution_id).await;
        self.finish(&flow, execution_id, None, outcome, ctx, &[]).await
    }
    /// The live execution `execution_id` waiting on `step_id` (an expired
    /// one is deleted); `mismatch` says why another step does not fit.
    fn waiting_execution(&self, execution_id: &str, step_id: &str, mismatch: &str) -> Result<ExecutionRecord> {
        let unknown = || Error::invalid_request("no such execution (it finished, expired or never existed)");
        let record = self.store.execution(execution_id)?.ok_or_else(unknown)?;
        if record.expires_at <= now() {
            self.store.delete_execution(execution_id)?;
            return Err(Error::invalid_request("the execution has expired; start the flow again"));
        }
        if record.step_id != step_id {
            return Err(Error::invalid_request(mismatch));
        }
        Ok(record)
    }
    /// Claims `record` with a compare-and-swap on its version, so only one
    /// concurrent answer runs; `lost` is the error of the others.
    fn claim(&self, record: &ExecutionRecord, lost: &str) -> Result<ExecutionRecord> {
        let claimed = ExecutionRecord { step_id: String::new(), version: record.version + 1, ..record.clone() };
        if !self.store.save_execution(&claimed, record.version)? {
            return Err(Error::invalid_request(lost));
        }
        Ok(claimed)
    }
    /// Answers the screen `step_id` of `execution_id` with `interaction_id`.
    pub async fn next(
        &self,
        execution_id: &str,
        step_id: &str,
        interaction_id: &str,
        input: Map<String, Value>,
    ) -> Result<FlowResponse> {
        let record = self.waiting_execution(execution_id, step_id, "stepId is not the step this execution waits on (already answered?)")?;
        let flow = self.flow(&record.flow_id)?;
        let step = flow.step(step_id).ok_or_else(|| Error::internal("stored step is not in the flow"))?;
        let StepKind::Screen(screen) = &step.kind else {
            return Err(Error::invalid_request("this step waits for the OAuth provider's callback, not for an answer"));
        };
        let Some(interaction) = screen.interactions.iter().find(|i| i.id == interaction_id) else {
            return Err(Error::invalid_request(format!("interactionId {interaction_id:?} is not on this screen")));
        };
        let mut ctx = Context::from_value(record.context.clone())?;
        if let Err(e) = collect_inputs(screen, &input, &mut ctx) {
            // The same screen again, with what was wrong; nothing is saved.
            return Ok(FlowResponse {
                execution_id: execution_id.to_owned(),
                step_id: Some(step_id.to_owned()),
                status: FlowStatus::Waiting,
                screen: Some(self.screen(execution_id, step_id, screen, &ctx)?),
                redirect: None,
                auth_info: None,
                error: Some(e),
                authenticated: None,
            });
        }
        // Claim the answer: only one concurrent `next` gets past this.
        let claimed = self.claim(&record, "this step was already answered")?;
        // Passwords serve the steps of this request only.
        let transient: Vec<String> =
            screen.inputs.iter().filter(|i| i.input_type == InputType::Password).map(|i| format!("form.{}", i.name)).collect();
        let outcome = self.run(&flow, &interaction.next, &mut ctx, execution_id).await;
        self.finish(&flow, execution_id.to_owned(), Some(claimed.version), outcome, ctx, &transient).await
    }
    /// Resumes an execution waiting on the `oauth` step `step_id` with the
    /// upstream's outcome: the provisioned user and its raw claims (under
    /// `oauth.<provider>.claims`), or the error (which takes the step's
    /// `onError` branch, else fails the flow).
    pub async fn resume_oauth(
        &self,
        execution_id: &str,
        step_id: &str,
        outcome: Result<(User, Map<String, Value>)>,
    ) -> Result<FlowResponse> {
        let record = self.waiting_execution(execution_id, step_id, "the execution no longer waits on this oauth step")?;
        let flow = self.flow(&record.flow_id)?;
        let step = flow.step(step_id).ok_or_else(|| Error::internal("stored step is not in the flow"))?;
        let StepKind::OAuth(OAuthStep { provider, next, .. }) = &step.kind else {
            return Err(Error::invalid_request("the execution waits on a screen, not on an oauth step"));
        };
        let claimed = self.claim(&record, "this oauth step was already resumed")?;
        let mut ctx = Context::from_value(record.context.clone())?;
        let from = match outcome {
            Ok((user, claims)) => {
                ctx.set("user", user.to_json())?;
                ctx.set(&format!("{INTERNAL}.userId"), user.user_id.clone().into())?;
                // The upstream authenticated the user; nothing here verified
                // a credential, so no RFC 8176 method is named, but the
                // checked upstream sign-in gives the execution its `acr`.
                ctx.set(&format!("{INTERNAL}.amr"), json!([]))?;
                ctx.set(&format!("{INTERNAL}.upstream"), Value::String(provider.clone()))?;
                super::steps::describe_auth(&mut ctx, self.store.as_ref(), &user)?;
                ctx.set(&format!("oauth.{provider}.claims"), Value::Object(claims))?;
                next.clone()
            }
            Err(e) => match &step.on_error {
                Some(target) => {
                    ctx.set("error", json!({"code": e.code.as_str(), "message": e.message, "step": step.id}))?;
                    target.clone()
                }
                None => {
                    return self.finish(&flow, execution_id.to_owned(), Some(claimed.version), Outcome::Failed(e), ctx, &[]).await;
                }
            },
        };
        let outcome = self.run(&flow, &from, &mut ctx, execution_id).await;
        self.finish(&flow, execution_id.to_owned(), Some(claimed.version), outcome, ctx, &[]).await
    }
    /// What [`FlowEngine::start_owned`] kept for a live execution
    /// (`Value::Null` when it has no owner); `None` when there is no such
    /// execution.
    pub fn owner(&self, execution_id: &str) -> Result<Option<Value>> {
        let Some(record) = self.store.execution(execution_id)?.filter(|r| r.expires_at > now()) else {
            return Ok(None);
        };
        let owner = record.context.get(INTERNAL).and_then(|i| i.get("owner")).cloned().unwrap_or(Value::Null);
        Ok(Some(owner))
    }
    /// The screen an execution waits on (the hosted page resumes with it).
    pub fn current(&self, execution_id: &str) -> Result<FlowResponse> {
        let unknown = || Error::invalid_request("no such execution (it finished, expired or never existed)");
        let record = self.store.execution(execution_id)?.filter(|r| r.expires_at > now()).ok_or_else(unknown)?;
        let flow = self.flow(&record.flow_id)?;
        let screen = match flow.step(&record.step_id).map(|s| &s.kind) {
            Some(StepKind::Screen(screen)) => self.screen(execution_id, &record.step_id, screen, &Context::from_value(record.context.clone())?)?,
            _ => return Err(Error::invalid_request("the execution is not waiting on a screen")),
        };
        Ok(FlowResponse {
            execution_id: execution_id.to_owned(),
            step_id: Some(record.step_id.clone()),
            status: FlowStatus::Waiting,
            screen: Some(screen),
            redirect: None,
            auth_info: None,
            error: None,
            authenticated: None,
        })
    }
    async fn finish(
        &self,
        flow: &Flow,
        execution_id: String,
        version: Option<u64>,
        outcome: Outcome,
        mut ctx: Context,
        transient: &[String],
    ) -> Result<FlowResponse> {
        for path in transient {
            ctx.remove(path);
        }
        let mut response = FlowResponse {
            execution_id: execution_id.clone(),
            step_id: None,
            status: FlowStatus::Completed,
            screen: None,
            redirect: None,
            auth_info: None,
            error: None,
            authenticated: None,
        };
        match outcome {
            Outcome::Waiting(step_id, handled) => {
                response.error = handled;
                response.redirect = ctx.remove(&format!("{INTERNAL}.redirect")).and_then(|v| v.as_str().map(str::to_owned));
                super::steps::waiting_at(&mut ctx, &step_id)?;
                if let Some(StepKind::Screen(screen)) = flow.step(&step_id).map(|s| &s.kind) {
                    response.screen = Some(self.screen(&execution_id, &step_id, screen, &ctx)?);
                }
                let record = ExecutionRecord {
                    id: execution_id.clone(),
                    flow_id: flow.id.clone(),
                    step_id: step_id.clone(),
                    version: version.map_or(0, |v| v + 1),
                    context: ctx.into_value(),
                    expires_at: now() + self.config.execution_ttl,
                };
                match version {
                    None => self.store.insert_execution(&record)?,
                    Some(v) => {
                        if !self.store.save_execution(&record, v)? {
                            return Err(Error::new(ErrorCode::Storage, "the execution changed while this step ran"));
                        }
                    }
                }
                response.step_id = Some(step_id);
                response.status = FlowStatus::Waiting;
            }
            Outcome::Completed => {
                if version.is_some() {
                    self.store.delete_execution(&execution_id)?;
                }
                if let Some(user_id) = ctx.get(&format!("{INTERNAL}.userId")).and_then(Value::as_str) {
                    let request = ctx.get("request").cloned();
                    if request.is_none() {
                        response.auth_info = Some(self.issue(&ctx)?);
                    }
                    response.authenticated = Some(Authenticated {
                        flow_id: flow.id.clone(),
                        user_id: user_id.to_owned(),
                        amr: super::issue::verified_methods(&ctx),
                        acr: super::issue::verified_acr(&ctx, &flow.id),
                        custom_claims: ctx.get("claims").and_then(Value::as_object).cloned().unwrap_or_default(),
                        request,
                    });
                }
            }
            Outcome::Failed(e) => {
                if version.is_some() {
                    self.store.delete_execution(&execution_id)?;
                }
                response.status = FlowStatus::Failed;
                response.error = Some(e);
            }
        }
        Ok(response)
    }
    async fn run(&self, flow: &Flow, from: &str, ctx: &mut Context, execution_id: &str) -> Outcome {
        let mut current = from.to_owned();
        let mut steps_run = 0usize;
        let mut handled: Option<Error> = None;
        loop {
            steps_run += 1;
            if steps_run > self.config.max_steps_per_request {
                return Outcome::Failed(Error::new(
                    ErrorCode::InvalidFlow,
                    format!("more than {} steps ran without a screen: the flow has a cycle", self.config.max_steps_per_request),
                ));
            }
            let Some(step) = flow.step(&current) else {
                return Outcome::Failed(Error::new(ErrorCode::InvalidFlow, format!("step {current:?} does not exist")));
            };
            let mut run = StepRun { engine: self, ctx: &mut *ctx, execution_id, step_id: &step.id };
            let result = match step.kind.run(&mut run).await {
                Ok(Next::Wait) => return Outcome::Waiting(current, handled),
                Ok(Next::End) => return Outcome::Completed,
                Ok(Next::Step(next)) => Ok(next),
                Err(e) => Err(e),
            };
            current = match result {
                Ok(next) => next,
                Err(e) => match &step.on_error {
                    Some(target) => {
                        if let Err(set_err) = ctx.set("error", json!({"code": e.code.as_str(), "message": e.message, "step": step.id})) {
                            return Outcome::Failed(set_err);
                        }
                        handled = Some(e);
                        target.clone()
                    }
                    None => return Outcome::Failed(e),
                },
            };
        }
    }
}

/// Checks a screen's answer and stores it under `form.*`.
fn collect_inputs(screen: &ScreenStep, input: &Map<String, Value>, ctx: &mut Context) -> Result<()> {
    for declared in &screen.inputs {
        let value = input.get(&declared.name).filter(|v| !v.is_null());
        let text = match value {
            None => None,
            Some(Value::String(s)) => Some(s.trim().to_owned()),
            Some(Value::Number(n)) => Some(n.to_string()),
            Some(Value::Bool(b)) => Some(b.to_string()),
            Some(_) => return Err(Error::invalid_request(format!("input {} must be a text value", declared.name))),
        };
        match text.as_deref() {
            None | Some("") if declared.required => {
                return Err(Error::invalid_request(format!("{} is required", declared.label)))
            }
            None | Some("") => continue,
            Some(t) => {
                if declared.input_type == InputType::Email && !looks_like_email(t) {
                    return Err(Error::invalid_request(format!("{} is not a valid email address", declared.label)));
                }
                if declared.input_type == InputType::Select && !declared.options.iter().any(|o| o == t) {
                    return Err(Error::invalid_request(format!("{} must be one of the offered options", declared.label)));
                }
                if declared.input_type == InputType::Password {
                    // Passwords keep their exact bytes (no trimming).
                    let raw = value.and_then(Value::as_str).unwrap_or(t).to_owned();
                    ctx.set(&format!("form.{}", declared.name), Value::String(raw))?;
                    continue;
                }
                ctx.set(&format!("form.{}", declared.name), Value::String(t.to_owned()))?;
            }
        }
    }
    Ok(())
}
