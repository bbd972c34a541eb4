//! Flows: `validateFlow`.

use crate::error::run;
use napi::bindgen_prelude::*;
use napi_derive::napi;

#[napi(object)]
pub struct FlowProblem {
    pub step: Option<String>,
    pub field: String,
    pub message: String,
}

/// Every problem in a flow's JSON text (empty when the flow is valid).
#[napi(js_name = "validateFlow")]
pub fn validate_flow(env: Env, text: String) -> napi::Result<Vec<FlowProblem>> {
    let problems = run(&env, || Ok(idflow::flow::validate_flow(&text)))?;
    Ok(problems.into_iter().map(|p| FlowProblem { step: p.step, field: p.field, message: p.message }).collect())
}

#[napi(object)]
pub struct PasswordHashOptions {
    /// KiB of memory; defaults to 19456.
    pub memory_kib: Option<u32>,
    /// Passes; defaults to 2.
    pub iterations: Option<u32>,
    /// Lanes; defaults to 1.
    pub parallelism: Option<u32>,
}

/// An Argon2id PHC string for `password` (a fresh salt each time).
#[napi(js_name = "passwordHash")]
pub fn password_hash(env: Env, password: String, options: Option<PasswordHashOptions>) -> napi::Result<String> {
    let d = idflow::credentials::password::PasswordHashing::default();
    let h = match options {
        None => d,
        Some(o) => idflow::credentials::password::PasswordHashing {
            memory_kib: o.memory_kib.unwrap_or(d.memory_kib),
            iterations: o.iterations.unwrap_or(d.iterations),
            parallelism: o.parallelism.unwrap_or(d.parallelism),
        },
    };
    run(&env, || h.hash(&password))
}

/// Whether `password` matches an Argon2, bcrypt, PBKDF2 or Django hash.
#[napi(js_name = "passwordVerify")]
pub fn password_verify(env: Env, password: String, hash: String) -> napi::Result<bool> {
    run(&env, || {
        idflow::credentials::password::check_hash(&hash)?;
        Ok(idflow::credentials::password::PasswordHashing::default().verify(&password, &hash)?.matches)
    })
}

#[napi(object)]
pub struct FlowEngineOptions {
    /// Folder that relative flow paths in the project resolve against. Defaults to ".".
    pub base_dir: Option<String>,
    /// A SQLite file; in memory when absent.
    pub database: Option<String>,
}

#[napi(object)]
pub struct UserSearch {
    /// Matches a login id, the email or the name (case-insensitive substring).
    pub text: Option<String>,
    /// `enabled` or `disabled`.
    pub status: Option<String>,
    /// Defaults to 100 (at most 1000).
    pub limit: Option<u32>,
    pub offset: Option<u32>,
}

/// A flow engine for one project; every method returns a Promise.
#[napi]
pub struct FlowEngine {
    inner: std::sync::Arc<idflow::flow::FlowEngine>,
}

type Json = serde_json::Value;
type JsonMap = serde_json::Map<String, Json>;

impl FlowEngine {
    /// Wraps an engine shared with its owner (a `Provider`).
    pub(crate) fn shared(inner: std::sync::Arc<idflow::flow::FlowEngine>) -> FlowEngine {
        FlowEngine { inner }
    }
}

#[napi]
impl FlowEngine {
    #[napi(constructor)]
    pub fn new(env: Env, project: String, key: &crate::jose::Key, options: Option<FlowEngineOptions>) -> napi::Result<FlowEngine> {
        let (base_dir, database) = options.map_or((None, None), |o| (o.base_dir, o.database));
        let signing = key.inner().clone();
        let engine = run(&env, || {
            let project = idflow::project::Project::from_json(&project, std::path::Path::new(base_dir.as_deref().unwrap_or(".")))?;
            let store = idflow::store::open(database.as_deref())?;
            project.engine(signing, store)
        })?;
        Ok(FlowEngine { inner: std::sync::Arc::new(engine) })
    }

