//! The one public error type of idflow.
//!
//! Every failure anywhere in the core is an [`Error`]: a stable, closed
//! [`ErrorCode`] (the same snake_case string in every language binding) plus a
//! human message. Messages name the wire parameter or field that was wrong and
//! what was expected; they never contain tokens, secrets, codes or full URLs
//! with query strings. Codes are API: add, never rename.

use std::fmt;

/// The closed set of error codes. `as_str` gives the stable wire name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorCode {
    // OAuth 2.0 / OpenID Connect (RFC 6749 §5.2, OIDC Core §3.1.2.6)
    InvalidRequest,
    InvalidClient,
    InvalidGrant,
    UnauthorizedClient,
    UnsupportedGrantType,
    InvalidScope,
    AccessDenied,
    LoginRequired,
    ConsentRequired,
    // Tokens and keys
    InvalidToken,
    ExpiredToken,
    ImmatureToken,
    InvalidSignature,
    InvalidIssuer,
    InvalidAudience,
    UnsupportedAlgorithm,
    InvalidKey,
    // Flows
    FlowNotFound,
    InvalidFlow,
    StepFailed,
    ConnectorFailed,
    ConnectorTimeout,
    UserNotFound,
    UserExists,
    /// A sign-in's login id or password (or code) is wrong.
    InvalidCredentials,
    /// Too many failed sign-ins: the login id is locked for a while.
    UserLocked,
    /// A new password breaks the project's password policy.
    WeakPassword,
    /// A one-time code is wrong, used, or was never sent.
    InvalidCode,
    /// A one-time code expired.
    ExpiredCode,
    // Abuse
    RateLimited,
    // Everything else
    Config,
    Network,
    Storage,
    Internal,
}

/// The family an error code belongs to; bindings map families to exception
/// subclasses (Python) so callers can catch a whole group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorFamily {
    OAuth,
    Token,
    Flow,
    Config,
    Network,
    Storage,
    Internal,
}

impl ErrorFamily {
    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorFamily::OAuth => "oauth",
            ErrorFamily::Token => "token",
            ErrorFamily::Flow => "flow",
            ErrorFamily::Config => "config",
            ErrorFamily::Network => "network",
            ErrorFamily::Storage => "storage",
            ErrorFamily::Internal => "internal",
        }
    }
}

impl ErrorCode {
    /// Every code, in declaration order.
    pub const ALL: [ErrorCode; 34] = [
        ErrorCode::InvalidRequest,
        ErrorCode::InvalidClient,
        ErrorCode::InvalidGrant,
        ErrorCode::UnauthorizedClient,
        ErrorCode::UnsupportedGrantType,
        ErrorCode::InvalidScope,
        ErrorCode::AccessDenied,
        ErrorCode::LoginRequired,
        ErrorCode::ConsentRequired,
        ErrorCode::InvalidToken,
        ErrorCode::ExpiredToken,
        ErrorCode::ImmatureToken,
        ErrorCode::InvalidSignature,
        ErrorCode::InvalidIssuer,
        ErrorCode::InvalidAudience,
        ErrorCode::UnsupportedAlgorithm,
        ErrorCode::InvalidKey,
        ErrorCode::FlowNotFound,
        ErrorCode::InvalidFlow,
        ErrorCode::StepFailed,
        ErrorCode::ConnectorFailed,
        ErrorCode::ConnectorTimeout,
        ErrorCode::UserNotFound,
        ErrorCode::UserExists,
        ErrorCode::InvalidCredentials,
        ErrorCode::UserLocked,
        ErrorCode::WeakPassword,
        ErrorCode::InvalidCode,
        ErrorCode::ExpiredCode,
        ErrorCode::RateLimited,
        ErrorCode::Config,
        ErrorCode::Network,
        ErrorCode::Storage,
        ErrorCode::Internal,
    ];

