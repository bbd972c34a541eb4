//! `IdflowError` (Kotlin: `IdflowException`): one variant per stable code.

use idflow::{Error, ErrorCode};

macro_rules! idflow_error {
    ($($variant:ident),* $(,)?) => {
        /// Every idflow failure; the variant is the stable code, the text the message.
        #[derive(Debug, uniffi::Error)]
        #[uniffi(flat_error)]
        pub enum IdflowError {
            $($variant(String),)*
        }

        impl From<Error> for IdflowError {
            fn from(e: Error) -> Self {
                match e.code {
                    $(ErrorCode::$variant => IdflowError::$variant(e.message),)*
                    _ => IdflowError::Internal(e.message),
                }
            }
        }

        impl From<IdflowError> for Error {
            fn from(e: IdflowError) -> Self {
                match e {
                    $(IdflowError::$variant(m) => Error::new(ErrorCode::$variant, m),)*
                }
            }
        }

        impl std::fmt::Display for IdflowError {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                match self {
                    $(IdflowError::$variant(m) => f.write_str(m),)*
                }
            }
        }
    };
}

idflow_error!(
    InvalidRequest, InvalidClient, InvalidGrant, UnauthorizedClient, UnsupportedGrantType, InvalidScope,
    AccessDenied, LoginRequired, ConsentRequired, InvalidToken, ExpiredToken, ImmatureToken,
    InvalidSignature, InvalidIssuer, InvalidAudience, UnsupportedAlgorithm, InvalidKey, FlowNotFound,
    InvalidFlow, StepFailed, ConnectorFailed, ConnectorTimeout, UserNotFound, UserExists, InvalidCredentials, UserLocked, WeakPassword, InvalidCode, ExpiredCode, RateLimited, Config,
    Network, Storage, Internal,
);

impl std::error::Error for IdflowError {}

/// A foreign callback that threw something other than an `IdflowError`
/// (e.g. a Keychain failure surfaced as a plain exception).
impl From<uniffi::UnexpectedUniFFICallbackError> for IdflowError {
    fn from(e: uniffi::UnexpectedUniFFICallbackError) -> Self {
        IdflowError::Storage(format!("the app's callback failed: {}", e.reason))
    }
}

/// Runs `f`; a panic becomes `Internal` instead of unwinding into the FFI.
pub(crate) fn guard<T>(f: impl FnOnce() -> Result<T, Error>) -> Result<T, IdflowError> {
    idflow::error::guard(f).map_err(IdflowError::from)
}

/// The stable codes, in order (`tests/vectors/error_codes.json`).
#[uniffi::export]
pub fn error_codes() -> Vec<String> {
    ErrorCode::ALL.iter().map(|c| c.as_str().to_owned()).collect()
}

/// Test hook: fails with the error for `code`.
#[uniffi::export]
pub fn debug_raise(code: String) -> Result<(), IdflowError> {
    let code = ErrorCode::parse(&code).unwrap_or(ErrorCode::Internal);
    Err(Error::new(code, "raised by debug_raise").into())
}

/// Test hook: panics inside the guard, to prove panics surface as `Internal`.
#[uniffi::export]
#[allow(clippy::panic)]
pub fn debug_panic() -> Result<(), IdflowError> {
    guard(|| -> Result<(), Error> { panic!("deliberate panic for the binding test") })
}
