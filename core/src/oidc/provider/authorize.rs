//! Authorize (OIDC Core §3.1.2, RFC 6749 §4.1, RFC 7636), the delivery of
//! a finished authorization (`/oauth2/v1/authorize/complete`, only to the
//! browser that sent the request) and the codes and implicit tokens it
//! issues.

use super::completion::{Completion, SignIn};

use crate::oidc::params::{append_query, Params};
use super::http::{HttpRequest, HttpResponse};
use super::state::AuthRequest;
use super::{claims, pages, split_scope, Application, Provider, AUTH_REQUEST_TTL};
use crate::error::ErrorCode;
use crate::ids::{now_secs, random_id};
use serde_json::{json, Value};

/// The longest value an authorize parameter may have (bytes).
pub const MAX_AUTHORIZE_PARAM: usize = 2048;

/// The longest `request` object taken, in bytes.
pub const MAX_REQUEST_OBJECT: usize = 8192;

/// How an authorization response travels (OAuth 2.0 Multiple Response
/// Type Encoding Practices §2.1, Form Post Response Mode §2).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Mode {
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
                return self.reply_error(&reply, claims::UNMET_ACR, "no flow of this application gives the essential acr the claims parameter asks for");
            }
            if params.get("flow").is_some_and(|f| !allowed_acr.iter().any(|a| a == f)) {
                return self.reply_error(&reply, claims::UNMET_ACR, "the flow parameter names a flow the essential acr does not allow");
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
        let request = AuthRequest {
            client_id: app.client_id.clone(),
            redirect_uri: redirect_uri.to_owned(),
            response_type: response_type.clone(),
            form_post: mode == Mode::FormPost,
            scope: scope.join(" "),
            state: state.map(crate::b64::encode),
            nonce: params.get("nonce").map(str::to_owned),
            code_challenge: params.get("code_challenge").map(str::to_owned),
            code_challenge_method: params.get("code_challenge").map(|_| params.get("code_challenge_method").unwrap_or("plain").to_owned()),
            max_age,
            login_hint: params.get("login_hint").map(str::to_owned),
            flow: flow.clone(),
            claims_request,
            browser: None,
        };
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
            let flow_ok = if params.get("flow").is_some() {
                s.flow == flow
            } else if !acr_values.is_empty() {
                acr_values.contains(&s.flow)
            } else {
                app.flows.contains(&s.flow)
            };
            let user_ok = [&hint_sub, &required_sub].into_iter().flatten().all(|sub| s.user_id == *sub);
            // An essential acr needs a session whose flow verified the user.
            let acr_ok = !acr_essential || s.acr.is_some();
            flow_ok && user_ok && acr_ok && !force_login
        });
        if let Some((sid, s)) = session {
            // max_age=0 always re-authenticates (OIDC Core §3.1.2.1).
            let fresh = max_age.is_none_or(|m| m > 0 && now_secs().saturating_sub(s.auth_time) <= m);
            if fresh {
                let login = SignIn {
                    user_id: &s.user_id,
                    amr: if s.amr.is_null() { json!([]) } else { s.amr.clone() },
                    acr: s.acr.as_deref(),
                    auth_time: s.auth_time,
                    signed_in_ms: s.signed_in_ms(),
                    custom: s.claims.clone(),
                    sid: &sid,
                };
                let answered = self.complete(&request, &login).and_then(|(completion, grant)| {
                    if let Some(g) = grant {
                        self.add_grant_to_session(&sid, &g)?;
                    }
                    Ok(completion)
                });
                return match answered {
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
        request.browser = Some(browser.digest.clone());
        if self.records().put(&request_id, &request, Some(now_secs() + AUTH_REQUEST_TTL)).is_err() {
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
}
