//! Signing in and out: the pending request kept in storage (so another
//! process can complete it), completing it, adopting tokens obtained
//! elsewhere, and signing out.

use super::*;

impl SessionManager {
    /// Starts a sign-in: builds the authorization URL (code flow with PKCE)
    /// and keeps the pending request in the storage, so
    /// [`SessionManager::complete`] can finish it in another process.
    /// A newer `begin` replaces an older pending request.
    pub async fn begin(&self, params: &AuthorizationParams) -> Result<String> {
        if params.response_type.unwrap_or_default() != ResponseType::Code {
            return Err(Error::config("begin starts the code flow; the implicit id_token grant gives no session"));
        }
        let request = self.client.authorization_request(params)?;
        let ttl = self.options.pending_ttl.as_secs().max(1);
        let pending = Pending {
            state: request.state,
            nonce: request.nonce,
            code_verifier: request.code_verifier,
            redirect_uri: request.redirect_uri,
            expires_at: now_secs().saturating_add(ttl),
        };
        let mut st = self.state.lock().await;
        let outcome = async {
            let _lock = self.coordinate().await?;
            self.reload(&mut st).await?;
            st.pending = Some(pending);
            self.persist(&mut st).await
        }
        .await;
        self.finish(st, outcome.map(|()| request.url))
    }
    /// Checks the callback, exchanges the code and signs in. With
    /// `request`, the caller kept it; without, the pending request `begin`
    /// stored answers the callback (once, before it expires). A callback
    /// for another state is refused with `invalid_request` and changes nothing.
    pub async fn complete(&self, callback: &str, request: Option<&AuthorizationRequest>) -> Result<Session> {
        if let Some(request) = request {
            let tokens = self.client.handle_callback(callback, request).await?;
            return self.sign_in(tokens).await;
        }
        let mut st = self.state.lock().await;
        let outcome = async {
            let lock = self.coordinate().await?;
            self.reload(&mut st).await?;
            let Some(pending) = st.pending.clone() else {
                return Err(Error::invalid_request("no sign-in is pending: call begin first (a callback completes once)"));
            };
            // Not this sign-in's callback (another state, a repeated
            // parameter, another issuer's iss): refused, nothing changes.
            self.client
                .callback_params(callback, &pending.state)
                .map_err(|e| Error::new(e.code, format!("the callback is not for the pending sign-in: {}", e.message)))?;
            // Single use: spent before the code is exchanged.
            st.pending = None;
            self.persist(&mut st).await?;
            if now_secs() >= pending.expires_at {
                return Err(Error::invalid_request("the pending sign-in expired: call begin again"));
            }
            drop(lock);
            let tokens = self.client.handle_callback(callback, &pending.request()).await?;
            let tokens = self.verified(tokens).await?;
            let _lock = self.coordinate().await?;
            self.reload(&mut st).await?;
            self.start(&mut st, tokens).await
        }
        .await;
        self.finish(st, outcome)
    }
    /// The id_token's signature checked against the provider's JWKS, and
    /// its claims merged into the token set's.
    pub(super) async fn verified(&self, mut tokens: TokenSet) -> Result<TokenSet> {
        if tokens.access_token.is_empty() {
            return Err(Error::invalid_token("a session needs an access token (the implicit id_token grant gives none)"));
        }
        if let Some(id) = &tokens.id_token {
            if self.client.endpoints().jwks_uri.is_some() {
                let claims = self.client.verify_id_token_signature(id).await?;
                let mut merged = tokens.claims.take().unwrap_or_default();
                merged.extend(claims);
                tokens.claims = Some(merged);
            }
        }
        Ok(tokens)
    }
    /// Makes `tokens` the session and saves it.
    pub(super) async fn start(&self, st: &mut State, tokens: TokenSet) -> Result<Session> {
        let session = Session::from_tokens(tokens, now_secs());
        st.loaded = true;
        st.session = Some(session.clone());
        st.last_refresh = None;
        self.attempts.fetch_add(1, Ordering::SeqCst);
        self.persist(st).await?;
        Ok(session)
    }
    /// Starts a session from a token response (e.g. `handle_callback`'s).
    /// The id_token is verified against the provider's JWKS when it has one.
    pub async fn sign_in(&self, tokens: TokenSet) -> Result<Session> {
        let tokens = self.verified(tokens).await?;
        let mut st = self.state.lock().await;
        let outcome = async {
            let _lock = self.coordinate().await?;
            // A pending sign-in another instance stored is kept; a load
            // that fails does not stop the sign-in, unless what is stored
            // was written by a newer idflow (never overwritten).
            if !st.dirty {
                if let Ok((generation, text)) = self.read(&mut st).await {
                    if let Err(e) = self.apply(&mut st, text.as_deref(), generation) {
                        if text.as_deref().and_then(newer_record).is_some() {
                            return Err(e);
                        }
                    }
                }
            }
            self.start(&mut st, tokens).await
        }
        .await;
        self.finish(st, outcome)
    }
    /// Signs out: revokes the refresh token at the provider (best effort,
    /// when it has a revocation endpoint) and clears the stored session and
    /// any pending sign-in. A stored session in a newer format is refused
    /// with `storage` and left as it is.
    pub async fn sign_out(&self) -> Result<()> {
        let mut st = self.state.lock().await;
        let outcome = self.sign_out_locked(&mut st).await;
        let (revoke, cleared) = match outcome {
            Ok(r) => r,
            Err(e) => return self.finish(st, Err(e)),
        };
        let cleared = self.finish(st, cleared);
        if let (true, Some((token, hint)), true) = (self.options.revoke_on_sign_out, revoke, self.client.endpoints().revocation.is_some()) {
            let _ = self.client.revoke(&token, Some(hint)).await;
        }
        cleared
    }
    #[allow(clippy::type_complexity)]
    async fn sign_out_locked(&self, st: &mut State) -> Result<(Option<(String, &'static str)>, Result<()>)> {
        // Sign-out goes on without the lock when it cannot be had.
        let _lock = self.coordinate().await.ok();
        if !st.dirty {
            match self.storage.load().await {
                Ok(Some(text)) => {
                    if let Some(e) = newer_record(&text) {
                        return Err(self.storage_failed(st, e));
                    }
                    // Whatever is stored goes; an unreadable copy is no reason to keep it.
                    st.session = Stored::parse(&text).ok().and_then(|s| s.session);
                }
                Ok(None) => st.session = None,
                // Keep what memory has; the clear below says whether storage works.
                Err(_) => {}
            }
            st.loaded = true;
        }
        let revoke = st.session.as_ref().map(|s| match &s.refresh_token {
            Some(t) => (t.clone(), "refresh_token"),
            None => (s.access_token.clone(), "access_token"),
        });
        let had = st.session.is_some();
        st.session = None;
        st.pending = None;
        st.last_refresh = None;
        self.attempts.fetch_add(1, Ordering::SeqCst);
        let cleared = self.persist(st).await;
        if had {
            st.events.push(SessionEvent::SignedOut { reason: SignOutReason::User, message: "signed out".into() });
        }
        Ok((revoke, cleared))
    }
}
