//! `SessionManager`: the core session manager over the app's storage.
//! `index.js` turns the storage object (`load`, `save`, `clear`, sync or
//! async) into one function `([op, value]) => Promise<string | null>`.

use crate::error::{js_err, run};
use idflow::oidc::client::{AuthorizationParams, AuthorizationRequest, TokenSet};
use idflow::oidc::client::session::{self, SessionOptions, StorageFuture};
use idflow::{Error, ErrorCode};
use napi::bindgen_prelude::*;
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi_derive::napi;
use serde_json::{Map, Value};
use std::sync::Arc;

/// `([op, value]) => Promise<string | null>` (the pair arrives as one
/// array), callable from any thread; weak,
/// so a held session manager does not keep the process alive.
type StorageFn = ThreadsafeFunction<(String, Option<String>), Promise<Option<String>>, (String, Option<String>), Status, false, true>;

struct JsStorage(Arc<StorageFn>);

impl JsStorage {
    fn call(&self, op: &'static str, value: Option<String>) -> StorageFuture<'static, Option<String>> {
        let f = self.0.clone();
        Box::pin(async move {
            let failed = |e: napi::Error| Error::new(ErrorCode::Storage, format!("the storage's {op}() failed: {}", e.reason));
            let promise = f.call_async((op.to_owned(), value)).await.map_err(failed)?;
            promise.await.map_err(failed)
        })
    }
}

impl session::SessionStorage for JsStorage {
    fn load(&self) -> StorageFuture<'_, Option<String>> {
        self.call("load", None)
    }
    fn save(&self, text: String) -> StorageFuture<'_, ()> {
        let f = self.call("save", Some(text));
        Box::pin(async move { f.await.map(|_| ()) })
    }
    fn clear(&self) -> StorageFuture<'_, ()> {
        let f = self.call("clear", None);
        Box::pin(async move { f.await.map(|_| ()) })
    }
}

/// `(event) => void`, weak; `index.js` emits it as the event named by
/// its `type`.
type ListenerFn = ThreadsafeFunction<Value, (), Value, Status, false, true>;

struct JsListener(ListenerFn);

impl session::SessionListener for JsListener {
    fn on_event(&self, event: &session::SessionEvent) {
        self.0.call(event.to_json(), ThreadsafeFunctionCallMode::NonBlocking);
    }
}

fn session_json(s: session::Session) -> Value {
    s.to_json()
}

/// A signed-in user's session (wrapped by `SessionManager` in index.js).
#[napi(js_name = "SessionManager")]
pub struct NativeSessionManager {
    inner: Arc<session::SessionManager>,
}

#[napi]
impl NativeSessionManager {
    #[napi(constructor)]
    pub fn new(env: Env, client: &crate::oidc::OidcClient, storage: StorageFn, options: Option<Map<String, Value>>) -> napi::Result<Self> {
        let options = run(&env, || SessionOptions::from_json(&options.unwrap_or_default()))?;
        let inner = session::SessionManager::new(client.core(), Arc::new(JsStorage(Arc::new(storage))), options);
        Ok(NativeSessionManager { inner: Arc::new(inner) })
    }

    /// Starts a sign-in: the URL to open; the pending request is kept in the storage.
    #[napi(ts_return_type = "Promise<string>")]
    pub fn begin<'env>(&self, env: &'env Env, options: Option<Map<String, Value>>) -> napi::Result<PromiseRaw<'env, Value>> {
        let params = run(env, || AuthorizationParams::from_json(&options.unwrap_or_default()))?;
        let m = self.inner.clone();
        env.spawn_future_with_callback(async move { Ok(m.begin(&params).await) }, |env, r| r.map(Value::String).map_err(|e| js_err(env, e)))
    }

    /// Without `request`, the pending request `begin` stored is used once.
    #[napi(ts_return_type = "Promise<Session>")]
    pub fn complete<'env>(&self, env: &'env Env, callback: String, request: Option<Map<String, Value>>) -> napi::Result<PromiseRaw<'env, Value>> {
        let request = run(env, || request.map(|r| AuthorizationRequest::from_json(&r)).transpose())?;
        let m = self.inner.clone();
        env.spawn_future_with_callback(async move { Ok(m.complete(&callback, request.as_ref()).await) }, |env, r| {
            r.map(session_json).map_err(|e| js_err(env, e))
        })
    }

    #[napi(js_name = "setListener")]
    pub fn set_listener(&self, listener: Option<ListenerFn>) {
        self.inner.set_listener(listener.map(|l| Arc::new(JsListener(l)) as Arc<dyn session::SessionListener>));
    }

    #[napi(js_name = "signIn", ts_return_type = "Promise<Session>")]
    pub fn sign_in<'env>(&self, env: &'env Env, tokens: Map<String, Value>) -> napi::Result<PromiseRaw<'env, Value>> {
        let tokens = run(env, || TokenSet::from_json(&tokens))?;
        let m = self.inner.clone();
        env.spawn_future_with_callback(async move { Ok(m.sign_in(tokens).await) }, |env, r| {
            r.map(session_json).map_err(|e| js_err(env, e))
        })
    }

    #[napi(ts_return_type = "Promise<Session | null>")]
    pub fn session<'env>(&self, env: &'env Env) -> napi::Result<PromiseRaw<'env, Value>> {
        let m = self.inner.clone();
        env.spawn_future_with_callback(async move { Ok(m.session().await) }, |env, r| {
            r.map(|s| s.map_or(Value::Null, session_json)).map_err(|e| js_err(env, e))
        })
    }

    #[napi(ts_return_type = "Promise<string>")]
    pub fn status<'env>(&self, env: &'env Env) -> napi::Result<PromiseRaw<'env, Value>> {
        let m = self.inner.clone();
        env.spawn_future_with_callback(async move { Ok(m.status().await) }, |env, r| {
            r.map(|s| Value::from(s.as_str())).map_err(|e| js_err(env, e))
        })
    }

    #[napi(js_name = "isValid", ts_return_type = "Promise<boolean>")]
    pub fn is_valid<'env>(&self, env: &'env Env) -> napi::Result<PromiseRaw<'env, Value>> {
        let m = self.inner.clone();
        env.spawn_future_with_callback(async move { Ok(m.is_valid().await) }, |env, r| r.map(Value::Bool).map_err(|e| js_err(env, e)))
    }

    #[napi(js_name = "accessToken", ts_return_type = "Promise<string>")]
    pub fn access_token<'env>(&self, env: &'env Env) -> napi::Result<PromiseRaw<'env, Value>> {
        let m = self.inner.clone();
        env.spawn_future_with_callback(async move { Ok(m.access_token().await) }, |env, r| r.map(Value::String).map_err(|e| js_err(env, e)))
    }

    #[napi(ts_return_type = "Promise<Session>")]
    pub fn refresh<'env>(&self, env: &'env Env) -> napi::Result<PromiseRaw<'env, Value>> {
        let m = self.inner.clone();
        env.spawn_future_with_callback(async move { Ok(m.refresh().await) }, |env, r| {
            r.map(session_json).map_err(|e| js_err(env, e))
        })
    }

    #[napi(js_name = "signOut", ts_return_type = "Promise<null>")]
    pub fn sign_out<'env>(&self, env: &'env Env) -> napi::Result<PromiseRaw<'env, Value>> {
        let m = self.inner.clone();
        env.spawn_future_with_callback(async move { Ok(m.sign_out().await) }, |env, r| r.map(|_| Value::Null).map_err(|e| js_err(env, e)))
    }
}
