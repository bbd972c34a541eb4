//! Flows: `validateFlow`.

pub use idflow::flow::FlowProblem;

/// Every problem in a flow's JSON text (empty when the flow is valid).
#[uniffi::export]
pub fn validate_flow(text: String) -> Vec<FlowProblem> {
    idflow::flow::validate_flow(&text)
}

/// A flow engine for one project. JSON (inputs, answers) crosses as text.
/// Close it (Kotlin `close()` / `use {}`) to free it early.
#[derive(uniffi::Object)]
pub struct FlowEngine {
    inner: std::sync::Arc<idflow::flow::FlowEngine>,
}

fn json_object(text: Option<String>, what: &str) -> Result<serde_json::Map<String, serde_json::Value>, idflow::Error> {
    text.map_or_else(|| Ok(serde_json::Map::new()), |t| crate::json_object(&t, what))
}

#[uniffi::export(async_runtime = "tokio")]
impl FlowEngine {
    /// `project` is the project file's JSON text; `database` a SQLite file
    /// (in memory when absent).
    #[uniffi::constructor(default(base_dir = ".", database = None))]
    pub fn new(
        project: String,
        key: std::sync::Arc<crate::jose::Key>,
        base_dir: String,
        database: Option<String>,
    ) -> Result<std::sync::Arc<FlowEngine>, crate::IdflowError> {
        let signing = key.inner().clone();
        crate::error::guard(|| {
            let project = idflow::project::Project::from_json(&project, std::path::Path::new(&base_dir))?;
            let store = idflow::store::open(database.as_deref())?;
            Ok(std::sync::Arc::new(FlowEngine { inner: std::sync::Arc::new(project.engine(signing, store)?) }))
        })
    }

    /// Starts a flow; returns the flow API's answer as JSON text.
    #[uniffi::method(default(input = None))]
    pub async fn start(&self, flow_id: String, input: Option<String>) -> Result<String, crate::IdflowError> {
        let input = json_object(input, "input")?;
        Ok(self.inner.start(&flow_id, input, None).await?.to_json().to_string())
    }

    /// Answers the waiting screen; returns the flow API's answer as JSON text.
    #[uniffi::method(default(input = None))]
    pub async fn next(
        &self,
        execution_id: String,
        step_id: String,
        interaction_id: String,
        input: Option<String>,
    ) -> Result<String, crate::IdflowError> {
        let input = json_object(input, "input")?;
        Ok(self.inner.next(&execution_id, &step_id, &interaction_id, input).await?.to_json().to_string())
    }

    /// Creates a user (`fields`: JSON text with the `/v1` names); returns it as JSON text.
    #[uniffi::method(default(fields = None))]
    pub async fn create_user(&self, login_id: String, fields: Option<String>) -> Result<String, crate::IdflowError> {
        let fields = json_object(fields, "fields")?;
        let store = self.inner.store().clone();
        crate::error::guard(|| Ok(idflow::users::create_user(store.as_ref(), &login_id, &fields)?.to_json().to_string()))
    }

    pub async fn get_user(&self, user_id: String) -> Result<String, crate::IdflowError> {
        let store = self.inner.store().clone();
        crate::error::guard(|| Ok(idflow::users::get_user(store.as_ref(), &user_id)?.to_json().to_string()))
    }

    pub async fn update_user(&self, user_id: String, fields: String) -> Result<String, crate::IdflowError> {
        let fields = json_object(Some(fields), "fields")?;
        let store = self.inner.store().clone();
        crate::error::guard(|| Ok(idflow::users::update_user(store.as_ref(), &user_id, &fields)?.to_json().to_string()))
    }

    pub async fn delete_user(&self, user_id: String) -> Result<(), crate::IdflowError> {
        let store = self.inner.store().clone();
        crate::error::guard(|| idflow::users::delete_user(store.as_ref(), &user_id))
    }

    /// Sets a user's password; the project's `passwords` policy applies.
    pub async fn set_password(&self, user_id: String, password: String) -> Result<(), crate::IdflowError> {
        Ok(idflow::users::password::set(self.inner.store().as_ref(), self.inner.passwords(), &user_id, password).await?)
    }

    /// Stores a hash made elsewhere (Argon2, bcrypt, PBKDF2): a migration.
    pub async fn import_password_hash(&self, user_id: String, hash: String) -> Result<(), crate::IdflowError> {
        let store = self.inner.store().clone();
        crate::error::guard(|| idflow::users::password::import_hash(store.as_ref(), &user_id, &hash))
    }

