//! Social login outside flows (README, "Social login with any OAuth provider"):
//! `POST /v1/auth/oauth/authorize` → the upstream URL; the upstream returns
//! to `/v1/oauth/callback` (GET, or POST for form_post); the browser lands on
//! `redirectUrl?code=...` with a one-time idflow code, which
//! `POST /v1/auth/oauth/exchange` turns into the flow API's `authInfo`.
//! Records: `oauth_state` (by state, 10 min, taken on the callback so a
//! replay finds nothing) and `oauth_code` (by digest, 60 s, taken once).

use super::state::{ProviderTokens, Records, SocialCode, SocialCodeUsed, SocialResume, SocialState, SocialTarget};
use crate::oidc::params::{append_query, Params};
use super::http::{HttpRequest, HttpResponse};
use super::{pages, token_digest, Provider, AUTH_REQUEST_TTL};
use crate::error::{Error, ErrorCode, Result};
use crate::ids::{now_secs, random_id};
use crate::oidc::client::{AuthorizationParams, AuthorizationRequest, OidcClient, TokenSet};
use crate::flow::OAuthStarter;
use crate::oidc::upstream::{OAuthProvider, OAuthProviders, TriggerMethod};
use crate::store::Store;
use std::collections::HashMap;
use serde_json::{json, Map, Value};
use std::sync::Arc;

/// The start of a social login by API: where to send the browser, and the
/// PKCE verifier its exchange needs.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct OAuthStart {
    pub url: String,
    pub code_verifier: String,
}

/// A `/v1` error: `{"error": {"code", "message"}}`.
pub(super) fn v1_error(e: &Error) -> HttpResponse {
    let status = match e.code {
        ErrorCode::AccessDenied => 403,
        ErrorCode::RateLimited => 429,
        ErrorCode::Storage | ErrorCode::Internal => 500,
        ErrorCode::Network => 502,
        _ => 400,
    };
    let message = if status == 500 { "the server could not complete the request" } else { e.message.as_str() };
    HttpResponse::json_no_store(status, &json!({"error": {"code": e.code.as_str(), "message": message}}))
}


/// The project's custom providers with their (lazily discovered) clients;
/// shared by the provider's API path and the engine's `oauth` steps.
pub(crate) struct SocialLogin {
    oauth: OAuthProviders,
    clients: tokio::sync::Mutex<HashMap<String, Arc<OidcClient>>>,
    store: Arc<dyn Store>,
}

impl SocialLogin {
    pub(crate) fn new(oauth: OAuthProviders, store: Arc<dyn Store>) -> SocialLogin {
        SocialLogin { oauth, clients: tokio::sync::Mutex::new(HashMap::new()), store }
    }

    /// The upstream's client, discovered once and then shared.
    async fn client(&self, provider: &OAuthProvider) -> Result<Arc<OidcClient>> {
        let mut clients = self.clients.lock().await;
        if let Some(c) = clients.get(&provider.name) {
            return Ok(c.clone());
        }
        let client = Arc::new(provider.connect().await?);
        clients.insert(provider.name.clone(), client.clone());
        Ok(client)
    }

    fn provider(&self, name: &str) -> Result<Arc<OAuthProvider>> {
        self.oauth.get(name).cloned().ok_or_else(|| Error::invalid_request(format!("no oauth provider named {name:?} in this project")))
    }

    /// Builds the upstream request and remembers `target` for the callback.
    async fn begin(&self, provider: &OAuthProvider, prompt: Vec<String>, login_hint: Option<&str>, target: SocialTarget) -> Result<String> {
        let client = self.client(provider).await?;
        let params = AuthorizationParams {
            prompt,
            login_hint: login_hint.map(str::to_owned),
            extra: provider.authorization_params.iter().cloned().collect(),
            response_type: Some(provider.response_type),
            ..Default::default()
        };
        let request = client.authorization_request(&params)?;
        let record = SocialState { target, provider: provider.name.clone(), request: request.to_json() };
        Records(self.store.as_ref()).put(&request.state, &record, Some(now_secs() + AUTH_REQUEST_TTL))?;
        Ok(request.url)
    }
}

