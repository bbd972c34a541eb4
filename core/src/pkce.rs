//! PKCE (RFC 7636): code verifiers, their challenges, and verification.
//!
//! Verifiers come from the OS CSPRNG over the 66-character unreserved set
//! (§4.1), uniformly (rejection sampling, no modulo bias). `S256` is the only
//! method accepted unless a caller explicitly opts into `plain` (§4.2 and
//! §7.2: `plain` offers no protection when the challenge leaks).

use crate::b64;
use crate::error::{Error, Result};
use aws_lc_rs::constant_time::verify_slices_are_equal;
use aws_lc_rs::digest;

/// Shortest verifier RFC 7636 §4.1 allows.
pub const MIN_VERIFIER_LEN: usize = 43;
/// Longest verifier RFC 7636 §4.1 allows.
pub const MAX_VERIFIER_LEN: usize = 128;
/// Length of verifiers made by [`generate_verifier`] when no length is given.
pub const DEFAULT_VERIFIER_LEN: usize = 64;

const UNRESERVED: &[u8; 66] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~";

/// A code challenge method (RFC 7636 §4.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    S256,
    Plain,
}

impl Method {
    /// Parses the wire name (`S256` or `plain`, case-sensitive as registered).
    pub fn parse(name: &str) -> Result<Method> {
        match name {
            "S256" => Ok(Method::S256),
            "plain" => Ok(Method::Plain),
            _ => Err(Error::invalid_request(
                "code_challenge_method must be \"S256\" (or \"plain\" where allowed)",
            )),
        }
    }
    pub const fn as_str(self) -> &'static str {
        match self {
            Method::S256 => "S256",
            Method::Plain => "plain",
        }
    }
}

/// A verifier and its S256 challenge, as a client keeps and sends them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PkcePair {
    pub verifier: String,
    pub challenge: String,
    pub method: Method,
}

/// Makes a new verifier and its S256 challenge. `len` defaults to 64.
pub fn generate(len: Option<usize>) -> Result<PkcePair> {
    let verifier = generate_verifier(len)?;
    let challenge = challenge_s256(&verifier);
    Ok(PkcePair { verifier, challenge, method: Method::S256 })
}

/// Makes a verifier of `len` characters (43–128, default 64).
pub fn generate_verifier(len: Option<usize>) -> Result<String> {
    let len = len.unwrap_or(DEFAULT_VERIFIER_LEN);
    if !(MIN_VERIFIER_LEN..=MAX_VERIFIER_LEN).contains(&len) {
        return Err(Error::invalid_request(format!(
            "code_verifier length must be between {MIN_VERIFIER_LEN} and {MAX_VERIFIER_LEN}, got {len}"
        )));
    }
    let mut out = String::with_capacity(len);
    let mut buf = [0u8; 64];
    // 198 = 3 * 66: bytes at or above it would bias the first characters.
    while out.len() < len {
        getrandom::fill(&mut buf)
            .map_err(|_| Error::internal("the operating system's random generator failed"))?;
        for &b in &buf {
            if b < 198 && out.len() < len {
                out.push(char::from(UNRESERVED[usize::from(b % 66)]));
            }
        }
    }
    Ok(out)
}

/// Checks a verifier against RFC 7636 §4.1 (`43*128unreserved`).
pub fn validate_verifier(verifier: &str) -> Result<()> {
    let len = verifier.len();
    if !(MIN_VERIFIER_LEN..=MAX_VERIFIER_LEN).contains(&len) {
        return Err(Error::invalid_request(format!(
            "code_verifier must be {MIN_VERIFIER_LEN} to {MAX_VERIFIER_LEN} characters, got {len}"
        )));
    }
    if let Some(bad) = verifier.bytes().position(|b| !UNRESERVED.contains(&b)) {
        return Err(Error::invalid_request(format!(
            "code_verifier may only contain A-Z a-z 0-9 - . _ ~ (bad character at position {bad})"
        )));
    }
    Ok(())
}

/// An S256 code challenge is exactly 43 base64url characters (RFC 7636 §4.2).
pub fn is_s256_challenge(c: &str) -> bool {
    c.len() == 43 && c.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn challenge_s256(verifier: &str) -> String {
    b64::encode(digest::digest(&digest::SHA256, verifier.as_bytes()))
}

/// Computes the challenge of `verifier` for `method`. `plain` needs `allow_plain`.
pub fn challenge(verifier: &str, method: Method, allow_plain: bool) -> Result<String> {
    validate_verifier(verifier)?;
    match method {
        Method::S256 => Ok(challenge_s256(verifier)),
        Method::Plain if allow_plain => Ok(verifier.to_owned()),
        Method::Plain => Err(plain_refused()),
    }
}

fn plain_refused() -> Error {
    Error::invalid_request(
        "code_challenge_method \"plain\" is refused unless explicitly allowed; use \"S256\"",
    )
}

/// Checks `verifier` against `challenge` in constant time.
///
/// `Ok(false)` is a well-formed mismatch; malformed input (a verifier of the
/// wrong length or charset) and `plain` without `allow_plain` are errors.
pub fn verify(verifier: &str, challenge: &str, method: Method, allow_plain: bool) -> Result<bool> {
    validate_verifier(verifier)?;
    let expected = match method {
        Method::S256 => challenge_s256(verifier),
        Method::Plain if allow_plain => verifier.to_owned(),
        Method::Plain => return Err(plain_refused()),
    };
    Ok(verify_slices_are_equal(expected.as_bytes(), challenge.as_bytes()).is_ok())
}

/// Constant-time equality of two byte strings (lengths are not secret).
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    #[allow(deprecated)]
    verify_slices_are_equal(a, b).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;

    #[test]
    fn generated_verifiers_are_valid_and_distinct() {
        for len in [43, 64, 128] {
            let pair = generate(Some(len)).unwrap_or_else(|e| unreachable!("{e}"));
            assert_eq!(pair.verifier.len(), len);
            assert!(validate_verifier(&pair.verifier).is_ok());
            assert_eq!(verify(&pair.verifier, &pair.challenge, Method::S256, false), Ok(true));
        }
        let a = generate_verifier(None).unwrap_or_default();
        let b = generate_verifier(None).unwrap_or_default();
        assert_eq!(a.len(), DEFAULT_VERIFIER_LEN);
        assert_ne!(a, b);
    }

    #[test]
    fn bad_lengths_are_invalid_request_not_panics() {
        for len in [0, 42, 129, usize::MAX] {
            assert_eq!(generate_verifier(Some(len)).map_err(|e| e.code), Err(ErrorCode::InvalidRequest));
        }
        assert_eq!(
            verify("short", "x", Method::S256, false).map_err(|e| e.code),
            Err(ErrorCode::InvalidRequest)
        );
        let bad = "é".repeat(30);
        assert!(validate_verifier(&bad).is_err());
    }

    #[test]
    fn plain_needs_opt_in() {
        let v = "a".repeat(43);
        assert!(verify(&v, &v, Method::Plain, false).is_err());
        assert_eq!(verify(&v, &v, Method::Plain, true), Ok(true));
        assert!(Method::parse("s256").is_err());
    }

    #[test]
    fn characters_are_roughly_uniform() {
        let mut counts = [0usize; 66];
        for _ in 0..200 {
            for b in generate_verifier(Some(128)).unwrap_or_default().bytes() {
                if let Some(i) = UNRESERVED.iter().position(|&u| u == b) {
                    counts[i] += 1;
                }
            }
        }
        // 25 600 draws, ~388 per symbol: every symbol appears, none dominates.
        assert!(counts.iter().all(|&c| c > 250 && c < 550), "{counts:?}");
    }
}
