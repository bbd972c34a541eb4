//! JWS algorithms (RFC 7518 §3, RFC 8037 §3.1).

use crate::error::{Error, Result};
use std::fmt;

/// A JWS signing algorithm. `none` is deliberately absent: it cannot be named.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    HS256,
    HS384,
    HS512,
    RS256,
    RS384,
    RS512,
    PS256,
    PS384,
    PS512,
    ES256,
    ES384,
    ES512,
    EdDSA,
}

/// The key family an algorithm needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyType {
    /// `oct`: an HMAC secret.
    Oct,
    Rsa,
    Ec,
    /// `OKP` (RFC 8037).
    Okp,
}

impl KeyType {
    pub const fn as_str(self) -> &'static str {
        match self {
            KeyType::Oct => "oct",
            KeyType::Rsa => "RSA",
            KeyType::Ec => "EC",
            KeyType::Okp => "OKP",
        }
    }
}

impl Algorithm {
    /// The left half of the hash of `token`, base64url: an ID token's
    /// `at_hash` and `c_hash` (OIDC Core §3.1.3.6, §3.3.2.11), made by the
    /// provider and checked by the client. The hash is the one of this
    /// signing algorithm.
    pub fn half_hash(self, token: &str) -> String {
        use aws_lc_rs::digest::{digest, SHA256, SHA384, SHA512};
        let algorithm = match self {
            Algorithm::RS384 | Algorithm::PS384 | Algorithm::ES384 | Algorithm::HS384 => &SHA384,
            Algorithm::RS512 | Algorithm::PS512 | Algorithm::ES512 | Algorithm::HS512 | Algorithm::EdDSA => &SHA512,
            _ => &SHA256,
        };
        let d = digest(algorithm, token.as_bytes());
        crate::b64::encode(&d.as_ref()[..d.as_ref().len() / 2])
    }

    pub const ALL: [Algorithm; 13] = [
        Algorithm::HS256,
        Algorithm::HS384,
        Algorithm::HS512,
        Algorithm::RS256,
        Algorithm::RS384,
        Algorithm::RS512,
        Algorithm::PS256,
        Algorithm::PS384,
        Algorithm::PS512,
        Algorithm::ES256,
        Algorithm::ES384,
        Algorithm::ES512,
        Algorithm::EdDSA,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Algorithm::HS256 => "HS256",
            Algorithm::HS384 => "HS384",
            Algorithm::HS512 => "HS512",
            Algorithm::RS256 => "RS256",
            Algorithm::RS384 => "RS384",
            Algorithm::RS512 => "RS512",
            Algorithm::PS256 => "PS256",
            Algorithm::PS384 => "PS384",
            Algorithm::PS512 => "PS512",
            Algorithm::ES256 => "ES256",
            Algorithm::ES384 => "ES384",
            Algorithm::ES512 => "ES512",
            Algorithm::EdDSA => "EdDSA",
        }
    }

    /// Parses a registered name exactly (JOSE names are case-sensitive).
    /// `none`, in any casing, is refused with a message that says so.
    pub fn parse(name: &str) -> Result<Algorithm> {
        if name.eq_ignore_ascii_case("none") {
            return Err(Error::unsupported_algorithm(
                "alg \"none\" (unsecured JWS) is never accepted",
            ));
        }
        Algorithm::ALL.iter().copied().find(|a| a.as_str() == name).ok_or_else(|| {
            Error::unsupported_algorithm(format!(
                "alg {:?} is not supported; expected one of HS256 HS384 HS512 RS256 RS384 RS512 PS256 PS384 PS512 ES256 ES384 ES512 EdDSA",
                truncate(name)
            ))
        })
    }

    pub const fn key_type(self) -> KeyType {
        match self {
            Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => KeyType::Oct,
            Algorithm::RS256
            | Algorithm::RS384
            | Algorithm::RS512
            | Algorithm::PS256
            | Algorithm::PS384
            | Algorithm::PS512 => KeyType::Rsa,
            Algorithm::ES256 | Algorithm::ES384 | Algorithm::ES512 => KeyType::Ec,
            Algorithm::EdDSA => KeyType::Okp,
        }
    }

    /// Output size of the hash, in bytes: also the minimum HMAC secret size (RFC 7518 §3.2).
    pub const fn hash_len(self) -> usize {
        match self {
            Algorithm::HS256 | Algorithm::RS256 | Algorithm::PS256 | Algorithm::ES256 => 32,
            Algorithm::HS384 | Algorithm::RS384 | Algorithm::PS384 | Algorithm::ES384 => 48,
            Algorithm::HS512 | Algorithm::RS512 | Algorithm::PS512 | Algorithm::ES512 => 64,
            Algorithm::EdDSA => 64,
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Algorithm {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Algorithm::parse(s)
    }
}

/// Keeps attacker-chosen text in messages short.
pub(crate) fn truncate(s: &str) -> String {
    if s.len() <= 32 {
        s.to_owned()
    } else {
        let mut end = 32;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}…", &s[..end])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;

    #[test]
    fn none_is_refused_in_any_casing() {
        for name in ["none", "None", "NONE", "nOnE"] {
            assert_eq!(Algorithm::parse(name).map_err(|e| e.code), Err(ErrorCode::UnsupportedAlgorithm));
        }
        assert!(Algorithm::parse("hs256").is_err(), "names are case-sensitive");
        for alg in Algorithm::ALL {
            assert_eq!(Algorithm::parse(alg.as_str()), Ok(alg));
        }
    }
}
