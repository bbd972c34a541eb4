//! JWK, JWKS and PEM parsing never panic; what parses round-trips.
#![no_main]

use idflow::jose::{Key, KeySet};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(key) = Key::from_jwk_json(text) {
        let thumb = key.thumbprint();
        if let Ok(jwk) = key.to_jwk(true) {
            let again = Key::from_jwk(&jwk).expect("an exported JWK imports again");
            assert_eq!(again.thumbprint(), thumb);
        }
        let _ = key.public_key().and_then(|p| p.to_pem(false));
    }
    if let Ok(set) = KeySet::from_jwks_json(text) {
        let doc = set.to_public_jwks().expect("a parsed set exports");
        KeySet::from_jwks(&doc).expect("an exported JWKS imports again");
    }
    let _ = Key::from_pem(text);
});
