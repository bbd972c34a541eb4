//! Token decoding and verification never panic, and nothing unsigned verifies.
#![no_main]

use idflow::jose::{self, Algorithm, Key, KeySet, Validation};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

fn keys() -> &'static (KeySet, Key) {
    static KEYS: OnceLock<(KeySet, Key)> = OnceLock::new();
    KEYS.get_or_init(|| {
        let hs = Key::from_hmac_secret(&[7u8; 64]).expect("hmac key").with_kid("hs");
        let es = Key::generate(Algorithm::ES256, None).expect("es256").with_kid("es");
        let ed = Key::generate(Algorithm::EdDSA, None).expect("eddsa").with_kid("ed");
        let set = KeySet::new(vec![hs.clone(), es.public_key().expect("pub"), ed.public_key().expect("pub")]).expect("set");
        (set, hs)
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(token) = std::str::from_utf8(data) else { return };
    let (set, hs) = keys();
    let mut v = Validation::new(&Algorithm::ALL);
    v.required_claims.clear();
    v.now = Some(1_700_000_000);
    let _ = jose::decode_unverified(token);
    let _ = jose::verify_jws(token, set, &Algorithm::ALL, 1 << 16);
    if jose::verify(token, set, &v).is_ok() || jose::verify(token, hs, &v).is_ok() {
        // Only a correctly signed token may verify: the fuzzer cannot sign,
        // so any success means a check was bypassed.
        panic!("an unsigned token verified: {token:?}");
    }
});