impl OAuthStarter for SocialLogin {
    fn start<'a>(
        &'a self,
        provider: &'a str,
        prompt: Option<&'a str>,
        execution_id: &'a str,
        step_id: &'a str,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<String>> + Send + 'a>> {
        Box::pin(async move {
            let p = self.provider(provider)?;
            let prompt = match prompt {
                Some(x) => x.split(' ').filter(|s| !s.is_empty()).map(str::to_owned).collect(),
                None => p.prompt.clone(),
            };
            let target = SocialTarget::Flow { execution_id: execution_id.to_owned(), step_id: step_id.to_owned() };
            self.begin(&p, prompt, None, target).await
        })
    }
}

impl Provider {
    async fn oauth_client(&self, provider: &OAuthProvider) -> Result<Arc<OidcClient>> {
        self.social.client(provider).await
    }

    fn oauth_provider(&self, name: &str) -> Result<Arc<OAuthProvider>> {
        self.social.provider(name)
    }

    pub(super) async fn oauth_authorize(&self, req: &HttpRequest) -> HttpResponse {
        match self.oauth_authorize_inner(req).await {
            Ok(url) => HttpResponse::json_no_store(200, &json!({"url": url})),
            Err(e) => v1_error(&e),
        }
    }

    async fn oauth_authorize_inner(&self, req: &HttpRequest) -> Result<String> {
        self.count_ip(req, "social_api", self.limits.social_api_per_ip, "social login requests from this address")?;
        let body = req.json_object()?;
        let text = |k: &str| body.get(k).and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_owned);
        let name = text("provider").ok_or_else(|| Error::invalid_request("provider is required"))?;
        let prompt = match body.get("prompt") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.split(' ').filter(|x| !x.is_empty()).map(str::to_owned).collect()),
            Some(Value::Array(a)) => Some(a.iter().filter_map(Value::as_str).map(str::to_owned).collect()),
            Some(_) => return Err(Error::invalid_request("prompt must be a string or an array")),
        };
        if text("codeChallengeMethod").is_some_and(|m| m != "S256") {
            return Err(Error::invalid_request("codeChallengeMethod must be S256"));
        }
        let challenge = text("codeChallenge").ok_or_else(|| {
            Error::invalid_request("codeChallenge is required: the S256 challenge of a fresh code verifier, which the exchange then sends (RFC 7636)")
        })?;
        self.oauth_start(&name, text("redirectUrl").as_deref(), prompt, text("loginHint").as_deref(), &challenge).await
    }

    /// Social login by API, step 1: the upstream authorization URL for
    /// provider `name`; after the callback the browser lands on
    /// `redirect_url?code=...` (or the provider's default redirect URL),
    /// which must be approved (`redirectUrls`, or the provider's own
    /// `redirectUrl`). The code is bound to `code_challenge` (S256): the
    /// exchange needs its verifier, so only whoever started the login can
    /// finish it.
    pub async fn oauth_start(
        &self,
        name: &str,
        redirect_url: Option<&str>,
        prompt: Option<Vec<String>>,
        login_hint: Option<&str>,
        code_challenge: &str,
    ) -> Result<String> {
        let provider = self.oauth_provider(name)?;
        if provider.trigger_method == TriggerMethod::FlowsOnly {
            return Err(Error::new(ErrorCode::AccessDenied, format!("oauth provider {name:?} is only for flows (triggerMethod flowsOnly)")));
        }
        let redirect_url = redirect_url
            .map(str::to_owned)
            .or_else(|| provider.redirect_url.clone())
            .ok_or_else(|| Error::invalid_request("redirectUrl is required (the provider has no default)"))?;
        let own: Vec<&str> = provider.redirect_url.as_deref().into_iter().collect();
        if !self.project.redirect_url_approved(&redirect_url, &own) {
            return Err(Error::invalid_request(
                "redirectUrl is not approved: list it (or its origin) in the project's redirectUrls, or set it as the provider's redirectUrl",
            ));
        }
        if !crate::pkce::is_s256_challenge(code_challenge) {
            return Err(Error::invalid_request("codeChallenge must be an S256 challenge: 43 characters of base64url"));
        }
        let prompt = prompt.unwrap_or_else(|| provider.prompt.clone());
        let target = SocialTarget::Api { redirect_url, code_challenge: code_challenge.to_owned() };
        self.social.begin(&provider, prompt, login_hint, target).await
    }

    /// [`Provider::oauth_start`] for SDKs: makes a fresh PKCE pair and
    /// returns the upstream URL with the verifier, which the caller keeps
    /// (in its own session) for [`Provider::oauth_exchange_code`].
    pub async fn oauth_begin(&self, name: &str, redirect_url: Option<&str>, prompt: Option<Vec<String>>, login_hint: Option<&str>) -> Result<OAuthStart> {
        let pair = crate::pkce::generate(None)?;
        let url = self.oauth_start(name, redirect_url, prompt, login_hint, &pair.challenge).await?;
        Ok(OAuthStart { url, code_verifier: pair.verifier })
    }

    /// `GET|POST /v1/oauth/callback`: the upstream's answer.
    pub(super) async fn oauth_callback(&self, req: &HttpRequest) -> HttpResponse {
        let input = if req.method == "POST" { String::from_utf8_lossy(&req.body).into_owned() } else { req.query.clone() };
        let params = Params::parse(input.as_bytes());
        let Some(state) = params.get("state").map(str::to_owned) else {
            return pages::error_page(400, "Sign-in failed", "the provider's answer has no state");
        };
        // Read, then taken (below) once the test mode is ruled out: a
        // replayed or raced callback finds nothing, so nothing is
        // provisioned twice.
        let record = match self.records().get::<SocialState>(&state) {
            Ok(Some(r)) if r.target == SocialTarget::Test => {
                // Left for `idflow oauth test`, which holds the PKCE verifier.
                let answer = if req.method == "POST" { input.clone() } else { format!("{}?{}", req.path, req.query) };
                return pages::info_page(
                    "Provider test",
                    &format!("The provider answered. Paste this into the terminal running idflow oauth test: {answer}"),
                );
            }
            Ok(Some(r)) => r,
            Ok(None) => return pages::error_page(400, "Sign-in failed", "this sign-in has expired or was already completed; start again"),
            Err(_) => return pages::error_page(500, "Sign-in failed", "the server could not complete the request"),
        };
        match self.records().take::<SocialState>(&state) {
            Ok(Some(_)) => {}
            Ok(None) => return pages::error_page(400, "Sign-in failed", "this sign-in has expired or was already completed; start again"),
            Err(_) => return pages::error_page(500, "Sign-in failed", "the server could not complete the request"),
        }
        match &record.target {
            SocialTarget::Flow { .. } => self.oauth_resume_flow(req, &record, &input).await,
            SocialTarget::Api { redirect_url, code_challenge } => match self.oauth_finish(&record, code_challenge, &input).await {
                Ok(code) => HttpResponse::redirect(&append_query(redirect_url, &[("code", &code)])),
                Err(e) => {
                    let message: String = e.message.chars().take(300).collect();
                    HttpResponse::redirect(&append_query(redirect_url, &[("error", e.code.as_str()), ("error_description", &message)]))
                }
            },
            // Ruled out above.
            SocialTarget::Test => pages::error_page(400, "Sign-in failed", "this sign-in has expired or was already completed; start again"),
        }
    }

    /// Exchanges the upstream's answer: the provider and its tokens, with
    /// the user's claims (validated id_token, or userinfo).
    async fn oauth_tokens(&self, record: &SocialState, input: &str) -> Result<(Arc<OAuthProvider>, TokenSet, Map<String, Value>)> {
        let provider = self.oauth_provider(&record.provider)?;
        let request = AuthorizationRequest::from_json(record.request.as_object().ok_or_else(|| Error::internal("stored request"))?)?;
        let client = self.oauth_client(&provider).await?;
        let callback = client.parse_callback(input, &request.state)?;
        let tokens = match (&callback.code, &callback.id_token) {
            (Some(code), _) => {
                client
                    .exchange_code(code, request.code_verifier.as_deref(), Some(&request.nonce), Some(&request.redirect_uri), &provider.token_params)
                    .await?
            }
            _ => client.handle_callback(input, &request).await?,
        };
        let claims = tokens.claims.clone().ok_or_else(|| Error::invalid_token("the provider returned no user claims (no id_token or userinfo)"))?;
        Ok((provider, tokens, claims))
    }

    /// Exchanges the upstream's answer and provisions the user.
    async fn oauth_user(&self, record: &SocialState, input: &str) -> Result<(Arc<OAuthProvider>, crate::user::User, Map<String, Value>)> {
        let (provider, tokens, claims) = self.oauth_tokens(record, input).await?;
        let user = provider.provision(&**self.store(), &claims, now_secs())?;
        if provider.manage_provider_tokens {
            self.keep_provider_tokens(&user.user_id, &provider.name, &tokens, None)?;
        }
        Ok((provider, user, claims))
    }

    /// The provider test (`idflow oauth test`), step 1: the upstream
    /// authorization URL for provider `name`, whatever its trigger method.
    /// The upstream answers at the callback URL; the browser's address
    /// there goes to [`Provider::oauth_test_finish`].
    pub async fn oauth_test_start(&self, name: &str) -> Result<String> {
        let provider = self.oauth_provider(name)?;
        self.social.begin(&provider, provider.prompt.clone(), None, SocialTarget::Test).await
    }

    /// The provider test, step 2: exchanges the answer (the callback URL,
    /// its query or a form_post body) and shows what a sign-in would do,
    /// without saving anything: `{provider, claims, user, existingUserId,
    /// tokens}` where `user` is the mapping applied to a first-time user
    /// and `tokens` says what the upstream returned (no token values).
    pub async fn oauth_test_finish(&self, input: &str) -> Result<Value> {
        let input = input.trim();
        let query = input.split_once('?').map_or(input, |(_, q)| q);
        let query = query.split('#').next().unwrap_or_default();
        let params = Params::parse(query.as_bytes());
        let state = params.get("state").ok_or_else(|| Error::invalid_request("the address has no state: paste the whole URL the browser landed on"))?;
        let record = self
            .records()
            .get::<SocialState>(state)?
            .filter(|r| r.target == SocialTarget::Test)
            .ok_or_else(|| Error::invalid_request("no provider test is waiting for this state (expired, or already used)"))?;
        if self.records().take::<SocialState>(state)?.is_none() {
            return Err(Error::invalid_request("no provider test is waiting for this state (expired, or already used)"));
        }
        let (provider, tokens, claims) = self.oauth_tokens(&record, query).await?;
        let scratch = crate::store::MemoryStore::new();
        let user = provider.provision(&scratch, &claims, now_secs())?;
        // The scratch user's first login id is the real one's, `{provider}:{sub}`.
        let existing = match user.login_ids.first() {
            Some(external) => self.store.user_by_login_id(external)?.map(|u| u.user_id),
            None => None,
        };
        let mut user = user.to_json();
        if let Some(u) = user.as_object_mut() {
            u.remove("userId");
        }
        Ok(json!({
            "provider": provider.name,
            "claims": claims,
            "user": user,
            "existingUserId": existing,
            "tokens": {
                "tokenType": tokens.token_type,
                "expiresIn": tokens.expires_in,
                "scope": tokens.scope,
                "idToken": tokens.id_token.is_some(),
                "refreshToken": tokens.refresh_token.is_some(),
            },
        }))
    }

    /// Seals and stores the upstream's tokens for `user_id`.
    fn keep_provider_tokens(&self, user_id: &str, provider: &str, tokens: &crate::oidc::client::TokenSet, old_refresh: Option<&str>) -> Result<Value> {
        let id = format!("{user_id}:{provider}");
        let plain = json!({
            "accessToken": tokens.access_token,
            "refreshToken": tokens.refresh_token.as_deref().or(old_refresh),
            "expiresAt": tokens.expires_in.map(|e| now_secs() + e),
            "scope": tokens.scope,
        });
        self.records().put(&id, &ProviderTokens(self.vault.seal(&id, &plain)?), None)?;
        Ok(plain)
    }

    /// The upstream access token kept for `user_id` at `provider`
    /// (`manageProviderTokens`), refreshed first when it has expired:
    /// `{provider, accessToken, expiresAt, scope}`.
    pub async fn provider_token(&self, user_id: &str, provider: &str) -> Result<Value> {
        let id = format!("{user_id}:{provider}");
        let ProviderTokens(sealed) = self.records().get::<ProviderTokens>(&id)?.ok_or_else(|| {
            Error::new(ErrorCode::UserNotFound, "no provider tokens for this user and provider (manageProviderTokens is off, or the user never signed in there)")
        })?;
        let mut plain = self.vault.open_sealed(&id, &sealed)?;
        let expired = plain.get("expiresAt").and_then(Value::as_u64).is_some_and(|t| t <= now_secs() + 30);
        if expired {
            let refresh = plain.get("refreshToken").and_then(Value::as_str).map(str::to_owned).ok_or_else(|| {
                Error::new(ErrorCode::InvalidGrant, "the provider's access token expired and there is no refresh token; sign in again")
            })?;
            let p = self.oauth_provider(provider)?;
            let client = self.oauth_client(&p).await?;
            let fresh = client.refresh(&refresh, None).await?;
            plain = self.keep_provider_tokens(user_id, provider, &fresh, Some(&refresh))?;
        }
        Ok(json!({
            "provider": provider,
            "accessToken": plain.get("accessToken"),
            "expiresAt": plain.get("expiresAt"),
            "scope": plain.get("scope"),
        }))
    }

    async fn oauth_finish(&self, record: &SocialState, code_challenge: &str, input: &str) -> Result<String> {
        let (provider, user, _) = self.oauth_user(record, input).await?;
        let code = random_id("")?;
        let exp = now_secs() + 60;
        let kept = SocialCode { user_id: user.user_id, provider: provider.name.clone(), code_challenge: Some(code_challenge.to_owned()), exp };
        self.records().put(&token_digest(&code), &kept, Some(exp))?;
        Ok(code)
    }

    /// The callback of an `oauth` flow step. In the browser that started
    /// the execution (its cookie), the execution resumes at once and the
    /// browser goes on: to the next redirect (the delivery of an
    /// authorization response, or another upstream), else back to the page.
    /// Anywhere else the answer is kept under a one-time `resume` id and the
    /// browser goes to the owner's page with it: the execution then resumes
    /// only for a request that has both that id and the execution's proof
    /// (its secret or cookie), so neither a victim's browser nor an
    /// attacker holding the secret can finish someone else's sign-in.
    async fn oauth_resume_flow(&self, req: &HttpRequest, record: &SocialState, input: &str) -> HttpResponse {
        let SocialTarget::Flow { execution_id: execution, .. } = &record.target else {
            return pages::error_page(400, "Sign-in failed", "this sign-in has expired; start again");
        };
        let execution = execution.clone();
        let owner = match self.engine.owner(&execution) {
            Ok(Some(o)) => o,
            Ok(None) => return pages::error_page(400, "Sign-in failed", "this sign-in has expired; start again"),
            Err(_) => return pages::error_page(500, "Sign-in failed", "the server could not complete the request"),
        };
        if !self.owns(req, &Map::new(), &owner) {
            let kept = random_id("R").and_then(|resume| {
                let pending = SocialResume { execution_id: execution.clone(), record: record.clone(), input: input.to_owned() };
                self.records().put(&resume, &pending, Some(now_secs() + AUTH_REQUEST_TTL))?;
                Ok(resume)
            });
            return match kept {
                Ok(resume) => HttpResponse::redirect(&self.owner_page(&owner, &execution, Some(&resume))),
                Err(_) => pages::error_page(500, "Sign-in failed", "the server could not complete the request"),
            };
        }
        let response = match self.complete_flow(self.oauth_resume_execution(record, input).await) {
            Ok(x) => x,
            Err(e) => return pages::error_page(400, "Sign-in failed", &e.message),
        };
        match &response.redirect {
            Some(url) => HttpResponse::redirect(url),
            None => match self.keep_flow_result(&execution, &response, &owner) {
                Ok(page) => HttpResponse::redirect(&page),
                Err(_) => pages::error_page(500, "Sign-in failed", "the server could not complete the request"),
            },
        }
    }

    /// Resumes the execution waiting on an `oauth` step with the upstream's
    /// answer (`input`, the callback's query or form body).
    pub(super) async fn oauth_resume_execution(&self, record: &SocialState, input: &str) -> Result<crate::flow::FlowResponse> {
        let SocialTarget::Flow { execution_id: execution, step_id: step } = &record.target else {
            return Err(Error::invalid_request("this sign-in is not a flow's"));
        };
        let (execution, step) = (execution.clone(), step.clone());
        let outcome = self.oauth_user(record, input).await.map(|(_, user, claims)| (user, claims));
        self.engine.resume_oauth(&execution, &step, outcome).await
    }

    /// `POST /v1/auth/oauth/exchange {"code", "codeVerifier"}` → `authInfo`.
    pub(super) async fn oauth_exchange(&self, req: &HttpRequest) -> HttpResponse {
        let result = self.count_ip(req, "social_api", self.limits.social_api_per_ip, "social login requests from this address").and_then(|()| req.json_object()).and_then(|body| {
            let text = |k: &str| body.get(k).and_then(Value::as_str).filter(|c| !c.is_empty());
            let code = text("code").ok_or_else(|| Error::invalid_request("code is required"))?;
            let verifier = text("codeVerifier").ok_or_else(|| Error::invalid_request("codeVerifier is required (the verifier of the codeChallenge sent to authorize)"))?;
            let info = self.oauth_exchange_code(code, verifier)?;
            Ok(info.to_json())
        });
        match result {
            Ok(v) => HttpResponse::json_no_store(200, &v),
            Err(e) => v1_error(&e),
        }
    }

    /// Social login by API, step 2: the one-time code from the redirect and
    /// the PKCE verifier of the login's challenge → session and refresh JWTs
    /// and the user (the flow API's `authInfo`). A wrong verifier spends the
    /// code: a stolen code gives nothing, and cannot be guessed at.
    pub fn oauth_exchange_code(&self, code: &str, code_verifier: &str) -> Result<crate::flow::AuthInfo> {
        let digest = token_digest(code);
        let record = self.records().get::<SocialCode>(&digest)?.ok_or_else(|| Error::new(ErrorCode::InvalidGrant, "the code is invalid, spent or expired"))?;
        // Single use: whoever inserts the marker first wins.
        if !self.records().redeem(&digest, &SocialCodeUsed, Some(now_secs() + 120))? {
            return Err(Error::new(ErrorCode::InvalidGrant, "the code was already used"));
        }
        self.records().delete::<SocialCode>(&digest)?;
        let challenge = record.code_challenge.as_deref().unwrap_or_default();
        let ok = crate::pkce::verify(code_verifier, challenge, crate::pkce::Method::S256, false).unwrap_or(false);
        if !ok {
            return Err(Error::new(ErrorCode::InvalidGrant, "codeVerifier does not match the login's codeChallenge"));
        }
        self.engine.issue_for_user(&record.user_id, json!([]), &Map::new())
    }
}
