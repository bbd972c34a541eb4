//! Access tokens and refresh: single flight in a manager, one refresh at
//! a time across managers and processes, adopting a session another
//! instance renewed, and `invalid_grant` signing out.

use super::*;

impl SessionManager {
    /// An access token good for at least the refresh margin when the
    /// provider allows: refreshed first when due (single flight).
    pub async fn access_token(&self) -> Result<String> {
        let seen = self.attempts.load(Ordering::SeqCst);
        let mut st = self.state.lock().await;
        let outcome = self.access_token_locked(&mut st, seen).await;
        self.finish(st, outcome)
    }
    async fn access_token_locked(&self, st: &mut State, seen: u64) -> Result<String> {
        let entry = self.entry(st);
        self.ready(st).await?;
        let (token, due, expired, refreshable) = match &st.session {
            None => return Err(signed_out()),
            Some(s) => (s.access_token.clone(), self.due(s), s.expired_at(now_secs()), s.refresh_token.is_some()),
        };
        if !due {
            return Ok(token);
        }
        if !refreshable {
            return if expired {
                Err(Error::new(ErrorCode::LoginRequired, "the session expired and has no refresh token: sign in again"))
            } else {
                Ok(token)
            };
        }
        let outcome = self.refresh_once(st, seen, false, entry).await;
        match (outcome, &st.session) {
            (Ok(()), Some(s)) => Ok(s.access_token.clone()),
            (Ok(()), None) => Err(signed_out()),
            // Still unexpired: hand it out and retry the refresh next time.
            (Err(e), Some(s)) if e.code != ErrorCode::Storage && !s.expired_at(now_secs()) => Ok(s.access_token.clone()),
            (Err(e), _) => Err(e),
        }
    }
    /// Refreshes now (single flight: callers waiting meanwhile share the
    /// outcome; a session another instance renewed meanwhile is adopted).
    /// `invalid_grant` signs out; other failures keep the session.
    pub async fn refresh(&self) -> Result<Session> {
        let seen = self.attempts.load(Ordering::SeqCst);
        let mut st = self.state.lock().await;
        let outcome = async {
            let entry = self.entry(&st);
            self.ready(&mut st).await?;
            self.refresh_once(&mut st, seen, true, entry).await?;
            st.session.clone().ok_or_else(signed_out)
        }
        .await;
        self.finish(st, outcome)
    }
    /// Single flight: when a refresh ended while this caller waited for the
    /// lock (the attempt count moved past `seen`), its outcome is shared;
    /// otherwise this caller refreshes.
    async fn refresh_once(&self, st: &mut State, seen: u64, forced: bool, entry: Entry) -> Result<()> {
        if let Some(outcome) = st.last_refresh.as_ref().filter(|_| self.attempts.load(Ordering::SeqCst) != seen) {
            return outcome.clone();
        }
        let outcome = self.refresh_coordinated(st, forced, entry).await;
        st.last_refresh = Some(outcome.clone());
        // Counted when it ends, under the lock: whoever called before this
        // point and is waiting shares this outcome.
        self.attempts.fetch_add(1, Ordering::SeqCst);
        outcome
    }
    /// Under the client's lock: reads the storage again and adopts what
    /// another instance renewed (a forced refresh is then done; an
    /// unforced one only refreshes when the adopted token is due too).
    async fn refresh_coordinated(&self, st: &mut State, forced: bool, entry: Entry) -> Result<()> {
        let _lock = self.coordinate().await?;
        let had = st.session.is_some();
        self.reload(st).await?;
        let renewed_here = self.shared.renewals.load(Ordering::SeqCst) != entry.renewals;
        match (&entry.token, &st.session) {
            (_, None) => {
                if had {
                    st.events.push(signed_out_elsewhere());
                }
                return Err(signed_out());
            }
            // Renewed by another instance since this call began: what is
            // stored differs from what this manager held, or (a manager
            // that held nothing yet) another manager of this client in the
            // process renewed meanwhile. Adopted.
            (held, Some(s)) if held.as_ref().map_or(renewed_here, |b| *b != s.access_token) => {
                st.events.push(SessionEvent::Refreshed(s.clone()));
                if forced || !self.due(s) {
                    return Ok(());
                }
            }
            _ => {}
        }
        self.refresh_with_provider(st).await
    }
    async fn refresh_with_provider(&self, st: &mut State) -> Result<()> {
        let Some(current) = st.session.clone() else { return Err(signed_out()) };
        let Some(refresh_token) = current.refresh_token.clone() else {
            return Err(Error::new(ErrorCode::LoginRequired, "the session has no refresh token: sign in again"));
        };
        match self.client.refresh(&refresh_token, None).await {
            Ok(tokens) => {
                self.renewed(st, current, tokens)?;
                if let Some(s) = &st.session {
                    st.events.push(SessionEvent::Refreshed(s.clone()));
                }
                self.persist(st).await?;
                // Counted once stored: a renewal the storage lacks is none to adopt.
                self.shared.renewals.fetch_add(1, Ordering::SeqCst);
                Ok(())
            }
            Err(e) if e.code == ErrorCode::InvalidGrant => {
                // One more look: a process that does not share the lock may
                // have renewed the session with this very token.
                if self.reload(st).await.is_ok() {
                    if let Some(s) = st.session.as_ref().filter(|s| s.access_token != current.access_token) {
                        st.events.push(SessionEvent::Refreshed(s.clone()));
                        return Ok(());
                    }
                }
                let message = format!("signed out: the provider refused the refresh token ({})", e.message);
                st.session = None;
                // The error the caller sees is invalid_grant even when the clear fails.
                let _ = self.persist(st).await;
                st.events.push(SessionEvent::SignedOut { reason: SignOutReason::RefreshRefused, message: message.clone() });
                Err(Error::new(ErrorCode::InvalidGrant, message))
            }
            Err(e) => Err(e),
        }
    }
    pub(super) fn renewed(&self, st: &mut State, current: Session, tokens: TokenSet) -> Result<()> {
        let mut next = Session::from_tokens(tokens, now_secs());
        // OIDC Core §12.2: a refreshed id_token is for the same user.
        if next.id_token.is_some() && !next.claims.is_empty() && next.subject() != current.subject() {
            return Err(Error::invalid_token("the refreshed id_token is for another user"));
        }
        if next.refresh_token.is_none() {
            next.refresh_token = current.refresh_token;
        }
        if next.id_token.is_none() || next.claims.is_empty() {
            next.id_token = next.id_token.or(current.id_token);
            next.claims = current.claims;
        }
        if next.scope.is_none() {
            next.scope = current.scope;
        }
        st.session = Some(next);
        Ok(())
    }
}
