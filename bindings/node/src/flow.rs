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
        let store = self.inner.store().clone();
        env.spawn_future_with_callback(
            async move { Ok(crate::error::guard(|| f(store.as_ref()))) },
            move |env, r| r.map(to_json).map_err(|e| crate::error::js_err(env, e)),
        )
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