    /// The stable snake_case name used on the wire and in every binding.
    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::InvalidClient => "invalid_client",
            ErrorCode::InvalidGrant => "invalid_grant",
            ErrorCode::UnauthorizedClient => "unauthorized_client",
            ErrorCode::UnsupportedGrantType => "unsupported_grant_type",
            ErrorCode::InvalidScope => "invalid_scope",
            ErrorCode::AccessDenied => "access_denied",
            ErrorCode::LoginRequired => "login_required",
            ErrorCode::ConsentRequired => "consent_required",
            ErrorCode::InvalidToken => "invalid_token",
            ErrorCode::ExpiredToken => "expired_token",
            ErrorCode::ImmatureToken => "immature_token",
            ErrorCode::InvalidSignature => "invalid_signature",
            ErrorCode::InvalidIssuer => "invalid_issuer",
            ErrorCode::InvalidAudience => "invalid_audience",
            ErrorCode::UnsupportedAlgorithm => "unsupported_algorithm",
            ErrorCode::InvalidKey => "invalid_key",
            ErrorCode::FlowNotFound => "flow_not_found",
            ErrorCode::InvalidFlow => "invalid_flow",
            ErrorCode::StepFailed => "step_failed",
            ErrorCode::ConnectorFailed => "connector_failed",
            ErrorCode::ConnectorTimeout => "connector_timeout",
            ErrorCode::UserNotFound => "user_not_found",
            ErrorCode::UserExists => "user_exists",
            ErrorCode::InvalidCredentials => "invalid_credentials",
            ErrorCode::UserLocked => "user_locked",
            ErrorCode::WeakPassword => "weak_password",
            ErrorCode::InvalidCode => "invalid_code",
            ErrorCode::ExpiredCode => "expired_code",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::Config => "config",
            ErrorCode::Network => "network",
            ErrorCode::Storage => "storage",
            ErrorCode::Internal => "internal",
        }
    }

    /// Parses a wire name back into a code.
    pub fn parse(name: &str) -> Option<ErrorCode> {
        ErrorCode::ALL.iter().copied().find(|c| c.as_str() == name)
    }

    pub const fn family(self) -> ErrorFamily {
        use ErrorCode::*;
        match self {
            InvalidRequest | InvalidClient | InvalidGrant | UnauthorizedClient
            | UnsupportedGrantType | InvalidScope | AccessDenied | LoginRequired
            | ConsentRequired | RateLimited => ErrorFamily::OAuth,
            InvalidToken | ExpiredToken | ImmatureToken | InvalidSignature | InvalidIssuer
            | InvalidAudience | UnsupportedAlgorithm | InvalidKey => ErrorFamily::Token,
            FlowNotFound | InvalidFlow | StepFailed | ConnectorFailed | ConnectorTimeout
            | UserNotFound | UserExists | InvalidCredentials | UserLocked | WeakPassword
            | InvalidCode | ExpiredCode => ErrorFamily::Flow,
            Config => ErrorFamily::Config,
            Network => ErrorFamily::Network,
            Storage => ErrorFamily::Storage,
            Internal => ErrorFamily::Internal,
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An idflow error: a stable code and a message for humans.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub code: ErrorCode,
    pub message: String,
}

impl Error {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Error { code, message: message.into() }
    }
    pub fn code(&self) -> ErrorCode {
        self.code
    }
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.message)
    }
}

impl std::error::Error for Error {}

/// Runs `f`; a panic inside becomes an `internal` error. Every binding runs
/// its calls into the core through this, so that no panic unwinds across
/// the FFI boundary into Python, Node or the JVM and Swift.
pub fn guard<T>(f: impl FnOnce() -> Result<T>) -> Result<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(|_| Err(Error::internal("idflow panicked; this is a bug")))
}

/// `Result` with idflow's error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

macro_rules! ctor {
    ($($name:ident => $code:ident),* $(,)?) => {
        impl Error {
            $(
                #[doc = concat!("An error with code `", stringify!($name), "`.")]
                pub fn $name(message: impl Into<String>) -> Self {
                    Error::new(ErrorCode::$code, message)
                }
            )*
        }
    };
}

ctor! {
    invalid_request => InvalidRequest,
    invalid_token => InvalidToken,
    invalid_signature => InvalidSignature,
    invalid_key => InvalidKey,
    unsupported_algorithm => UnsupportedAlgorithm,
    network => Network,
    internal => Internal,
    config => Config,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for code in ErrorCode::ALL {
            assert!(seen.insert(code.as_str()));
            assert_eq!(ErrorCode::parse(code.as_str()), Some(code));
        }
        assert_eq!(ErrorCode::parse("nope"), None);
    }

    #[test]
    fn matches_the_shared_error_code_list() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/vectors/error_codes.json");
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let doc: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        let listed = doc["codes"].as_array().cloned().unwrap_or_default();
        assert_eq!(listed.len(), ErrorCode::ALL.len(), "error_codes.json lists every code");
        for (entry, code) in listed.iter().zip(ErrorCode::ALL) {
            assert_eq!(entry["code"], code.as_str());
            assert_eq!(entry["family"], code.family().as_str());
        }
    }
}
