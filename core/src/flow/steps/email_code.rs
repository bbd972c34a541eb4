//! `emailCode`: proves a person reads an email address. `send` mails a
//! six-digit code (the project's `email` section) that lives
//! `ttlSeconds`; `verify` checks the code typed back, at most
//! `maxAttempts` times, and only once. A verified address marks the flow's
//! user's email verified, or signs a user in or up by it (`signIn`), and
//! adds `otp` to `amr`. Codes are bound to the execution that sent them.
//!
//! With `link`, `send` also mails a link (`{page}?execution=…&link=…`, the
//! hosted page or the flow's own page) whose token `verify` takes in place
//! of the code (`form.token`). The link works once, before the code
//! expires, and only for the execution that asked for it, so only in the
//! browser or app that owns that execution; with `crossDevice`, a link
//! opened anywhere else may approve it instead ([`FlowEngine::approve_link`]),
//! and the asking side's next `verify` (with no code) goes through.

use super::prelude::*;
use crate::flow::engine::{FlowEngine, INTERNAL};
use crate::ids::now_secs;
use crate::user::{looks_like_email, normalize_login_id};
use crate::users::provision::{self, SignUpMode};
use serde_json::json;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmailCodeAction {
    Send,
    Verify,
}

/// Where a mailed link leads.
#[derive(Debug, Clone, PartialEq)]
pub enum LinkPage {
    /// The page the execution's owner drives it from (the hosted page, or
    /// the application's `flowHostingUrl`).
    Owner,
    /// An absolute http(s) URL: the application's own page.
    Url(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct EmailCodeStep {
    pub action: EmailCodeAction,
    /// `send`: context path of the address; defaults to `form.email`.
    pub email: String,
    /// `verify`: context path of the typed code; defaults to `form.code`.
    pub code: String,
    /// `verify`: context path of a link's token; defaults to `form.token`.
    pub token: String,
    /// `send`: mail a link as well as the code.
    pub link: Option<LinkPage>,
    /// `send`: the link may approve the sign-in from another device.
    pub cross_device: bool,
    /// `verify`: sign a user in, up or either by the verified address.
    pub sign_in: Option<SignUpMode>,
    /// Seconds a code lives. Defaults to 600 (60–3600).
    pub ttl_seconds: u64,
    /// Wrong codes before the code is spent. Defaults to 5 (1–10).
    pub max_attempts: u64,
    pub next: String,
}

/// Codes sent to one execution, at most, before it must start again.
const MAX_SENDS: u64 = 5;
/// Codes sent to one address, and wrong codes typed for it, per hour, over
/// every execution: what bounds mail floods and guessing across executions.
const MAX_SENDS_PER_ADDRESS: u64 = 10;
const MAX_FAILURES_PER_ADDRESS: u64 = 10;
const HOUR: u64 = 3600;
/// The store record kinds: the pending code (by execution id), its attempt
/// counter, the execution's sends, and the per-address counters.
const CODE: &str = "email_code";
const ATTEMPTS: &str = "email_code_attempts";
/// Wrong tokens at [`FlowEngine::approve_link`], by execution.
const LINK_ATTEMPTS: &str = "email_link_attempts";
const SENDS: &str = "email_code_sends";
const ADDRESS_SENDS: &str = "email_code_address_sends";
const ADDRESS_FAILURES: &str = "email_code_address_failures";

/// A per-address counter's id (a digest: no addresses in clear) for the
/// current hour.
fn address_id(address: &str, now: u64) -> String {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, address.as_bytes());
    format!("{}:{}", crate::b64::encode(d.as_ref()), now / HOUR)
}

/// The address as given when it is a plain mail address (`user@domain`),
/// lower-cased: never a display name or anything a mailer would reroute.
fn plain_address(text: &str) -> Option<String> {
    let text = normalize_login_id(text);
    let parsed: lettre::Address = text.parse().ok()?;
    (looks_like_email(&text) && parsed.to_string() == text).then_some(text)
}

fn digest(execution_id: &str, code: &str) -> String {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, format!("{execution_id}\u{0}{code}").as_bytes());
    crate::b64::encode(d.as_ref())
}

/// Six uniformly random digits.
fn new_code() -> Result<String> {
    loop {
        let mut b = [0u8; 4];
        getrandom::fill(&mut b).map_err(|_| Error::internal("no randomness for a code"))?;
        let n = u32::from_le_bytes(b);
        // Reject the top of the range so every code is equally likely.
        if n < u32::MAX - u32::MAX % 1_000_000 {
            return Ok(format!("{:06}", n % 1_000_000));
        }
    }
}

/// An https page, or http on a loopback host (a link carries a secret).
fn link_page_ok(u: &url::Url) -> bool {
    let loopback = u.host_str().is_some_and(crate::messaging::is_loopback_host);
    u.fragment().is_none() && u.host().is_some() && (u.scheme() == "https" || (u.scheme() == "http" && loopback))
}

