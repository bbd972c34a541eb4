//! The OpenID Connect client for Swift (`async`) and Kotlin (`suspend`).
//! Settings and options are the core's own records (`ClientSettings`,
//! `AuthorizationParams`), checked by the core.

use idflow::oidc::client::{AuthorizationParams, ClientConfig, ClientSettings, OidcClient as CoreClient, TokenSet};
use std::sync::Arc;

/// What the app keeps between the redirect and the callback (the core's
/// record).
pub use idflow::oidc::client::AuthorizationRequest;

/// A callback that passed the checks (state, error, `iss`): the code, or
/// the id_token of an implicit response, and the state.
pub type CallbackParams = idflow::oidc::client::Callback;

/// A token response (the core's `TokenSet`); `claimsJson` holds the
/// validated id_token's claims.
pub type TokenResponse = TokenSet;

fn config(settings: ClientSettings, key: Option<Arc<crate::jose::Key>>) -> Result<ClientConfig, idflow::Error> {
    ClientConfig::from_settings(settings, key.map(|k| k.inner().clone()))
}

/// Discovers a provider. `settings` needs `clientId` and `redirectUri`; its
/// `issuer`, if given, is the issuer the document must name. `privateKey`
/// signs `private_key_jwt` client assertions.
#[uniffi::export(async_runtime = "tokio", default(private_key = None))]
pub async fn oidc_discover(
    discovery_url: String,
    settings: ClientSettings,
    private_key: Option<Arc<crate::jose::Key>>,
) -> Result<Arc<OidcClient>, crate::IdflowError> {
    let c = config(ClientSettings { discovery_url: Some(discovery_url), ..settings }, private_key)?;
    Ok(Arc::new(OidcClient { inner: Arc::new(CoreClient::from_config(c).await?) }))
}

/// An OpenID Connect client for one provider. Close it (Kotlin `close()`)
/// to free it early.
#[derive(uniffi::Object)]
pub struct OidcClient {
    inner: Arc<CoreClient>,
}

impl OidcClient {
    pub(crate) fn core(&self) -> Arc<CoreClient> {
        self.inner.clone()
    }
}

#[uniffi::export(async_runtime = "tokio")]
impl OidcClient {
    /// Endpoints by hand: `settings` with `authorizationEndpoint`,
    /// `tokenEndpoint` and optionally `userinfoEndpoint`, `jwksUri`,
    /// `endSessionEndpoint`, `revocationEndpoint`, `issuer`.
    #[uniffi::constructor(default(private_key = None))]
    pub fn new(settings: ClientSettings, private_key: Option<Arc<crate::jose::Key>>) -> Result<Arc<OidcClient>, crate::IdflowError> {
        crate::error::guard(|| {
            let c = config(settings, private_key)?;
            let e = c.endpoints.ok_or_else(|| idflow::Error::config("give the endpoints, or use oidcDiscover"))?;
            Ok(Arc::new(OidcClient { inner: Arc::new(CoreClient::new(c.options, e)?) }))
        })
    }

    /// The endpoints in use (JSON, discovery names).
    pub fn endpoints(&self) -> String {
        self.inner.endpoints().to_json().to_string()
    }

    /// A fresh authorization request; `options` may override the scopes and
    /// the redirect URI, and add `prompt`, `loginHint`, `maxAge`, `params`.
    #[uniffi::method(default(options = None))]
    pub fn authorization_request(&self, options: Option<AuthorizationParams>) -> Result<AuthorizationRequest, crate::IdflowError> {
        crate::error::guard(|| self.inner.authorization_request(&options.unwrap_or_default()))
    }

    /// Checks a callback URL (or query / form body); returns the code or id_token.
    pub fn parse_callback(&self, callback: String, expected_state: String) -> Result<CallbackParams, crate::IdflowError> {
        crate::error::guard(|| self.inner.parse_callback(&callback, &expected_state))
    }

    /// Checks the callback and exchanges the code.
    pub async fn handle_callback(&self, callback: String, request: AuthorizationRequest) -> Result<TokenResponse, crate::IdflowError> {
        Ok(self.inner.handle_callback(&callback, &request).await?)
    }

    #[uniffi::method(default(nonce = None, access_token = None))]
    pub async fn validate_id_token(&self, id_token: String, nonce: Option<String>, access_token: Option<String>) -> Result<String, crate::IdflowError> {
        let claims = self.inner.validate_id_token(&id_token, nonce.as_deref(), access_token.as_deref()).await?;
        Ok(serde_json::Value::Object(claims).to_string())
    }

    /// Userinfo claims as JSON text.
    pub async fn userinfo(&self, access_token: String) -> Result<String, crate::IdflowError> {
        Ok(serde_json::Value::Object(self.inner.userinfo(&access_token).await?).to_string())
    }

    #[uniffi::method(default(scopes = None))]
    pub async fn refresh(&self, refresh_token: String, scopes: Option<Vec<String>>) -> Result<TokenResponse, crate::IdflowError> {
        Ok(self.inner.refresh(&refresh_token, scopes.as_deref()).await?)
    }

    #[uniffi::method(default(token_type_hint = None))]
    pub async fn revoke(&self, token: String, token_type_hint: Option<String>) -> Result<(), crate::IdflowError> {
        Ok(self.inner.revoke(&token, token_type_hint.as_deref()).await?)
    }

    #[uniffi::method(default(id_token_hint = None, post_logout_redirect_uri = None, state = None))]
    pub fn end_session_url(
        &self,
        id_token_hint: Option<String>,
        post_logout_redirect_uri: Option<String>,
        state: Option<String>,
    ) -> Result<String, crate::IdflowError> {
        crate::error::guard(|| self.inner.end_session_url(id_token_hint.as_deref(), post_logout_redirect_uri.as_deref(), state.as_deref()))
    }
}
