//! Clock and identifiers shared by the engine, the users API and JWT checks.

use crate::error::{Error, Result};
use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch (0 if the clock is before it).
pub(crate) fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// Milliseconds since the Unix epoch (0 if the clock is before it).
pub(crate) fn now_millis() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)).unwrap_or(0)
}

/// `prefix` followed by 18 random bytes from the OS CSPRNG, base64url.
pub(crate) fn random_id(prefix: &str) -> Result<String> {
    let mut bytes = [0u8; 18];
    getrandom::fill(&mut bytes).map_err(|_| Error::internal("the operating system's random generator failed"))?;
    Ok(format!("{prefix}{}", crate::b64::encode(bytes)))
}