    #[napi(ts_return_type = "Promise<Record<string, unknown>>")]
    pub fn start<'env>(&self, env: &'env Env, flow_id: String, input: Option<JsonMap>, request: Option<JsonMap>) -> napi::Result<PromiseRaw<'env, Json>> {
        let engine = self.inner.clone();
        env.spawn_future_with_callback(
            async move { Ok(engine.start(&flow_id, input.unwrap_or_default(), request.map(Json::Object)).await) },
            |env, r| r.map(|r| r.to_json()).map_err(|e| crate::error::js_err(env, e)),
        )
    }

    #[napi(ts_return_type = "Promise<Record<string, unknown>>")]
    pub fn next<'env>(
        &self,
        env: &'env Env,
        execution_id: String,
        step_id: String,
        interaction_id: String,
        input: Option<JsonMap>,
    ) -> napi::Result<PromiseRaw<'env, Json>> {
        let engine = self.inner.clone();
        env.spawn_future_with_callback(
            async move { Ok(engine.next(&execution_id, &step_id, &interaction_id, input.unwrap_or_default()).await) },
            |env, r| r.map(|r| r.to_json()).map_err(|e| crate::error::js_err(env, e)),
        )
    }

    /// Runs a users-management call on the blocking store off the JS thread.
    fn users<'env, T: Send + 'static>(
        &self,
        env: &'env Env,
        f: impl FnOnce(&dyn idflow::store::Store) -> std::result::Result<T, idflow::Error> + Send + 'static,
        to_json: impl FnOnce(T) -> Json + 'static,
    ) -> napi::Result<PromiseRaw<'env, Json>> {
        self.engine_call(env, move |e| f(e.store().as_ref()), to_json)
    }

    /// Runs `f` on the engine off the JavaScript thread.
    fn engine_call<'env, T: Send + 'static>(
        &self,
        env: &'env Env,
        f: impl FnOnce(&idflow::flow::FlowEngine) -> std::result::Result<T, idflow::Error> + Send + 'static,
        to_json: impl FnOnce(T) -> Json + 'static,
    ) -> napi::Result<PromiseRaw<'env, Json>> {
        let engine = self.inner.clone();
        env.spawn_future_with_callback(
            async move { Ok(crate::error::guard(|| f(engine.as_ref()))) },
            move |env, r| r.map(to_json).map_err(|e| crate::error::js_err(env, e)),
        )
    }

    /// Approves, from another device, the sign-in that mailed a
    /// `crossDevice` link (its `execution` and `link` query parameters).
    #[napi(js_name = "approveLink", ts_return_type = "Promise<null>")]
    pub fn approve_link<'env>(&self, env: &'env Env, execution_id: String, token: String) -> napi::Result<PromiseRaw<'env, Json>> {
        self.engine_call(env, move |e| e.approve_link(&execution_id, &token), |()| Json::Null)
    }

    #[napi(js_name = "createUser", ts_return_type = "Promise<Record<string, unknown>>")]
    pub fn create_user<'env>(&self, env: &'env Env, login_id: String, fields: Option<JsonMap>) -> napi::Result<PromiseRaw<'env, Json>> {
        self.users(env, move |s| idflow::users::create_user(s, &login_id, &fields.unwrap_or_default()), |u| u.to_json())
    }

    #[napi(js_name = "getUser", ts_return_type = "Promise<Record<string, unknown>>")]
    pub fn get_user<'env>(&self, env: &'env Env, user_id: String) -> napi::Result<PromiseRaw<'env, Json>> {
        self.users(env, move |s| idflow::users::get_user(s, &user_id), |u| u.to_json())
    }

    #[napi(js_name = "updateUser", ts_return_type = "Promise<Record<string, unknown>>")]
    pub fn update_user<'env>(&self, env: &'env Env, user_id: String, fields: JsonMap) -> napi::Result<PromiseRaw<'env, Json>> {
        self.users(env, move |s| idflow::users::update_user(s, &user_id, &fields), |u| u.to_json())
    }

    #[napi(js_name = "deleteUser", ts_return_type = "Promise<null>")]
    pub fn delete_user<'env>(&self, env: &'env Env, user_id: String) -> napi::Result<PromiseRaw<'env, Json>> {
        self.users(env, move |s| idflow::users::delete_user(s, &user_id), |()| Json::Null)
    }

    /// Sets a user's password; the project's `passwords` policy applies.
    #[napi(js_name = "setPassword", ts_return_type = "Promise<null>")]
    pub fn set_password<'env>(&self, env: &'env Env, user_id: String, password: String) -> napi::Result<PromiseRaw<'env, Json>> {
        let engine = self.inner.clone();
        env.spawn_future_with_callback(
            async move { Ok(idflow::users::password::set(engine.store().as_ref(), engine.passwords(), &user_id, password).await) },
            |env, r| r.map(|()| Json::Null).map_err(|e| crate::error::js_err(env, e)),
        )
    }

    /// Stores a hash made elsewhere (Argon2, bcrypt, PBKDF2): a migration.
    #[napi(js_name = "importPasswordHash", ts_return_type = "Promise<null>")]
    pub fn import_password_hash<'env>(&self, env: &'env Env, user_id: String, hash: String) -> napi::Result<PromiseRaw<'env, Json>> {
        self.users(env, move |s| idflow::users::password::import_hash(s, &user_id, &hash), |()| Json::Null)
    }

    #[napi(js_name = "removePassword", ts_return_type = "Promise<null>")]
    pub fn remove_password<'env>(&self, env: &'env Env, user_id: String) -> napi::Result<PromiseRaw<'env, Json>> {
        self.users(env, move |s| idflow::users::password::remove(s, &user_id), |()| Json::Null)
    }

    /// Ends every sign-in of the user made until now: provider sessions,
    /// codes, refresh tokens, and access tokens at userinfo.
    #[napi(js_name = "signOutEverywhere", ts_return_type = "Promise<null>")]
    pub fn sign_out_everywhere<'env>(&self, env: &'env Env, user_id: String) -> napi::Result<PromiseRaw<'env, Json>> {
        self.users(env, move |s| idflow::users::sessions::sign_out_everywhere(s, &user_id), |()| Json::Null)
    }

    /// Whether the user has an authenticator app (TOTP).
    #[napi(js_name = "hasTotp", ts_return_type = "Promise<boolean>")]
    pub fn has_totp<'env>(&self, env: &'env Env, user_id: String) -> napi::Result<PromiseRaw<'env, Json>> {
        self.users(env, move |s| idflow::users::totp::is_enrolled(s, &user_id), Json::Bool)
    }

    /// Removes the user's authenticator app and its recovery codes.
    #[napi(js_name = "removeTotp", ts_return_type = "Promise<null>")]
    pub fn remove_totp<'env>(&self, env: &'env Env, user_id: String) -> napi::Result<PromiseRaw<'env, Json>> {
        self.users(env, move |s| idflow::users::totp::remove(s, &user_id), |()| Json::Null)
    }

    /// How many unused recovery codes the user has.
    #[napi(js_name = "recoveryCodesLeft", ts_return_type = "Promise<number>")]
    pub fn recovery_codes_left<'env>(&self, env: &'env Env, user_id: String) -> napi::Result<PromiseRaw<'env, Json>> {
        self.users(env, move |s| idflow::users::totp::recovery_codes_left(s, &user_id), Json::from)
    }

    /// The user's passkeys: `[{id, createdAt, lastUsedAt}]`.
    #[napi(js_name = "listPasskeys", ts_return_type = "Promise<Record<string, unknown>[]>")]
    pub fn list_passkeys<'env>(&self, env: &'env Env, user_id: String) -> napi::Result<PromiseRaw<'env, Json>> {
        self.users(env, move |s| idflow::users::passkeys::list(s, &user_id), Json::Array)
    }

    /// Removes one of the user's passkeys by its id.
    #[napi(js_name = "removePasskey", ts_return_type = "Promise<null>")]
    pub fn remove_passkey<'env>(&self, env: &'env Env, user_id: String, passkey_id: String) -> napi::Result<PromiseRaw<'env, Json>> {
        self.users(env, move |s| idflow::users::passkeys::remove(s, &user_id, &passkey_id), |()| Json::Null)
    }

    #[napi(js_name = "hasPassword", ts_return_type = "Promise<boolean>")]
    pub fn has_password<'env>(&self, env: &'env Env, user_id: String) -> napi::Result<PromiseRaw<'env, Json>> {
        self.users(env, move |s| idflow::users::password::has_password(s, &user_id), Json::Bool)
    }

    /// Clears the failed sign-ins counted against `loginId` (its lockout).
    #[napi(js_name = "unlockLoginId", ts_return_type = "Promise<null>")]
    pub fn unlock_login_id<'env>(&self, env: &'env Env, login_id: String) -> napi::Result<PromiseRaw<'env, Json>> {
        self.users(env, move |s| idflow::users::password::unlock(s, &login_id), |()| Json::Null)
    }

    #[napi(js_name = "searchUsers", ts_return_type = "Promise<Record<string, unknown>[]>")]
    pub fn search_users<'env>(&self, env: &'env Env, query: Option<UserSearch>) -> napi::Result<PromiseRaw<'env, Json>> {
        let q = query.unwrap_or(UserSearch { text: None, status: None, limit: None, offset: None });
        self.users(
            env,
            move |s| {
                let status = q
                    .status
                    .map(|st| idflow::user::UserStatus::parse(&st).ok_or_else(|| idflow::Error::invalid_request("status must be \"enabled\" or \"disabled\"")))
                    .transpose()?;
                let query = idflow::user::UserQuery {
                    text: q.text,
                    status,
                    limit: q.limit.map_or(100, |l| l as usize),
                    offset: q.offset.map_or(0, |o| o as usize),
                };
                idflow::users::search_users(s, &query)
            },
            |users| Json::Array(users.iter().map(|u| u.to_json()).collect()),
        )
    }

    #[napi(js_name = "testConnector", ts_return_type = "Promise<Record<string, unknown>>")]
    pub fn test_connector<'env>(
        &self,
        env: &'env Env,
        connector_id: String,
        method: Option<String>,
        endpoint: Option<String>,
        body: Option<Json>,
    ) -> napi::Result<PromiseRaw<'env, Json>> {
        let engine = self.inner.clone();
        env.spawn_future_with_callback(
            async move {
                let method = method.unwrap_or_else(|| "GET".to_owned());
                Ok(engine.test_connector(&connector_id, &method, endpoint.as_deref().unwrap_or(""), body).await)
            },
            |env, r| r.map(|r| r.to_json()).map_err(|e| crate::error::js_err(env, e)),
        )
    }
}
