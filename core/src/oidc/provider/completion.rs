//! A finished authorization: the provider session, the grant, the code
//! or implicit tokens, and their delivery (`/oauth2/v1/authorize/complete`,
//! only to the browser that sent the request).

use super::authorize::{str_field, Mode};
use super::state::{AuthRequest, Authentication, Code, Delivery, Grant, Session};
use crate::oidc::params::{append_query, append_query_bytes, Params};
use super::http::{HttpRequest, HttpResponse};
use super::token::Subject;
use super::{claims, pages, split_scope, token_digest, Provider, AUTH_REQUEST_TTL, SESSION_COOKIE};
use crate::error::{Error, ErrorCode, Result};
use crate::ids::{now_secs, random_id};
use serde_json::{json, Map, Value};

/// Who signed in, and how: what a code or implicit token says about it.
pub(super) struct SignIn<'a> {
    pub user_id: &'a str,
    pub amr: Value,
    /// The flow that signed the user in, when it verified something (`acr`).
    pub acr: Option<&'a str>,
    pub auth_time: u64,
    /// When, in milliseconds, for [`crate::users::sessions`].
    pub signed_in_ms: u64,
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
    pub(super) fn of(redirect_uri: &str, mode: Mode, fields: &[(&str, &str)], state: Option<&[u8]>) -> Completion {
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

    pub(super) fn into_response(self) -> HttpResponse {
        match self {
            Completion::Redirect(url) => HttpResponse::redirect(&url),
            Completion::FormPost(action, fields) => {
                let refs: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
                pages::form_post(&action, &refs)
            }
        }
    }

    /// As kept until [`Provider::complete_page`] delivers it.
    pub(super) fn to_json(&self) -> Value {
        match self {
            Completion::Redirect(url) => json!({"url": url}),
            Completion::FormPost(action, fields) => {
                let pairs: Vec<Value> = fields.iter().map(|(k, v)| json!([k, v])).collect();
                json!({"action": action, "fields": pairs})
            }
        }
    }

    pub(super) fn from_json(v: &Value) -> Option<Completion> {
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

impl Provider {
    /// The session behind the cookie, if it is live.
    pub(super) fn live_session(&self, req: &HttpRequest) -> Result<Option<(String, Session)>> {
        let Some(sid) = req.cookie(SESSION_COOKIE) else {
            return Ok(None);
        };
        let Some(session) = self.records().get::<Session>(sid)? else {
            return Ok(None);
        };
        if self.sign_in_ended(&session.user_id, session.signed_in_ms())? {
            return Ok(None);
        }
        Ok(Some((sid.to_owned(), session)))
    }
    /// Issues the authorization response for a signed-in user: a code (and
    /// its grant) or, for the implicit flow, the tokens themselves. Returns
    /// the grant it made, which the caller adds to the session.
    pub(super) fn complete(&self, request: &AuthRequest, login: &SignIn<'_>) -> Result<(Completion, Option<String>)> {
        let user = self
            .store
            .user(login.user_id)?
            .ok_or_else(|| Error::new(ErrorCode::UserNotFound, "the signed-in user no longer exists"))?;
        if user.status == crate::user::UserStatus::Disabled {
            return Err(Error::new(ErrorCode::AccessDenied, "this user is disabled"));
        }
        let client_id = request.client_id.as_str();
        let redirect_uri = request.redirect_uri.as_str();
        let state = request.state_bytes();
        let mode = if request.form_post { Mode::FormPost } else { Mode::Query };
        let now = now_secs();
        let response_type = if request.response_type.is_empty() { "code" } else { request.response_type.as_str() };
        // claims.id_token.sub.value: only that user may answer (§5.5.1);
        // an essential acr the sign-in did not give is a failed
        // authentication (§5.5.1.1), as when its flow verified nothing.
        let (acr_values, acr_essential) = claims::requested_acr(request.claims_request.as_ref());
        let refusal = if claims::requested_sub(request.claims_request.as_ref()).is_some_and(|sub| sub != login.user_id) {
            Some(("access_denied", "the signed-in user is not the one the claims parameter names (sub)"))
        } else if acr_essential && login.acr.is_none_or(|a| !acr_values.is_empty() && !acr_values.iter().any(|v| v == a)) {
            Some((claims::UNMET_ACR, "the sign-in verified nothing that gives the essential acr the claims parameter asks for"))
        } else {
            None
        };
        if let Some((error, description)) = refusal {
            let mode = if response_type != "code" && mode == Mode::Query { Mode::Fragment } else { mode };
            let fields = [("error", error), ("error_description", description), ("iss", self.issuer.as_str())];
            return Ok((Completion::of(redirect_uri, mode, &fields, state.as_deref()), None));
        }
        if response_type == "code" {
            let code = random_id("")?;
            let grant_id = self.new_grant(request, login, now + self.project.refresh_ttl)?;
            let record = Code {
                request: request.clone(),
                auth: Authentication {
                    user_id: login.user_id.to_owned(),
                    auth_time: Some(login.auth_time),
                    amr: login.amr.clone(),
                    acr: login.acr.map(str::to_owned),
                    claims: login.custom.clone(),
                    sid: Some(login.sid.to_owned()),
                },
                grant_id: grant_id.clone(),
                exp: now + self.project.code_ttl,
            };
            // The record outlives the code by 10 minutes so that a late
            // replay is still recognised and revokes the grant.
            self.records().put(&token_digest(&code), &record, Some(now + self.project.code_ttl + 600))?;
            let fields = [("code", code.as_str()), ("iss", self.issuer.as_str())];
            return Ok((Completion::of(redirect_uri, mode, &fields, state.as_deref()), Some(grant_id)));
        }
        // Implicit: id_token (and an access token for "id_token token",
        // whose grant keeps the claims request for userinfo).
        let grant_id = match response_type {
            "id_token token" => Some(self.new_grant(request, login, now + self.project.session_ttl)?),
            _ => None,
        };
        let scopes = split_scope(Some(&request.scope));
        let subject = Subject {
            client_id,
            user: Some(&user),
            subject: &user.user_id,
            scopes: &scopes,
            auth_time: Some(login.auth_time),
            amr: Some(&login.amr),
            acr: login.acr,
            custom: &login.custom,
            claims_request: request.claims_request.as_ref(),
            nonce: request.nonce.as_deref(),
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
        Ok((Completion::of(redirect_uri, Mode::FormPost, &refs, state.as_deref()), grant_id))
    }
    /// A grant for what `login` authorized by `request` (revoked with the
    /// session, read back by userinfo for the `claims` request).
    fn new_grant(&self, request: &AuthRequest, login: &SignIn<'_>, expires_at: u64) -> Result<String> {
        let grant_id = random_id("G")?;
        let grant = Grant {
            client_id: Some(request.client_id.clone()),
            user_id: login.user_id.to_owned(),
            signed_in_ms: Some(login.signed_in_ms),
            sid: Some(login.sid.to_owned()),
            revoked: false,
            expires_at: Some(expires_at),
            claims_request: request.claims_request.clone(),
        };
        self.records().put(&grant_id, &grant, Some(expires_at))?;
        Ok(grant_id)
    }
    /// Adds a grant to a stored session, which revokes it when it ends.
    pub(super) fn add_grant_to_session(&self, sid: &str, grant_id: &str) -> Result<()> {
        if let Some(mut s) = self.records().get::<Session>(sid)? {
            s.grants.push(grant_id.to_owned());
            self.records().put(sid, &s, s.expires_at)?;
        }
        Ok(())
    }
    /// A finished flow's authorization: starts the provider session, issues
    /// the response and keeps it for [`Provider::complete_page`], which
    /// hands it only to the browser that sent the authorization request.
    /// Returns the URL that delivers it.
    pub(super) fn finish_authorization(&self, request_id: &str, auth: &crate::flow::Authenticated) -> Result<String> {
        // Taken: of flows finishing at once for one request, one answers it.
        let request = self
            .records()
            .take::<AuthRequest>(request_id)?
            .ok_or_else(|| Error::invalid_request("the authorization request expired while the flow ran, or another sign-in answered it; sign in again"))?;
        let signed_in_ms = crate::ids::now_millis();
        let now = signed_in_ms / 1000;
        let sid = random_id("S")?;
        let expires = now + self.project.refresh_ttl;
        let login = SignIn { user_id: &auth.user_id, amr: auth.amr.clone(), acr: auth.acr.as_deref(), auth_time: now, signed_in_ms, custom: auth.custom_claims.clone(), sid: &sid };
        let (completion, grant) = self.complete(&request, &login)?;
        // The session is written once, with the grant it revokes when it ends.
        let session = Session {
            user_id: auth.user_id.clone(),
            auth_time: now,
            signed_in_ms: Some(signed_in_ms),
            amr: auth.amr.clone(),
            flow: auth.flow_id.clone(),
            acr: auth.acr.clone(),
            claims: auth.custom_claims.clone(),
            grants: grant.into_iter().collect(),
            expires_at: Some(expires),
        };
        self.records().put(&sid, &session, Some(expires))?;
        let delivery = completion.to_json();
        let id = random_id("P")?;
        let record = Delivery { delivery, sid: Some(sid), browser: request.browser.clone() };
        self.records().put(&id, &record, Some(now + AUTH_REQUEST_TTL))?;
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
        let record = match self.records().get::<Delivery>(id) {
            Ok(Some(r)) => r,
            Ok(None) => return pages::error_page(400, "Expired", "this sign-in response was already delivered or has expired"),
            Err(_) => return pages::error_page(500, "Sign-in failed", "the server could not complete the request"),
        };
        if record.browser.is_none() || self.browser_digest(req) != record.browser {
            return pages::error_page(
                403,
                "Wrong browser",
                "this sign-in was started in another browser; go back to the application and sign in again from here",
            );
        }
        // Taken only now (a wrong browser must not spend it), and once:
        // of requests racing with the right cookie, one is answered.
        match self.records().take::<Delivery>(id) {
            Ok(Some(_)) => {}
            Ok(None) => return pages::error_page(400, "Expired", "this sign-in response was already delivered or has expired"),
            Err(_) => return pages::error_page(500, "Sign-in failed", "the server could not complete the request"),
        }
        let out = match Completion::from_json(&record.delivery) {
            Some(c) => c.into_response(),
            None => return pages::error_page(500, "Sign-in failed", "the server could not complete the request"),
        };
        match &record.sid {
            Some(sid) => out.with_header("Set-Cookie", self.session_cookie(sid, self.project.refresh_ttl)),
            None => out,
        }
    }
}