fn same(a: &str, b: &str) -> bool {
    crate::pkce::constant_time_eq(a.as_bytes(), b.as_bytes())
}

/// `page` with the execution and the link's token as query parameters.
fn link_url(page: &LinkPage, ctx: &crate::flow::context::Context, execution_id: &str, token: &str) -> Result<String> {
    let page = match page {
        LinkPage::Url(u) => u.clone(),
        LinkPage::Owner => ctx.get(&format!("{INTERNAL}.owner.page")).and_then(Value::as_str).map(str::to_owned).ok_or_else(|| {
            Error::config("an emailCode link of true leads to the hosted page, and this execution has none (it was not started through the provider): set link to your page's URL")
        })?,
    };
    let mut url = url::Url::parse(&page).map_err(|_| Error::config("the emailCode link page is not a URL"))?;
    url.query_pairs_mut().append_pair("execution", execution_id).append_pair("link", token);
    Ok(url.into())
}

fn invalid(message: &str) -> Error {
    Error::new(ErrorCode::InvalidCode, message)
}

impl StepType for EmailCodeStep {
    const NAME: &'static str = "emailCode";
    const ON_ERROR: bool = true;

    fn parse(p: &mut StepParser<'_>, f: &mut Fields<'_>) -> Option<Self> {
        let id = f.step.unwrap_or("").to_owned();
        let action = match f.string(p.p, "action", true).as_deref() {
            Some("send") => EmailCodeAction::Send,
            Some("verify") => EmailCodeAction::Verify,
            Some(other) => {
                p.p.add(Some(&id), "action", format!("unknown action {other:?}; expected send or verify"));
                EmailCodeAction::Send
            }
            None => EmailCodeAction::Send,
        };
        let email = f.string(p.p, "email", false).unwrap_or_else(|| "form.email".to_owned());
        check_path(p.p, &id, "email", &email);
        let code = f.string(p.p, "code", false).unwrap_or_else(|| "form.code".to_owned());
        check_path(p.p, &id, "code", &code);
        let token = f.string(p.p, "token", false).unwrap_or_else(|| "form.token".to_owned());
        check_path(p.p, &id, "token", &token);
        let link = match f.get("link") {
            None | Some(Value::Null) | Some(Value::Bool(false)) => None,
            Some(Value::Bool(true)) => Some(LinkPage::Owner),
            Some(Value::String(u)) if url::Url::parse(u).is_ok_and(|u| link_page_ok(&u)) => Some(LinkPage::Url(u.clone())),
            Some(_) => {
                p.p.add(Some(&id), "link", "must be true (the hosted page) or an absolute https URL without a fragment (http on a loopback host only)");
                None
            }
        };
        let cross_device = match f.get("crossDevice") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) if !*b || link.is_some() => *b,
            Some(Value::Bool(_)) => {
                p.p.add(Some(&id), "crossDevice", "needs link");
                false
            }
            Some(_) => {
                p.p.add(Some(&id), "crossDevice", "must be true or false");
                false
            }
        };
        let sign_in = match f.string(p.p, "signIn", false).as_deref() {
            None => None,
            Some("signIn") => Some(SignUpMode::SignIn),
            Some("signUp") => Some(SignUpMode::SignUp),
            Some("signUpOrIn") => Some(SignUpMode::SignUpOrIn),
            Some(other) => {
                p.p.add(Some(&id), "signIn", format!("unknown mode {other:?}; expected signIn, signUp or signUpOrIn"));
                None
            }
        };
        let mut number = |field: &'static str, range: std::ops::RangeInclusive<u64>, default: u64| match f.get(field) {
            None | Some(Value::Null) => default,
            Some(v) => match v.as_u64().filter(|n| range.contains(n)) {
                Some(n) => n,
                None => {
                    p.p.add(Some(&id), field, format!("must be a whole number from {} to {}", range.start(), range.end()));
                    default
                }
            },
        };
        let ttl_seconds = number("ttlSeconds", 60..=3600, 600);
        let max_attempts = number("maxAttempts", 1..=10, 5);
        let next = p.target(f, "next", true);
        Some(EmailCodeStep { action, email, code, token, link, cross_device, sign_in, ttl_seconds, max_attempts, next })
    }

    async fn run(&self, run: &mut StepRun<'_>) -> Result<Next> {
        match self.action {
            EmailCodeAction::Send => self.send(run).await?,
            EmailCodeAction::Verify => self.verify(run).await?,
        }
        Ok(Next::Step(self.next.clone()))
    }

    fn form_inputs(&self, names: &mut BTreeSet<String>) {
        for path in [&self.email, &self.code, &self.token] {
            if let Some(name) = path.strip_prefix("form.") {
                names.insert(name.to_owned());
            }
        }
    }
}

