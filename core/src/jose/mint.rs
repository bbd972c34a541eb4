//! Minting: the one place that issues idflow's own JWTs. The flow engine
//! (session and refresh JWTs) and the provider (access tokens and ID
//! tokens) describe what goes in; this stamps the claims every kind
//! carries (`iss`, `sub`, `aud`, `iat`, `exp`), sets the kind's `typ` and
//! signs.

use super::{sign, Key};
use crate::error::Result;
use serde_json::{Map, Value};

/// The kinds of JWT idflow issues. Each has its own `typ` (RFC 8725
/// §3.11), so that no kind passes where another is expected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// A flow's session JWT (`session+jwt`).
    Session,
    /// A flow's refresh JWT (`refresh+jwt`).
    Refresh,
    /// An RFC 9068 access token (`at+jwt`).
    Access,
    /// An OpenID Connect ID token (`JWT`, the plain type relying parties
    /// expect of one).
    Id,
}

impl TokenKind {
    /// The `typ` header of this kind.
    pub fn typ(self) -> &'static str {
        match self {
            TokenKind::Session => "session+jwt",
            TokenKind::Refresh => "refresh+jwt",
            TokenKind::Access => "at+jwt",
            TokenKind::Id => "JWT",
        }
    }
}

/// The claims [`Minter::mint`] sets itself; a claim of the same name among
/// the caller's is replaced.
pub const STAMPED_CLAIMS: [&str; 5] = ["iss", "sub", "aud", "iat", "exp"];

/// Adds the custom claims `custom` to `claims` under the ones already there:
/// a custom claim never replaces a claim idflow set. Every token that
/// carries custom claims (flow session JWTs, access tokens, ID tokens)
/// merges them this way.
pub fn add_custom_claims(claims: &mut Map<String, Value>, custom: &Map<String, Value>) {
    for (name, value) in custom {
        if !claims.contains_key(name) {
            claims.insert(name.clone(), value.clone());
        }
    }
}

/// Issues JWTs as `issuer`, signed with `key`.
#[derive(Debug, Clone, Copy)]
pub struct Minter<'a> {
    pub issuer: &'a str,
    pub key: &'a Key,
}

impl<'a> Minter<'a> {
    pub fn new(issuer: &'a str, key: &'a Key) -> Minter<'a> {
        Minter { issuer, key }
    }

    /// A `kind` JWT about `sub` for `aud`, issued at `iat` and valid for
    /// `ttl` seconds, carrying `claims` after the stamped ones. Returns
    /// the token and its `exp`.
    pub fn mint(&self, kind: TokenKind, sub: &str, aud: &str, iat: u64, ttl: u64, claims: Map<String, Value>) -> Result<(String, u64)> {
        let exp = iat.saturating_add(ttl);
        let mut all = Map::new();
        all.insert("iss".into(), self.issuer.into());
        all.insert("sub".into(), sub.into());
        all.insert("aud".into(), aud.into());
        all.insert("iat".into(), iat.into());
        all.insert("exp".into(), exp.into());
        for (name, value) in claims {
            if !STAMPED_CLAIMS.contains(&name.as_str()) {
                all.insert(name, value);
            }
        }
        let header: Map<String, Value> = [("typ".to_owned(), Value::from(kind.typ()))].into_iter().collect();
        Ok((sign(&all, self.key, Some(&header))?, exp))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::jose::{decode_unverified, Algorithm};
    use serde_json::json;

    #[test]
    fn the_stamped_claims_win_and_each_kind_has_its_typ() {
        let key = Key::generate(Algorithm::ES256, None).unwrap();
        let minter = Minter::new("https://id.example/p", &key);
        let forged = json!({"iss": "https://evil.example", "sub": "admin", "aud": "other", "exp": u64::MAX, "plan": "free"});
        for kind in [TokenKind::Session, TokenKind::Refresh, TokenKind::Access, TokenKind::Id] {
            let (token, exp) = minter.mint(kind, "U1", "p", 1000, 60, forged.as_object().unwrap().clone()).unwrap();
            assert_eq!(exp, 1060);
            let t = decode_unverified(&token).unwrap();
            assert_eq!(
                (t.claims["iss"].as_str(), t.claims["sub"].as_str(), t.claims["aud"].as_str(), t.claims["iat"].as_u64(), t.claims["exp"].as_u64()),
                (Some("https://id.example/p"), Some("U1"), Some("p"), Some(1000), Some(1060))
            );
            assert_eq!(t.claims["plan"], "free");
            assert_eq!(t.header.get("typ").and_then(Value::as_str), Some(kind.typ()));
        }
    }
}
