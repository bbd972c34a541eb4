//! What the provider's tokens carry: the access token (RFC 9068) and the
//! id_token (OIDC Core §2), with the claims a sign-in releases, minted by
//! `jose::Minter`.

use super::token::Subject;
use super::claims::Target;
use super::Provider;
use crate::error::Result;
use crate::ids::{now_secs, random_id};
use crate::jose::{add_custom_claims, Minter, TokenKind};
use serde_json::{Map, Value};

/// `amr` (only when a method verified something), `acr` and `sid`.
fn add_auth_claims(s: &Subject<'_>, claims: &mut Map<String, Value>) {
    if let Some(a) = s.amr.filter(|a| a.as_array().is_some_and(|x| !x.is_empty())) {
        claims.insert("amr".into(), a.clone());
    }
    if let Some(acr) = s.acr.filter(|a| !a.is_empty()) {
        claims.insert("acr".into(), acr.into());
    }
    if let Some(sid) = s.sid {
        claims.insert("sid".into(), sid.into());
    }
}

impl Provider {
    /// An RFC 9068 access token (`typ: at+jwt`).
    pub(crate) fn mint_access_token(&self, s: &Subject<'_>) -> Result<(String, u64)> {
        let jti = match s.grant_id {
            Some(g) => format!("{g}.{}", random_id("")?),
            None => random_id("T")?,
        };
        let mut claims = Map::new();
        claims.insert("client_id".into(), s.client_id.into());
        claims.insert("scope".into(), s.scopes.join(" ").into());
        claims.insert("jti".into(), jti.into());
        if let Some(t) = s.auth_time {
            claims.insert("auth_time".into(), t.into());
        }
        add_auth_claims(s, &mut claims);
        match s.user {
            Some(user) => self.release_user_claims(user, s.scopes, s.custom, None, Target::AccessToken, &mut claims),
            None => {
                // An access key's claims are always its own.
                add_custom_claims(&mut claims, s.custom);
            }
        }
        Minter::new(&self.issuer, &self.keys().active).mint(TokenKind::Access, s.subject, &self.project.project_id, now_secs(), self.project.session_ttl, claims)
    }
    /// An id_token (OIDC Core §2) with `at_hash` when an access token is
    /// issued alongside.
    pub(crate) fn mint_id_token(&self, s: &Subject<'_>, access_token: Option<&str>, _code: Option<&str>) -> Result<String> {
        // One snapshot of the keys: `at_hash` follows the signing key's alg.
        let keys = self.keys();
        let mut claims = Map::new();
        claims.insert("azp".into(), s.client_id.into());
        if let Some(t) = s.auth_time {
            claims.insert("auth_time".into(), t.into());
        }
        if let Some(n) = s.nonce {
            claims.insert("nonce".into(), n.into());
        }
        if let Some(at) = access_token {
            claims.insert("at_hash".into(), keys.alg.half_hash(at).into());
        }
        add_auth_claims(s, &mut claims);
        if let Some(user) = s.user {
            let target = Target::IdToken { with_access_token: access_token.is_some() };
            self.release_user_claims(user, s.scopes, s.custom, s.claims_request, target, &mut claims);
        }
        Ok(Minter::new(&self.issuer, &keys.active).mint(TokenKind::Id, s.subject, s.client_id, now_secs(), self.project.session_ttl, claims)?.0)
    }
}
