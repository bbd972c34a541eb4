//! The OpenID Connect client: `OidcClient`. Settings and options arrive as
//! plain objects and go straight to the core's parsers.

use crate::error::{js_err, run};
use idflow::oidc::client::{AuthorizationParams, AuthorizationRequest, ClientConfig, OidcClient as CoreClient, TokenSet};
use idflow::options::Options;
use napi::bindgen_prelude::*;
use napi_derive::napi;
use serde_json::{Map, Value};
use std::sync::Arc;

type Json = Value;

/// An OpenID Connect client for one provider; network methods return Promises.
#[napi]
pub struct OidcClient {
    inner: Arc<CoreClient>,
}

fn config(settings: Map<String, Value>, key: Option<&crate::jose::Key>) -> idflow::Result<ClientConfig> {
    ClientConfig::from_json(&settings, key.map(|k| k.inner().clone()))
}

fn tokens(t: TokenSet) -> Json {
    t.to_json()
}

/// Discovers a provider: `settings` has `clientId`, `redirectUri`, and
/// optionally `issuer`, `clientSecret`, `clientAuth`, `scopes`, `timeout`.
#[napi(js_name = "oidcDiscover", ts_return_type = "Promise<OidcClient>")]
pub fn oidc_discover<'env>(
    env: &'env Env,
    discovery_url: String,
    mut settings: Map<String, Value>,
    private_key: Option<&crate::jose::Key>,
) -> napi::Result<PromiseRaw<'env, OidcClient>> {
    settings.insert("discoveryUrl".into(), discovery_url.into());
    let c = run(env, || config(settings, private_key))?;
    env.spawn_future_with_callback(async move { Ok(CoreClient::from_config(c).await) }, |env, r| {
        r.map(|inner| OidcClient { inner: Arc::new(inner) }).map_err(|e| js_err(env, e))
    })
}

impl OidcClient {
    pub(crate) fn core(&self) -> Arc<CoreClient> {
        self.inner.clone()
    }
}

#[napi]
impl OidcClient {
    /// A client with its endpoints by hand (`authorizationEndpoint`,
    /// `tokenEndpoint`, `userinfoEndpoint`, `jwksUri`, `endSessionEndpoint`,
    /// `revocationEndpoint`, `issuer` in `settings`).
    #[napi(constructor)]
    pub fn new(env: Env, settings: Map<String, Value>, private_key: Option<&crate::jose::Key>) -> napi::Result<OidcClient> {
        let inner = run(&env, || {
            let c = config(settings, private_key)?;
            let endpoints = c.endpoints.ok_or_else(|| idflow::Error::config("give the endpoints, or use OidcClient.discover"))?;
            CoreClient::new(c.options, endpoints)
        })?;
        Ok(OidcClient { inner: Arc::new(inner) })
    }

    /// The endpoints in use, by their discovery names.
    #[napi(getter, ts_return_type = "Record<string, string>")]
    pub fn endpoints(&self) -> Json {
        self.inner.endpoints().to_json()
    }

    /// `{url, state, nonce, codeVerifier, redirectUri}`: keep it until the callback.
    #[napi(js_name = "authorizationRequest", ts_return_type = "AuthorizationRequest")]
    pub fn authorization_request(&self, env: Env, options: Option<Map<String, Value>>) -> napi::Result<Json> {
        run(&env, || {
            let params = AuthorizationParams::from_json(&options.unwrap_or_default())?;
            Ok(self.inner.authorization_request(&params)?.to_json())
        })
    }

    /// Checks a callback (URL, query or form_post body): `{code, id_token, state}`,
    /// by the wire names, like the token set.
    #[napi(js_name = "parseCallback", ts_return_type = "{ code: string | null; id_token: string | null; state: string }")]
    pub fn parse_callback(&self, env: Env, callback: String, expected_state: String) -> napi::Result<Json> {
        run(&env, || {
            let c = self.inner.parse_callback(&callback, &expected_state)?;
            Ok(serde_json::json!({"code": c.code, "id_token": c.id_token, "state": c.state}))
        })
    }

    /// The client-side work of a callback without network: state check,
    /// token-response parse and id_token validation against `keys`. Answers
    /// JSON text (index.js parses it: faster than building it through N-API).
    #[napi(js_name = "_completeCallbackJson")]
    pub fn complete_callback_json(
        &self,
        env: Env,
        callback: String,
        state: String,
        nonce: String,
        token_status: u32,
        token_body: Buffer,
        keys: &crate::jose::KeySet,
    ) -> napi::Result<String> {
        run(&env, || {
            let status = u16::try_from(token_status).map_err(|_| idflow::Error::invalid_request("token_status must be an HTTP status"))?;
            Ok(tokens(self.inner.complete_with(keys.inner(), &callback, &state, &nonce, status, &token_body)?).to_string())
        })
    }

