//! Passkeys (WebAuthn Level 3): the relying party and its ceremonies,
//! through the maintained `webauthn-rs` (kanidm's: RustCrypto underneath,
//! attestation `none`, user verification required, sign-count and
//! backup-state checks). The relying party is the project's `baseUrl`: its
//! host is the RP ID and its origin the only origin accepted. Keeping
//! credentials and ceremony state for users is `crate::users::passkeys`.

use crate::error::{Error, ErrorCode, Result};
use serde_json::Value;
use webauthn_rs::prelude::{Url, Webauthn, WebauthnBuilder};

pub use webauthn_rs::prelude::{
    AuthenticationResult, DiscoverableAuthentication, Passkey, PasskeyRegistration, PublicKeyCredential, RegisterPublicKeyCredential, Uuid,
};

/// The relying party for `base_url` (its host is the RP ID), named
/// `name` in the authenticator's prompt. `config` when the URL cannot be
/// one (an IP address is not an RP ID browsers accept).
pub fn relying_party(base_url: &str, name: &str) -> Result<Webauthn> {
    let url = Url::parse(base_url).map_err(|_| Error::config(format!("baseUrl {base_url:?} is not a URL")))?;
    let host = url.host_str().ok_or_else(|| Error::config("baseUrl has no host"))?.to_owned();
    let origin = Url::parse(&url.origin().ascii_serialization()).map_err(|_| Error::config("baseUrl has no origin"))?;
    WebauthnBuilder::new(&host, &origin)
        .and_then(|b| b.rp_name(name).build())
        .map_err(|e| Error::config(format!("passkeys need a baseUrl whose host can be a WebAuthn RP ID (a domain name or localhost): {e}")))
}

/// A passkey ceremony's failure: the credential was not accepted.
pub fn refused(what: &str) -> Error {
    Error::new(ErrorCode::InvalidCredentials, format!("the passkey was not accepted: {what}"))
}

/// What the browser's `navigator.credentials.create` takes: the options
/// with a discoverable credential asked for (username-less sign-in).
pub fn creation_options(ccr: &webauthn_rs::prelude::CreationChallengeResponse) -> Result<Value> {
    let mut v = serde_json::to_value(ccr).map_err(|e| Error::internal(format!("passkey options: {e}")))?;
    if let Some(sel) = v["publicKey"].get_mut("authenticatorSelection").and_then(Value::as_object_mut) {
        sel.insert("residentKey".into(), "required".into());
        sel.insert("requireResidentKey".into(), true.into());
    }
    Ok(v["publicKey"].take())
}

/// What `navigator.credentials.get` takes: a modal request, not the
/// conditional (autofill) one webauthn-rs starts.
pub fn request_options(rcr: &webauthn_rs::prelude::RequestChallengeResponse) -> Result<Value> {
    let v = serde_json::to_value(rcr).map_err(|e| Error::internal(format!("passkey options: {e}")))?;
    Ok(v["publicKey"].clone())
}

/// The RFC 8176 methods a passkey sign-in proves: `hwk` for a key that
/// stays on its device, `swk` for a synced one (backup eligible), and
/// `user` (user verification is always required).
pub fn amr(result: &AuthenticationResult) -> [&'static str; 2] {
    [if result.backup_eligible() { "swk" } else { "hwk" }, "user"]
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_relying_party_is_the_base_urls_host() {
        assert!(relying_party("https://id.example.com/", "Example").is_ok());
        assert!(relying_party("http://localhost:8080", "Example").is_ok());
        let e = relying_party("not a url", "Example").unwrap_err();
        assert_eq!(e.code, ErrorCode::Config);
    }
}