    pub async fn remove_password(&self, user_id: String) -> Result<(), crate::IdflowError> {
        let store = self.inner.store().clone();
        crate::error::guard(|| idflow::users::password::remove(store.as_ref(), &user_id))
    }

    /// Approves, from another device, the sign-in that mailed a
    /// `crossDevice` link (its `execution` and `link` query parameters).
    pub async fn approve_link(&self, execution_id: String, token: String) -> Result<(), crate::IdflowError> {
        let engine = self.inner.clone();
        crate::error::guard(|| engine.approve_link(&execution_id, &token))
    }

    /// Ends every sign-in of the user made until now: provider sessions,
    /// codes, refresh tokens, and access tokens at userinfo.
    pub async fn sign_out_everywhere(&self, user_id: String) -> Result<(), crate::IdflowError> {
        let store = self.inner.store().clone();
        crate::error::guard(|| idflow::users::sessions::sign_out_everywhere(store.as_ref(), &user_id))
    }

    /// Whether the user has an authenticator app (TOTP).
    pub async fn has_totp(&self, user_id: String) -> Result<bool, crate::IdflowError> {
        let store = self.inner.store().clone();
        crate::error::guard(|| idflow::users::totp::is_enrolled(store.as_ref(), &user_id))
    }

    /// Removes the user's authenticator app and its recovery codes.
    pub async fn remove_totp(&self, user_id: String) -> Result<(), crate::IdflowError> {
        let store = self.inner.store().clone();
        crate::error::guard(|| idflow::users::totp::remove(store.as_ref(), &user_id))
    }

    /// How many unused recovery codes the user has.
    pub async fn recovery_codes_left(&self, user_id: String) -> Result<u32, crate::IdflowError> {
        let store = self.inner.store().clone();
        crate::error::guard(|| idflow::users::totp::recovery_codes_left(store.as_ref(), &user_id).map(|n| u32::try_from(n).unwrap_or(u32::MAX)))
    }

    /// The user's passkeys as JSON: `[{id, createdAt, lastUsedAt}]`.
    pub async fn list_passkeys(&self, user_id: String) -> Result<String, crate::IdflowError> {
        let store = self.inner.store().clone();
        crate::error::guard(|| idflow::users::passkeys::list(store.as_ref(), &user_id).map(|k| serde_json::Value::Array(k).to_string()))
    }

    /// Removes one of the user's passkeys by its id.
    pub async fn remove_passkey(&self, user_id: String, passkey_id: String) -> Result<(), crate::IdflowError> {
        let store = self.inner.store().clone();
        crate::error::guard(|| idflow::users::passkeys::remove(store.as_ref(), &user_id, &passkey_id))
    }

    pub async fn has_password(&self, user_id: String) -> Result<bool, crate::IdflowError> {
        let store = self.inner.store().clone();
        crate::error::guard(|| idflow::users::password::has_password(store.as_ref(), &user_id))
    }

    /// Clears the failed sign-ins counted against `login_id` (its lockout).
    pub async fn unlock_login_id(&self, login_id: String) -> Result<(), crate::IdflowError> {
        let store = self.inner.store().clone();
        crate::error::guard(|| idflow::users::password::unlock(store.as_ref(), &login_id))
    }

    /// Users matching `text` (login id, email or name); a JSON array.
    #[uniffi::method(default(text = None, status = None, limit = 100, offset = 0))]
    pub async fn search_users(
        &self,
        text: Option<String>,
        status: Option<String>,
        limit: u32,
        offset: u32,
    ) -> Result<String, crate::IdflowError> {
        let store = self.inner.store().clone();
        crate::error::guard(|| {
            let status = status
                .map(|s| idflow::user::UserStatus::parse(&s).ok_or_else(|| idflow::Error::invalid_request("status must be \"enabled\" or \"disabled\"")))
                .transpose()?;
            let query = idflow::user::UserQuery { text, status, limit: limit as usize, offset: offset as usize };
            let users = idflow::users::search_users(store.as_ref(), &query)?;
            Ok(serde_json::Value::Array(users.iter().map(|u| u.to_json()).collect()).to_string())
        })
    }

    /// The connector test panel, as JSON text.
    #[uniffi::method(default(method = "GET", endpoint = ""))]
    pub async fn test_connector(&self, connector_id: String, method: String, endpoint: String) -> Result<String, crate::IdflowError> {
        Ok(self.inner.test_connector(&connector_id, &method, &endpoint, None).await?.to_json().to_string())
    }
}