    #[napi(js_name = "endSessionUrl")]
    pub fn end_session_url(&self, env: Env, options: Option<Map<String, Value>>) -> napi::Result<String> {
        let o = options.unwrap_or_default();
        run(&env, || {
            let o = Options::new(&o, "endSessionUrl", &["idTokenHint", "postLogoutRedirectUri", "state"])?;
            self.inner.end_session_url(o.string("idTokenHint")?.as_deref(), o.string("postLogoutRedirectUri")?.as_deref(), o.string("state")?.as_deref())
        })
    }

    /// Checks the callback, exchanges the code (or validates the implicit
    /// id_token): the token response plus `claims`.
    #[napi(js_name = "handleCallback", ts_return_type = "Promise<TokenResponse>")]
    pub fn handle_callback<'env>(&self, env: &'env Env, callback: String, request: Map<String, Value>) -> napi::Result<PromiseRaw<'env, Json>> {
        let request: AuthorizationRequest = run(env, || AuthorizationRequest::from_json(&request))?;
        let c = self.inner.clone();
        env.spawn_future_with_callback(async move { Ok(c.handle_callback(&callback, &request).await) }, |env, r| {
            r.map(tokens).map_err(|e| js_err(env, e))
        })
    }

    #[napi(js_name = "exchangeCode", ts_return_type = "Promise<TokenResponse>")]
    pub fn exchange_code<'env>(&self, env: &'env Env, code: String, options: Option<Map<String, Value>>) -> napi::Result<PromiseRaw<'env, Json>> {
        let o = options.unwrap_or_default();
        let c = self.inner.clone();
        env.spawn_future_with_callback(
            // A bad option rejects the promise, as a failed exchange does.
            async move {
                Ok(async {
                    let o = Options::new(&o, "exchangeCode", &["codeVerifier", "nonce", "redirectUri", "params"])?;
                    let (verifier, nonce, redirect) = (o.string("codeVerifier")?, o.string("nonce")?, o.string("redirectUri")?);
                    c.exchange_code(&code, verifier.as_deref(), nonce.as_deref(), redirect.as_deref(), &o.string_pairs("params")?).await
                }
                .await)
            },
            |env, r| r.map(tokens).map_err(|e| js_err(env, e)),
        )
    }

    #[napi(js_name = "validateIdToken", ts_return_type = "Promise<Record<string, unknown>>")]
    pub fn validate_id_token<'env>(&self, env: &'env Env, id_token: String, options: Option<Map<String, Value>>) -> napi::Result<PromiseRaw<'env, Json>> {
        let o = options.unwrap_or_default();
        let c = self.inner.clone();
        env.spawn_future_with_callback(
            async move {
                Ok(async {
                    let o = Options::new(&o, "validateIdToken", &["nonce", "accessToken"])?;
                    c.validate_id_token(&id_token, o.string("nonce")?.as_deref(), o.string("accessToken")?.as_deref()).await
                }
                .await)
            },
            |env, r| r.map(Value::Object).map_err(|e| js_err(env, e)),
        )
    }

    #[napi(ts_return_type = "Promise<Record<string, unknown>>")]
    pub fn userinfo<'env>(&self, env: &'env Env, access_token: String) -> napi::Result<PromiseRaw<'env, Json>> {
        let c = self.inner.clone();
        env.spawn_future_with_callback(async move { Ok(c.userinfo(&access_token).await) }, |env, r| {
            r.map(Value::Object).map_err(|e| js_err(env, e))
        })
    }

    #[napi(ts_return_type = "Promise<TokenResponse>")]
    pub fn refresh<'env>(&self, env: &'env Env, refresh_token: String, options: Option<Map<String, Value>>) -> napi::Result<PromiseRaw<'env, Json>> {
        let scopes: Option<Vec<String>> = options
            .as_ref()
            .and_then(|o| o.get("scopes"))
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).map(str::to_owned).collect());
        let c = self.inner.clone();
        env.spawn_future_with_callback(async move { Ok(c.refresh(&refresh_token, scopes.as_deref()).await) }, |env, r| {
            r.map(tokens).map_err(|e| js_err(env, e))
        })
    }

    #[napi(ts_return_type = "Promise<null>")]
    pub fn revoke<'env>(&self, env: &'env Env, token: String, token_type_hint: Option<String>) -> napi::Result<PromiseRaw<'env, Json>> {
        let c = self.inner.clone();
        env.spawn_future_with_callback(async move { Ok(c.revoke(&token, token_type_hint.as_deref()).await) }, |env, r| {
            r.map(|_| Value::Null).map_err(|e| js_err(env, e))
        })
    }
}