impl EmailCodeStep {
    async fn send(&self, run: &mut StepRun<'_>) -> Result<()> {
        let engine = run.engine;
        let email = engine.config.email.as_ref().ok_or_else(|| Error::config("an emailCode step needs the project's email section"))?;
        let to = match run.ctx.get(&self.email) {
            Some(Value::String(s)) => plain_address(s),
            _ => None,
        }
        .ok_or_else(|| Error::invalid_request(format!("emailCode found no plain email address (user@domain) at {}", self.email)))?;
        let store = engine.store.as_ref();
        let now = now_secs();
        // Counted apart from the code, which a verify deletes.
        if store.hit(SENDS, run.execution_id, now + engine.config.execution_ttl)? > MAX_SENDS {
            return Err(Error::new(ErrorCode::RateLimited, "too many codes were sent to this sign-in; start again"));
        }
        if store.hit(ADDRESS_SENDS, &address_id(&to, now), now - now % HOUR + HOUR)? > MAX_SENDS_PER_ADDRESS {
            return Err(Error::new(ErrorCode::RateLimited, "too many codes were sent to this address; try again later"));
        }
        let code = new_code()?;
        // The record outlives the code by an hour, so a late answer is told
        // "expired" rather than "never sent".
        let mut record = json!({"email": to, "digest": digest(run.execution_id, &code), "expiresAt": now + self.ttl_seconds, "maxAttempts": self.max_attempts});
        let link = match &self.link {
            None => None,
            Some(page) => {
                let token = crate::ids::random_id("L")?;
                record["link"] = digest(run.execution_id, &token).into();
                record["crossDevice"] = self.cross_device.into();
                Some(link_url(page, run.ctx, run.execution_id, &token)?)
            }
        };
        store.put_record(CODE, run.execution_id, &record, Some(now + self.ttl_seconds + 3600))?;
        store.delete_record(ATTEMPTS, run.execution_id)?;
        store.delete_record(LINK_ATTEMPTS, run.execution_id)?;
        let minutes = self.ttl_seconds.div_ceil(60).to_string();
        let project = engine.config.audience.clone();
        let user = run.ctx.get("user").cloned().unwrap_or(Value::Null);
        let user_fields: Vec<(&str, String)> = crate::messaging::CODE_PLACEHOLDERS
            .iter()
            .filter_map(|p| p.strip_prefix("user.").map(|f| (*p, user[f].as_str().unwrap_or_default().to_owned())))
            .collect();
        let mut vars = vec![("code", code.as_str()), ("email", to.as_str()), ("minutes", minutes.as_str()), ("project", project.as_str())];
        vars.extend(user_fields.iter().map(|(k, v)| (*k, v.as_str())));
        let connector = email.connector_id().and_then(|id| engine.connectors.get(id));
        let template = match &link {
            Some(l) => {
                vars.push(("link", l.as_str()));
                &email.link_template
            }
            None => &email.code_template,
        };
        email.send(&to, template, &vars, connector).await?;
        run.ctx.set("emailCode.sentTo", Value::String(to))?;
        Ok(())
    }

    async fn verify(&self, run: &mut StepRun<'_>) -> Result<()> {
        let engine = run.engine;
        let store = engine.store.as_ref();
        let now = now_secs();
        let token = match run.ctx.get(&self.token) {
            Some(Value::String(s)) if !s.trim().is_empty() => Some(s.trim().to_owned()),
            _ => None,
        };
        let typed = match run.ctx.get(&self.code) {
            Some(Value::String(s)) => s.trim().to_owned(),
            // A client that sent the code as a number lost its leading zeros.
            Some(Value::Number(n)) => n.as_u64().filter(|n| *n < 1_000_000).map(|n| format!("{n:06}")).unwrap_or_default(),
            _ => String::new(),
        };
        let record = store.record(CODE, run.execution_id)?.ok_or_else(|| invalid("no code was sent to this sign-in, or it was used"))?;
        let expires = record["expiresAt"].as_u64().unwrap_or(0);
        if now >= expires {
            store.delete_record(CODE, run.execution_id)?;
            return Err(Error::new(ErrorCode::ExpiredCode, "the code expired; ask for a new one"));
        }
        let address = record["email"].as_str().unwrap_or_default().to_owned();
        let approved = record["approved"] == Value::Bool(true);
        if token.is_none() && typed.is_empty() && !approved {
            // Nothing to check (the other device has not approved yet): no attempt spent.
            return Err(Error::invalid_request("type the code, or open the link we sent (then continue here)"));
        }
        // Counted before it is checked: parallel guesses cannot exceed the limit.
        let attempts = store.hit(ATTEMPTS, run.execution_id, expires)?;
        if attempts > self.max_attempts {
            store.delete_record(CODE, run.execution_id)?;
            return Err(invalid("too many wrong codes; ask for a new one"));
        }
        if store.record(ADDRESS_FAILURES, &address_id(&address, now))?.and_then(|v| v.as_u64()).unwrap_or(0) >= MAX_FAILURES_PER_ADDRESS {
            store.delete_record(CODE, run.execution_id)?;
            return Err(Error::new(ErrorCode::RateLimited, "too many wrong codes for this address; try again later"));
        }
        let matches = match &token {
            Some(t) => record["link"].as_str().is_some_and(|expected| same(&digest(run.execution_id, t), expected)),
            None if typed.is_empty() => approved,
            None => typed.len() == 6 && same(&digest(run.execution_id, &typed), record["digest"].as_str().unwrap_or_default()),
        };
        if !matches {
            store.hit(ADDRESS_FAILURES, &address_id(&address, now), now - now % HOUR + HOUR)?;
            if attempts >= self.max_attempts {
                store.delete_record(CODE, run.execution_id)?;
            }
            return Err(invalid(if token.is_some() { "the link is wrong, or a newer one was sent" } else { "the code is wrong" }));
        }
        // Single use: a second verify of this code finds nothing.
        store.delete_record(CODE, run.execution_id)?;
        store.delete_record(ATTEMPTS, run.execution_id)?;
        run.ctx.set("emailCode.verified", Value::String(address.clone()))?;
        let ctx = &mut *run.ctx;
        let current = ctx.get(&format!("{INTERNAL}.userId")).and_then(Value::as_str).map(str::to_owned);
        let mut user = match (self.sign_in, &current) {
            (Some(mode), _) => Some(provision::by_login_id(store, &address, mode, now)?),
            (None, Some(id)) => store.user(id)?.filter(|u| u.email.as_deref() == Some(address.as_str())),
            (None, None) => None,
        };
        if let Some(u) = user.as_mut() {
            if u.email.as_deref() == Some(address.as_str()) && !u.verified_email {
                // The address's owner proves it for the first time. A
                // password set before, by someone who never proved the
                // address (this execution did not sign in with it), may be
                // an account pre-registered by an attacker: it is removed,
                // so only the owner's own credentials remain.
                let signed_in_here = current.as_deref() == Some(u.user_id.as_str());
                if !signed_in_here && store.password_hash(&u.user_id)?.is_some() {
                    crate::users::password::remove(store, &u.user_id)?;
                }
                u.verified_email = true;
                u.updated_time = now;
                store.update_user(u)?;
            }
            super::sign_in_user(ctx, store, u, &["otp"])?;
        }
        Ok(())
    }
}

impl FlowEngine {
    /// Approves from another device the sign-in of `execution_id` that
    /// mailed a `crossDevice` link with `token`: the asking side's next
    /// `verify` without a code goes through. A link without `crossDevice`
    /// is refused here with `access_denied` (it works only for the
    /// execution's owner, through `verify`), and stays usable there.
    pub fn approve_link(&self, execution_id: &str, token: &str) -> Result<()> {
        let store = self.store.as_ref();
        let now = now_secs();
        let unknown = || invalid("no link was sent to this sign-in, or it was used");
        let mut record = store.record(CODE, execution_id)?.ok_or_else(unknown)?;
        let expires = record["expiresAt"].as_u64().unwrap_or(0);
        if now >= expires {
            store.delete_record(CODE, execution_id)?;
            return Err(Error::new(ErrorCode::ExpiredCode, "the link expired; ask for a new one"));
        }
        let expected = record["link"].as_str().map(str::to_owned).ok_or_else(unknown)?;
        // Not a secret, so not an attempt: a same-browser link opened
        // elsewhere spends nothing.
        if record["crossDevice"] != Value::Bool(true) {
            return Err(Error::new(ErrorCode::AccessDenied, "this link signs in only in the browser that asked for it: open it there"));
        }
        let m = record.as_object_mut().ok_or_else(|| Error::internal("a stored code is not an object"))?;
        // Wrong tokens here have a counter of their own, and using it up ends
        // the link alone: whoever knows the execution id cannot kill the code.
        if store.hit(LINK_ATTEMPTS, execution_id, expires)? > m.get("maxAttempts").and_then(Value::as_u64).unwrap_or(5) {
            m.remove("link");
            store.put_record(CODE, execution_id, &record, Some(expires + 3600))?;
            return Err(invalid("too many wrong links; type the code, or ask for a new link"));
        }
        if !same(&digest(execution_id, token.trim()), &expected) {
            return Err(invalid("the link is wrong, or a newer one was sent"));
        }
        // Used up here: the approval stands in for it.
        m.remove("link");
        m.insert("approved".into(), Value::Bool(true));
        store.put_record(CODE, execution_id, &record, Some(expires + 3600))?;
        Ok(())
    }
}
