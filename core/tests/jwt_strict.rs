//! Strict JWT/JWS verification: one test per rule, each asserting the exact
//! error code; key selection; sign/verify and import/export round trips; and
//! malformed input that must fail without panicking.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use idflow::jose::{self, Algorithm, Key, KeyType, KeySet, Validation};
use idflow::ErrorCode;
use serde_json::{json, Map, Value};
use std::sync::OnceLock;

/// The pinned clock of every test (2023-11-14T22:13:20Z).
const NOW: u64 = 1_700_000_000;

fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn unb64(text: &str) -> Vec<u8> {
    URL_SAFE_NO_PAD.decode(text).unwrap()
}

fn map(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        other => panic!("not an object: {other}"),
    }
}

fn claims() -> Map<String, Value> {
    map(json!({"sub": "alice", "exp": NOW + 3600}))
}

fn validation(algs: &[Algorithm]) -> Validation {
    let mut v = Validation::new(algs);
    v.now = Some(NOW);
    v
}

fn code<T: std::fmt::Debug>(r: idflow::Result<T>) -> ErrorCode {
    match r {
        Ok(v) => panic!("expected an error, got Ok({v:?})"),
        Err(e) => e.code,
    }
}

/// A compact JWS with exactly these header and payload octets, signed by `key`.
fn hand_signed(header: &str, payload: &[u8], key: &Key, alg: Algorithm) -> String {
    let input = format!("{}.{}", b64(header), b64(payload));
    let sig = key.sign_bytes(alg, input.as_bytes()).unwrap();
    format!("{input}.{}", b64(sig))
}

/// Signs an arbitrary signing input (which may itself be malformed).
fn sign_input(input: &str, key: &Key, alg: Algorithm) -> String {
    let sig = key.sign_bytes(alg, input.as_bytes()).unwrap();
    format!("{input}.{}", b64(sig))
}

fn parts(token: &str) -> (String, String, String) {
    let mut it = token.split('.');
    let t = (it.next().unwrap().to_owned(), it.next().unwrap().to_owned(), it.next().unwrap().to_owned());
    assert!(it.next().is_none());
    t
}

fn with_signature(token: &str, sig: &[u8]) -> String {
    let (h, p, _) = parts(token);
    format!("{h}.{p}.{}", b64(sig))
}

fn hs256() -> &'static Key {
    static K: OnceLock<Key> = OnceLock::new();
    K.get_or_init(|| Key::generate(Algorithm::HS256, None).unwrap())
}

fn es256() -> &'static Key {
    static K: OnceLock<Key> = OnceLock::new();
    K.get_or_init(|| Key::generate(Algorithm::ES256, None).unwrap())
}

fn rs256() -> &'static Key {
    static K: OnceLock<Key> = OnceLock::new();
    K.get_or_init(|| Key::generate(Algorithm::RS256, None).unwrap())
}

/// A token signed with the shared HS256 key with these claims.
fn hs_token(claims: Value) -> String {
    jose::sign(&map(claims), hs256(), None).unwrap()
}

fn hs_verify(token: &str, v: &Validation) -> idflow::Result<jose::Token> {
    jose::verify(token, hs256(), v)
}

// ---- algorithms ------------------------------------------------------------------

#[test]
fn alg_none_in_any_casing_is_unsupported_algorithm() {
    let payload = b64(serde_json::to_vec(&claims()).unwrap());
    for name in ["none", "None", "NONE", "nOnE"] {
        let header = b64(format!(r#"{{"alg":"{name}","typ":"JWT"}}"#));
        let valid_mac = b64(hs256().sign_bytes(Algorithm::HS256, format!("{header}.{payload}").as_bytes()).unwrap());
        for sig in ["", "AAAA", valid_mac.as_str()] {
            let token = format!("{header}.{payload}.{sig}");
            assert_eq!(
                code(jose::verify(&token, hs256(), &validation(&Algorithm::ALL))),
                ErrorCode::UnsupportedAlgorithm,
                "alg {name:?}, signature {sig:?}"
            );
            assert_eq!(
                code(jose::verify_jws(&token, hs256(), &Algorithm::ALL, 1 << 20)),
                ErrorCode::UnsupportedAlgorithm,
                "verify_jws, alg {name:?}"
            );
        }
    }
}

#[test]
fn hs256_token_verified_with_an_rsa_public_key_is_invalid_key() {
    let rsa_public = rsa256_public();
    let pem = rsa_public.to_pem(false).unwrap();

    // The classic key-confusion forgery: HMAC keyed with the RSA public PEM text.
    let header = b64(format!(r#"{{"alg":"HS256","typ":"JWT","kid":"{}"}}"#, rsa_public.kid()));
    let payload = b64(serde_json::to_vec(&claims()).unwrap());
    let input = format!("{header}.{payload}");
    let mac = aws_lc_rs::hmac::sign(&aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, pem.as_bytes()), input.as_bytes());
    let forged = format!("{input}.{}", b64(mac.as_ref()));
    for key in [&rsa_public, rs256()] {
        assert_eq!(
            code(jose::verify(&forged, key, &validation(&[Algorithm::RS256, Algorithm::HS256]))),
            ErrorCode::InvalidKey,
            "an RSA key is never an HMAC key ({key:?})"
        );
    }
    let set = KeySet::new(vec![rsa_public.clone()]).unwrap();
    assert_eq!(code(jose::verify(&forged, &set, &validation(&[Algorithm::HS256]))), ErrorCode::InvalidKey);

    // An honest HS256 token aimed at the RSA key's kid.
    let mut extra = Map::new();
    extra.insert("kid".into(), rsa_public.kid().into());
    let token = jose::sign(&claims(), hs256(), Some(&extra)).unwrap();
    assert_eq!(code(jose::verify(&token, &rsa_public, &validation(&[Algorithm::HS256]))), ErrorCode::InvalidKey);

    // The PEM text can never become an HMAC secret in the first place.
    assert_eq!(code(Key::from_hmac_secret(pem.as_bytes())), ErrorCode::InvalidKey, "public PEM as HMAC secret");
    assert_eq!(code(Key::from_hmac_secret(format!("\n  {pem}").as_bytes())), ErrorCode::InvalidKey, "indented PEM");
    let private_pem = rs256().to_pem(true).unwrap();
    assert_eq!(code(Key::from_hmac_secret(private_pem.as_bytes())), ErrorCode::InvalidKey, "private PEM as HMAC secret");
    // (A long non-PEM secret is fine.)
    assert!(Key::from_hmac_secret(&[7u8; 32]).is_ok());
}

fn rsa256_public() -> Key {
    rs256().public_key().unwrap()
}

#[test]
fn alg_outside_the_allowed_list_is_unsupported_algorithm() {
    let token = jose::sign(&claims(), es256(), None).unwrap();
    assert!(jose::verify(&token, es256(), &validation(&[Algorithm::ES256])).is_ok());
    for allowed in [&[Algorithm::RS256][..], &[Algorithm::HS256, Algorithm::ES384][..], &[Algorithm::EdDSA][..]] {
        assert_eq!(
            code(jose::verify(&token, es256(), &validation(allowed))),
            ErrorCode::UnsupportedAlgorithm,
            "allowed {allowed:?}"
        );
    }
    // A registered name in the wrong case is not that algorithm.
    let lower = hand_signed(r#"{"alg":"es256"}"#, br#"{"exp":1800000000}"#, es256(), Algorithm::ES256);
    assert_eq!(code(jose::verify(&lower, es256(), &validation(&Algorithm::ALL))), ErrorCode::UnsupportedAlgorithm);
}

#[test]
fn unknown_crit_header_is_invalid_token() {
    let payload = serde_json::to_vec(&claims()).unwrap();
    for header in [
        r#"{"alg":"HS256","crit":["urn:example:unknown"],"urn:example:unknown":1}"#,
        r#"{"alg":"HS256","crit":["exp"],"exp":1800000000}"#,
        r#"{"alg":"HS256","crit":[]}"#,
        r#"{"alg":"HS256","crit":"b64"}"#,
    ] {
        let token = hand_signed(header, &payload, hs256(), Algorithm::HS256);
        assert_eq!(code(hs_verify(&token, &validation(&[Algorithm::HS256]))), ErrorCode::InvalidToken, "{header}");
        assert_eq!(
            code(jose::verify_jws(&token, hs256(), &[Algorithm::HS256], 1 << 20)),
            ErrorCode::InvalidToken,
            "verify_jws {header}"
        );
    }
    // idflow will not produce such a token either.
    let mut extra = Map::new();
    extra.insert("crit".into(), json!(["x"]));
    assert_eq!(code(jose::sign(&claims(), hs256(), Some(&extra))), ErrorCode::InvalidRequest);
}

#[test]
fn embedded_jwk_jku_x5u_x5c_headers_are_never_used() {
    let victim = Key::generate(Algorithm::ES256, None).unwrap();
    let attacker = Key::generate(Algorithm::ES256, None).unwrap();
    let attacker_public_jwk = Value::Object(attacker.public_key().unwrap().to_jwk(false).unwrap());
    let attacker_spki = {
        let pem = attacker.to_pem(false).unwrap();
        let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        STANDARD.encode(STANDARD.decode(body).unwrap())
    };
    let embedded = [
        ("jwk", attacker_public_jwk),
        ("jku", json!("https://attacker.example/jwks.json")),
        ("x5u", json!("https://attacker.example/cert.pem")),
        ("x5c", json!([attacker_spki])),
    ];
    let victim_set = KeySet::new(vec![victim.public_key().unwrap()]).unwrap();
    let v = validation(&[Algorithm::ES256]);
    for (name, value) in embedded {
        // (a) The attacker's own kid: no such key on the victim's side.
        let mut extra = Map::new();
        extra.insert(name.into(), value.clone());
        let token = jose::sign(&claims(), &attacker, Some(&extra)).unwrap();
        assert!(jose::verify(&token, &attacker, &v).is_ok(), "{name}: the token itself is well-formed");
        assert_eq!(code(jose::verify(&token, &victim, &v)), ErrorCode::InvalidKey, "{name}, attacker kid, victim key");
        assert_eq!(code(jose::verify(&token, &victim_set, &v)), ErrorCode::InvalidKey, "{name}, attacker kid, victim set");

        // (b) The victim's kid: the victim key is used, and the signature fails.
        extra.insert("kid".into(), victim.kid().into());
        let token = jose::sign(&claims(), &attacker, Some(&extra)).unwrap();
        assert_eq!(code(jose::verify(&token, &victim, &v)), ErrorCode::InvalidSignature, "{name}, victim kid, victim key");
        assert_eq!(code(jose::verify(&token, &victim_set, &v)), ErrorCode::InvalidSignature, "{name}, victim kid, victim set");

        // (c) No kid at all against a one-key set.
        let mut header = Map::new();
        header.insert("alg".into(), "ES256".into());
        header.insert(name.into(), value.clone());
        let header = serde_json::to_string(&header).unwrap();
        let token = hand_signed(&header, &serde_json::to_vec(&claims()).unwrap(), &attacker, Algorithm::ES256);
        assert_eq!(code(jose::verify(&token, &victim_set, &v)), ErrorCode::InvalidSignature, "{name}, no kid");
    }
}

// ---- signatures -------------------------------------------------------------------

fn hex(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

#[test]
fn ecdsa_zero_and_out_of_range_signatures_are_invalid_signature() {
    let orders = [
        (Algorithm::ES256, "ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551"),
        (Algorithm::ES384, "ffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973"),
        (
            Algorithm::ES512,
            "01fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffa51868783bf2f966b7fcc0148f709a5d03bb5c9b8899c47aebb6fb71e91386409",
        ),
    ];
    for (alg, order_hex) in orders {
        let key = Key::generate(alg, None).unwrap();
        let token = jose::sign(&claims(), &key, None).unwrap();
        let v = validation(&[alg]);
        assert!(jose::verify(&token, &key, &v).is_ok(), "{alg}: control");
        let good = unb64(&parts(&token).2);
        let half = good.len() / 2;
        let (r, s) = good.split_at(half);
        let n = hex(order_hex);
        assert_eq!(n.len(), half, "{alg}: order length");
        let zeros = vec![0u8; half];
        let ones = vec![0xffu8; half];
        let mut n_plus_s = n.clone();
        *n_plus_s.last_mut().unwrap() += 1; // n + 1 (the orders end in odd bytes < 0xff)
        let cases: [(&str, Vec<u8>); 8] = [
            ("r=0,s=0", [&zeros[..], &zeros].concat()),
            ("r=ff..ff,s=ff..ff", [&ones[..], &ones].concat()),
            ("r=n,s=n", [&n[..], &n].concat()),
            ("r=n,s ok", [&n[..], s].concat()),
            ("r ok,s=n", [r, &n[..]].concat()),
            ("r=0,s ok", [&zeros[..], s].concat()),
            ("r ok,s=0", [r, &zeros[..]].concat()),
            ("r ok,s=n+1", [r, &n_plus_s[..]].concat()),
        ];
        for (what, sig) in cases {
            let forged = with_signature(&token, &sig);
            assert_eq!(code(jose::verify(&forged, &key, &v)), ErrorCode::InvalidSignature, "{alg}: {what}");
            assert_eq!(
                code(key.verify_bytes(alg, b"message", &sig)),
                ErrorCode::InvalidSignature,
                "{alg}: raw {what}"
            );
        }
    }
}

#[test]
fn truncated_or_extended_signatures_are_invalid_signature() {
    for alg in Algorithm::ALL {
        let key = Key::generate(alg, None).unwrap();
        let token = jose::sign(&claims(), &key, None).unwrap();
        let v = validation(&[alg]);
        assert!(jose::verify(&token, &key, &v).is_ok(), "{alg}: control");
        let sig = unb64(&parts(&token).2);
        let variants: [(&str, Vec<u8>); 5] = [
            ("one byte short", sig[..sig.len() - 1].to_vec()),
            ("half", sig[..sig.len() / 2].to_vec()),
            ("empty", Vec::new()),
            ("one extra byte", [&sig[..], &[0]].concat()),
            ("doubled", [&sig[..], &sig[..]].concat()),
        ];
        for (what, bad) in variants {
            assert_eq!(
                code(jose::verify(&with_signature(&token, &bad), &key, &v)),
                ErrorCode::InvalidSignature,
                "{alg}: {what}"
            );
        }
    }
}

// ---- encoding -----------------------------------------------------------------------

/// A header/payload/signature string containing `-` or `_` in its base64url
/// form, so that the standard alphabet spells it differently.
fn has_url_chars(s: &str) -> bool {
    s.contains('-') || s.contains('_')
}

#[test]
fn padded_segments_are_invalid_token() {
    let key = hs256();
    let alg = Algorithm::HS256;
    let v = validation(&[alg]);
    let token = hs_token(json!({"sub": "alice", "exp": NOW + 3600}));
    assert!(hs_verify(&token, &v).is_ok());
    let (h, p, s) = parts(&token);

    for pad in ["=", "==", "==="] {
        // Header: refused before anything else.
        let t = format!("{h}{pad}.{p}.{s}");
        assert_eq!(code(hs_verify(&t, &v)), ErrorCode::InvalidToken, "header{pad}");
        // Payload, with a signature that is valid over the padded text: only the
        // base64url check can refuse it.
        let t = sign_input(&format!("{h}.{p}{pad}"), key, alg);
        assert_eq!(code(hs_verify(&t, &v)), ErrorCode::InvalidToken, "payload{pad}");
        assert_eq!(code(jose::verify_jws(&t, key, &[alg], 1 << 20)), ErrorCode::InvalidToken, "verify_jws payload{pad}");
        // Signature.
        let t = format!("{h}.{p}.{s}{pad}");
        assert_eq!(code(hs_verify(&t, &v)), ErrorCode::InvalidToken, "signature{pad}");
    }
    // Padding that is "correct" for standard base64 (length made a multiple of 4).
    let padded = |seg: &str| format!("{seg}{}", "=".repeat((4 - seg.len() % 4) % 4));
    if h.len() % 4 != 0 {
        assert_eq!(code(hs_verify(&format!("{}.{p}.{s}", padded(&h)), &v)), ErrorCode::InvalidToken);
    }
    if s.len() % 4 != 0 {
        assert_eq!(code(hs_verify(&format!("{h}.{p}.{}", padded(&s)), &v)), ErrorCode::InvalidToken);
    }
}

#[test]
fn standard_base64_alphabet_is_invalid_token() {
    let key = hs256();
    let alg = Algorithm::HS256;
    let v = validation(&[alg]);

    // Header: find a kid whose header encoding contains '-' or '_'.
    let (header_json, header_b64) = (0..10_000)
        .map(|i| {
            let h = format!(r#"{{"alg":"HS256","kid":"{}","x":"k{i}~~>>??"}}"#, key.kid());
            let b = b64(&h);
            (h, b)
        })
        .find(|(_, b)| has_url_chars(b))
        .unwrap();
    let payload_b64 = b64(serde_json::to_vec(&claims()).unwrap());
    let good = sign_input(&format!("{header_b64}.{payload_b64}"), key, alg);
    assert!(hs_verify(&good, &v).is_ok(), "control: {header_json}");
    let std_header = STANDARD_NO_PAD.encode(&header_json);
    assert_ne!(std_header, header_b64);
    let bad = sign_input(&format!("{std_header}.{payload_b64}"), key, alg);
    assert_eq!(code(hs_verify(&bad, &v)), ErrorCode::InvalidToken, "'+'/'/' in the header");

    // Payload: find claims whose encoding contains '-' or '_', sign the
    // standard-alphabet text so only the base64url check can refuse it.
    let (payload_json, payload_b64) = (0..10_000)
        .map(|i| {
            let c = serde_json::to_vec(&json!({"exp": NOW + 3600, "n": format!("{i}~~>>??")})).unwrap();
            let b = b64(&c);
            (c, b)
        })
        .find(|(_, b)| has_url_chars(b))
        .unwrap();
    let header_b64 = b64(format!(r#"{{"alg":"HS256","kid":"{}"}}"#, key.kid()));
    let good = sign_input(&format!("{header_b64}.{payload_b64}"), key, alg);
    assert!(hs_verify(&good, &v).is_ok(), "control payload");
    let std_payload = STANDARD_NO_PAD.encode(&payload_json);
    let bad = sign_input(&format!("{header_b64}.{std_payload}"), key, alg);
    assert_eq!(code(hs_verify(&bad, &v)), ErrorCode::InvalidToken, "'+'/'/' in the payload");

    // Signature: find a token whose signature encoding contains '-' or '_'.
    let token = (0..10_000)
        .map(|i| hs_token(json!({"exp": NOW + 3600, "jti": i})))
        .find(|t| has_url_chars(&parts(t).2))
        .unwrap();
    let (h, p, s) = parts(&token);
    let std_sig = STANDARD_NO_PAD.encode(unb64(&s));
    assert_ne!(std_sig, s);
    assert_eq!(code(hs_verify(&format!("{h}.{p}.{std_sig}"), &v)), ErrorCode::InvalidToken, "'+'/'/' in the signature");

    // Whitespace and other foreign characters in a segment.
    for junk in [" ", "\n", "!", "%3D", "\u{e9}"] {
        assert_eq!(code(hs_verify(&format!("{h}{junk}.{p}.{s}"), &v)), ErrorCode::InvalidToken, "{junk:?} in header");
        assert_eq!(code(hs_verify(&format!("{h}.{p}.{s}{junk}"), &v)), ErrorCode::InvalidToken, "{junk:?} in signature");
    }
}

#[test]
fn wrong_number_of_segments_is_invalid_token() {
    let token = hs_token(json!({"exp": NOW + 3600}));
    let v = validation(&[Algorithm::HS256]);
    let (h, p, s) = parts(&token);
    for t in [String::new(), h.clone(), format!("{h}.{p}"), format!("{h}.{p}.{s}."), format!("{h}.{p}.{s}.{s}"), format!(".{h}.{p}.{s}")] {
        assert_eq!(code(hs_verify(&t, &v)), ErrorCode::InvalidToken, "{t:?}");
    }
}

// ---- JSON ---------------------------------------------------------------------------

#[test]
fn duplicate_json_members_are_invalid_token() {
    let key = hs256();
    let alg = Algorithm::HS256;
    let v = validation(&[alg]);
    let ok_payload = serde_json::to_vec(&claims()).unwrap();
    for header in [r#"{"alg":"HS256","alg":"HS256"}"#, r#"{"alg":"HS256","kid":"a","kid":"b"}"#, r#"{"alg":"HS256","x":{"y":1,"y":1}}"#] {
        let token = hand_signed(header, &ok_payload, key, alg);
        assert_eq!(code(hs_verify(&token, &v)), ErrorCode::InvalidToken, "header {header}");
        assert_eq!(code(jose::decode_unverified(&token)), ErrorCode::InvalidToken, "decode_unverified header {header}");
    }
    let exp = NOW + 3600;
    for payload in [
        format!(r#"{{"exp":{exp},"exp":{exp}}}"#),
        format!(r#"{{"exp":{exp},"sub":"a","sub":"b"}}"#),
        format!(r#"{{"exp":{exp},"nested":{{"a":1,"a":2}}}}"#),
        format!(r#"{{"exp":{exp},"list":[{{"a":1,"a":1}}]}}"#),
    ] {
        let token = hand_signed(r#"{"alg":"HS256"}"#, payload.as_bytes(), key, alg);
        assert_eq!(code(hs_verify(&token, &v)), ErrorCode::InvalidToken, "payload {payload}");
    }
}

#[test]
fn non_object_payload_is_invalid_token() {
    let v = validation(&[Algorithm::HS256]);
    for payload in [&b"[1]"[..], b"\"x\"", b"1", b"null", b"true", b"", b"{\"exp\":1} trailing", b"{\"exp\":"] {
        let token = jose::sign_payload(payload, hs256(), None).unwrap();
        // A valid JWS...
        let jws = jose::verify_jws(&token, hs256(), &[Algorithm::HS256], 1 << 20).unwrap();
        assert_eq!(jws.payload, payload);
        // ...but not a JWT.
        assert_eq!(code(hs_verify(&token, &v)), ErrorCode::InvalidToken, "{:?}", String::from_utf8_lossy(payload));
    }
}

// ---- registered claims ------------------------------------------------------------------

#[test]
fn numeric_dates_given_as_strings_are_invalid_token() {
    let v = validation(&[Algorithm::HS256]);
    let exp = NOW + 3600;
    for claims in [
        json!({"exp": exp.to_string()}),
        json!({"exp": exp, "nbf": (NOW - 10).to_string()}),
        json!({"exp": exp, "iat": (NOW - 10).to_string()}),
        json!({"exp": true}),
        json!({"exp": null}),
        json!({"exp": [exp]}),
    ] {
        assert_eq!(code(hs_verify(&hs_token(claims.clone()), &v)), ErrorCode::InvalidToken, "{claims}");
    }
}

#[test]
fn expiry_respects_leeway() {
    let v = validation(&[Algorithm::HS256]); // leeway 60
    assert_eq!(v.leeway, 60);
    assert_eq!(code(hs_verify(&hs_token(json!({"exp": NOW - 61})), &v)), ErrorCode::ExpiredToken, "61 s past exp");
    assert_eq!(code(hs_verify(&hs_token(json!({"exp": NOW - 3600})), &v)), ErrorCode::ExpiredToken, "an hour past exp");
    assert!(hs_verify(&hs_token(json!({"exp": NOW - 30})), &v).is_ok(), "expired 30 s ago, within leeway");
    assert!(hs_verify(&hs_token(json!({"exp": NOW - 59})), &v).is_ok(), "expired 59 s ago, within leeway");
    assert!(hs_verify(&hs_token(json!({"exp": NOW + 1})), &v).is_ok(), "not expired");
    let mut strict = v.clone();
    strict.leeway = 0;
    assert_eq!(code(hs_verify(&hs_token(json!({"exp": NOW - 1})), &strict)), ErrorCode::ExpiredToken, "leeway 0");
    assert_eq!(code(hs_verify(&hs_token(json!({"exp": NOW})), &strict)), ErrorCode::ExpiredToken, "exp == now");
    let mut lax = v.clone();
    lax.leeway = 300;
    assert!(hs_verify(&hs_token(json!({"exp": NOW - 299})), &lax).is_ok(), "leeway 300");
}

#[test]
fn nbf_in_the_future_beyond_leeway_is_immature_token() {
    let v = validation(&[Algorithm::HS256]);
    let exp = NOW + 3600;
    assert_eq!(code(hs_verify(&hs_token(json!({"exp": exp, "nbf": NOW + 61})), &v)), ErrorCode::ImmatureToken);
    assert_eq!(code(hs_verify(&hs_token(json!({"exp": exp, "nbf": NOW + 600})), &v)), ErrorCode::ImmatureToken);
    assert!(hs_verify(&hs_token(json!({"exp": exp, "nbf": NOW + 30})), &v).is_ok(), "within leeway");
    assert!(hs_verify(&hs_token(json!({"exp": exp, "nbf": NOW - 30})), &v).is_ok(), "in the past");
}

#[test]
fn iat_in_the_future_beyond_leeway_is_immature_token() {
    let v = validation(&[Algorithm::HS256]);
    let exp = NOW + 3600;
    assert_eq!(code(hs_verify(&hs_token(json!({"exp": exp, "iat": NOW + 61})), &v)), ErrorCode::ImmatureToken);
    assert_eq!(code(hs_verify(&hs_token(json!({"exp": exp, "iat": NOW + 3000})), &v)), ErrorCode::ImmatureToken);
    assert!(hs_verify(&hs_token(json!({"exp": exp, "iat": NOW + 30})), &v).is_ok(), "within leeway");
    assert!(hs_verify(&hs_token(json!({"exp": exp, "iat": NOW - 100})), &v).is_ok(), "in the past");
}

#[test]
fn issuer_must_match_when_expected() {
    let mut v = validation(&[Algorithm::HS256]);
    v.issuer = Some("https://issuer.example".into());
    let exp = NOW + 3600;
    assert!(hs_verify(&hs_token(json!({"exp": exp, "iss": "https://issuer.example"})), &v).is_ok());
    assert_eq!(
        code(hs_verify(&hs_token(json!({"exp": exp, "iss": "https://evil.example"})), &v)),
        ErrorCode::InvalidIssuer,
        "wrong iss"
    );
    assert_eq!(
        code(hs_verify(&hs_token(json!({"exp": exp, "iss": "https://issuer.example/"})), &v)),
        ErrorCode::InvalidIssuer,
        "iss differing by a slash"
    );
    assert_eq!(code(hs_verify(&hs_token(json!({"exp": exp})), &v)), ErrorCode::InvalidIssuer, "missing iss");
    assert_eq!(
        code(hs_verify(&hs_token(json!({"exp": exp, "iss": ["https://issuer.example"]})), &v)),
        ErrorCode::InvalidIssuer,
        "non-string iss"
    );
    // Not expected: not checked.
    assert!(hs_verify(&hs_token(json!({"exp": exp, "iss": "anyone"})), &validation(&[Algorithm::HS256])).is_ok());
}

#[test]
fn audience_rules() {
    let mut v = validation(&[Algorithm::HS256]);
    v.audience = vec!["api".into()];
    let exp = NOW + 3600;
    assert!(hs_verify(&hs_token(json!({"exp": exp, "aud": "api"})), &v).is_ok(), "string aud");
    assert!(hs_verify(&hs_token(json!({"exp": exp, "aud": ["x", "api"]})), &v).is_ok(), "array containing aud");
    assert_eq!(code(hs_verify(&hs_token(json!({"exp": exp, "aud": "other"})), &v)), ErrorCode::InvalidAudience, "wrong string");
    assert_eq!(
        code(hs_verify(&hs_token(json!({"exp": exp, "aud": ["x", "y"]})), &v)),
        ErrorCode::InvalidAudience,
        "wrong array"
    );
    assert_eq!(code(hs_verify(&hs_token(json!({"exp": exp, "aud": []})), &v)), ErrorCode::InvalidAudience, "empty array");
    assert_eq!(code(hs_verify(&hs_token(json!({"exp": exp})), &v)), ErrorCode::InvalidAudience, "missing aud");
    assert_eq!(
        code(hs_verify(&hs_token(json!({"exp": exp, "aud": ["api", 1]})), &v)),
        ErrorCode::InvalidAudience,
        "non-string member"
    );
    assert_eq!(code(hs_verify(&hs_token(json!({"exp": exp, "aud": 1})), &v)), ErrorCode::InvalidAudience, "number aud");
    // aud present but nothing expected.
    let none_expected = validation(&[Algorithm::HS256]);
    assert_eq!(
        code(hs_verify(&hs_token(json!({"exp": exp, "aud": "api"})), &none_expected)),
        ErrorCode::InvalidAudience,
        "aud without an expected audience"
    );
    assert!(hs_verify(&hs_token(json!({"exp": exp})), &none_expected).is_ok());
}

#[test]
fn missing_required_claim_is_invalid_token() {
    let v = validation(&[Algorithm::HS256]);
    assert_eq!(v.required_claims, vec!["exp".to_owned()], "exp is required by default");
    assert_eq!(code(hs_verify(&hs_token(json!({"sub": "alice"})), &v)), ErrorCode::InvalidToken, "no exp");
    let mut more = v.clone();
    more.required_claims = vec!["exp".into(), "sub".into()];
    assert_eq!(code(hs_verify(&hs_token(json!({"exp": NOW + 3600})), &more)), ErrorCode::InvalidToken, "no sub");
    assert!(hs_verify(&hs_token(json!({"exp": NOW + 3600, "sub": "a"})), &more).is_ok());
}

#[test]
fn token_over_max_size_is_invalid_token() {
    let token = hs_token(json!({"exp": NOW + 3600, "pad": "x".repeat(500)}));
    let mut v = validation(&[Algorithm::HS256]);
    v.max_token_size = token.len();
    assert!(hs_verify(&token, &v).is_ok(), "exactly at the limit");
    v.max_token_size = token.len() - 1;
    assert_eq!(code(hs_verify(&token, &v)), ErrorCode::InvalidToken, "one byte over");
    assert_eq!(code(jose::verify_jws(&token, hs256(), &[Algorithm::HS256], token.len() - 1)), ErrorCode::InvalidToken);
    // Default limit: 16 KiB.
    let huge = hs_token(json!({"exp": NOW + 3600, "pad": "x".repeat(17 * 1024)}));
    assert_eq!(code(hs_verify(&huge, &validation(&[Algorithm::HS256]))), ErrorCode::InvalidToken, "default limit");
}

#[test]
fn bad_validation_options_are_config_errors() {
    let token = hs_token(json!({"exp": NOW + 3600}));
    let mut v = validation(&[Algorithm::HS256]);
    v.leeway = 301;
    assert_eq!(code(hs_verify(&token, &v)), ErrorCode::Config, "leeway 301");
    v.leeway = 300;
    assert!(hs_verify(&token, &v).is_ok(), "leeway 300");
    let empty = validation(&[]);
    assert_eq!(code(hs_verify(&token, &empty)), ErrorCode::Config, "no algorithms");
    assert_eq!(code(jose::verify_jws(&token, hs256(), &[], 1 << 20)), ErrorCode::Config, "verify_jws, no algorithms");
    let mut zero = validation(&[Algorithm::HS256]);
    zero.max_token_size = 0;
    assert_eq!(code(hs_verify(&token, &zero)), ErrorCode::Config, "max_token_size 0");
}

// ---- key selection ---------------------------------------------------------------

fn abc() -> (Vec<Key>, KeySet) {
    let keys: Vec<Key> = ["a", "b", "c"]
        .into_iter()
        .map(|kid| Key::generate(Algorithm::ES256, None).unwrap().with_kid(kid))
        .collect();
    let set = KeySet::new(keys.iter().map(|k| k.public_key().unwrap()).collect()).unwrap();
    (keys, set)
}

fn with_kid_header(key: &Key, kid: &str) -> String {
    let mut extra = Map::new();
    extra.insert("kid".into(), kid.into());
    jose::sign(&claims(), key, Some(&extra)).unwrap()
}

#[test]
fn key_set_selects_by_kid() {
    let (keys, set) = abc();
    assert_eq!(set.len(), 3);
    let v = validation(&[Algorithm::ES256]);
    for key in &keys {
        let token = jose::sign(&claims(), key, None).unwrap();
        let verified = jose::verify(&token, &set, &v).unwrap_or_else(|e| panic!("kid {}: {e}", key.kid()));
        assert_eq!(verified.header["kid"], key.kid());
    }
    // Signed by b but labelled a: a is tried, and only a.
    let mislabelled = with_kid_header(&keys[1], "a");
    assert_eq!(code(jose::verify(&mislabelled, &set, &v)), ErrorCode::InvalidSignature);
    // Duplicate kids cannot form a set.
    assert_eq!(code(KeySet::new(vec![keys[0].clone(), keys[0].clone()])), ErrorCode::InvalidKey);
}

#[test]
fn unknown_kid_is_invalid_key_without_fallback() {
    let (keys, set) = abc();
    let v = validation(&[Algorithm::ES256]);
    // Signed by b, which is in the set, but the kid names no key.
    let token = with_kid_header(&keys[1], "zzz");
    assert_eq!(code(jose::verify(&token, &set, &v)), ErrorCode::InvalidKey);
    // Same with a single key: a JWK-imported key's kid must match.
    assert_eq!(code(jose::verify(&token, &keys[1], &v)), ErrorCode::InvalidKey);
    // A kid that is not a string.
    let header = r#"{"alg":"ES256","kid":7}"#;
    let t = hand_signed(header, &serde_json::to_vec(&claims()).unwrap(), &keys[0], Algorithm::ES256);
    assert_eq!(code(jose::verify(&t, &set, &v)), ErrorCode::InvalidToken);
}

#[test]
fn token_without_kid_needs_a_single_key_set() {
    let (keys, set) = abc();
    let v = validation(&[Algorithm::ES256]);
    let payload = serde_json::to_vec(&claims()).unwrap();
    let token = hand_signed(r#"{"alg":"ES256","typ":"JWT"}"#, &payload, &keys[0], Algorithm::ES256);
    let one = KeySet::new(vec![keys[0].public_key().unwrap()]).unwrap();
    assert!(jose::verify(&token, &one, &v).is_ok(), "no kid, one key");
    assert!(jose::verify(&token, &keys[0], &v).is_ok(), "no kid, a single Key");
    assert_eq!(code(jose::verify(&token, &set, &v)), ErrorCode::InvalidKey, "no kid, three keys");
    assert_eq!(code(jose::verify(&token, &KeySet::default(), &v)), ErrorCode::InvalidKey, "empty set");
}

#[test]
fn key_restricted_to_another_alg_is_invalid_key() {
    // A signing key with no alg restriction, and its public half restricted to RS384.
    let mut jwk = rs256().to_jwk(true).unwrap();
    jwk.remove("alg");
    let signer = Key::from_jwk(&jwk).unwrap();
    let mut public_jwk = rs256().to_jwk(false).unwrap();
    public_jwk.insert("alg".into(), "RS384".into());
    let rs384_only = Key::from_jwk(&public_jwk).unwrap();
    assert_eq!(rs384_only.alg(), Some(Algorithm::RS384));
    let mut extra = Map::new();
    extra.insert("alg".into(), "RS256".into());
    let token = jose::sign(&claims(), &signer, Some(&extra)).unwrap();
    let v = validation(&[Algorithm::RS256, Algorithm::RS384]);
    assert!(jose::verify(&token, &rsa256_public(), &v).is_ok(), "control: RS256 key");
    assert_eq!(code(jose::verify(&token, &rs384_only, &v)), ErrorCode::InvalidKey);
    let set = KeySet::new(vec![rs384_only.clone()]).unwrap();
    assert_eq!(code(jose::verify(&token, &set, &v)), ErrorCode::InvalidKey, "in a set");
    // And an EC key for the wrong curve.
    let es384 = Key::generate(Algorithm::ES384, None).unwrap();
    assert_eq!(code(es384.clone().with_alg(Algorithm::ES256)), ErrorCode::InvalidKey);
}

#[test]
fn encryption_keys_are_refused_and_skipped() {
    let sig = es256().public_key().unwrap().with_kid("sig-key");
    let mut enc_jwk = Key::generate(Algorithm::ES256, None).unwrap().to_jwk(false).unwrap();
    enc_jwk.insert("kid".into(), "enc-key".into());
    enc_jwk.insert("use".into(), "enc".into());
    // An encryption key is never a JWS key: either the import refuses it, or
    // the imported key refuses every JWS operation.
    let signed_by_enc_key = {
        let mut private = Key::generate(Algorithm::ES256, None).unwrap().to_jwk(true).unwrap();
        private.insert("use".into(), "enc".into());
        private
    };
    let token_for_enc = with_kid_header(es256(), "enc-key");
    let v = validation(&[Algorithm::ES256]);
    for (what, result) in [
        ("from_jwk", Key::from_jwk(&enc_jwk)),
        ("from_jwk_json", Key::from_jwk_json(&serde_json::to_string(&enc_jwk).unwrap())),
        ("from_jwk (private)", Key::from_jwk(&signed_by_enc_key)),
    ] {
        match result {
            Err(e) => assert_eq!(e.code, ErrorCode::InvalidKey, "use enc via {what}"),
            Ok(key) => {
                assert_eq!(key.key_use(), Some("enc"), "{what}");
                assert_eq!(code(jose::verify(&token_for_enc, &key, &v)), ErrorCode::InvalidKey, "{what}: verify");
                assert_eq!(
                    code(key.verify_bytes(Algorithm::ES256, b"m", &[0u8; 64])),
                    ErrorCode::InvalidKey,
                    "{what}: raw verify"
                );
                if key.has_private() {
                    assert_eq!(code(jose::sign(&claims(), &key, None)), ErrorCode::InvalidKey, "{what}: sign");
                }
            }
        }
    }
    let jwks = json!({"keys": [Value::Object(sig.to_jwk(false).unwrap()), Value::Object(enc_jwk)]});
    let set = KeySet::from_jwks_json(&jwks.to_string()).unwrap();
    assert_eq!(set.len(), 1, "the enc key is skipped");
    assert!(set.get("sig-key").is_some());
    assert!(set.get("enc-key").is_none());
    assert_eq!(code(jose::verify(&token_for_enc, &set, &v)), ErrorCode::InvalidKey, "enc kid in a set");
    let token = with_kid_header(es256(), "sig-key");
    assert!(jose::verify(&token, &set, &v).is_ok());
}

#[test]
fn key_ops_without_verify_is_invalid_key() {
    let mut jwk = es256().to_jwk(false).unwrap();
    jwk.insert("key_ops".into(), json!(["sign"]));
    let sign_only = Key::from_jwk(&jwk).unwrap();
    let token = jose::sign(&claims(), es256(), None).unwrap();
    let v = validation(&[Algorithm::ES256]);
    assert_eq!(code(jose::verify(&token, &sign_only, &v)), ErrorCode::InvalidKey);
    jwk.insert("key_ops".into(), json!(["verify"]));
    let verify_only = Key::from_jwk(&jwk).unwrap();
    assert!(jose::verify(&token, &verify_only, &v).is_ok());
    // And the other way round: a verify-only private key cannot sign.
    let mut private = es256().to_jwk(true).unwrap();
    private.insert("key_ops".into(), json!(["verify"]));
    assert_eq!(code(jose::sign(&claims(), &Key::from_jwk(&private).unwrap(), None)), ErrorCode::InvalidKey);
}

// ---- round trips ---------------------------------------------------------------------

#[test]
fn every_algorithm_signs_and_verifies() {
    for alg in Algorithm::ALL {
        let key = Key::generate(alg, None).unwrap();
        assert_eq!(key.alg(), Some(alg));
        let token = jose::sign(&claims(), &key, None).unwrap();
        let v = validation(&[alg]);
        let verified = jose::verify(&token, &key, &v).unwrap_or_else(|e| panic!("{alg} private: {e}"));
        assert_eq!(verified.claims, claims(), "{alg}");
        assert_eq!(verified.header["alg"], alg.as_str(), "{alg}");
        assert_eq!(verified.header["kid"], key.kid(), "{alg}");
        assert_eq!(verified.header["typ"], "JWT", "{alg}");

        if alg.key_type() == KeyType::Oct {
            assert_eq!(code(key.public_key()), ErrorCode::InvalidKey, "{alg}: no public form");
            let set = KeySet::new(vec![key.clone()]).unwrap();
            assert!(jose::verify(&token, &set, &v).is_ok(), "{alg}: set");
            let public = set.to_public_jwks().unwrap();
            assert_eq!(public["keys"], json!([]), "{alg}: secrets are never published");
            continue;
        }
        let public = key.public_key().unwrap();
        assert!(!public.has_private());
        jose::verify(&token, &public, &v).unwrap_or_else(|e| panic!("{alg} public: {e}"));
        assert_eq!(code(jose::sign(&claims(), &public, None)), ErrorCode::InvalidKey, "{alg}: public keys cannot sign");

        let jwks = KeySet::new(vec![key.clone()]).unwrap().to_public_jwks().unwrap();
        let text = serde_json::to_string(&jwks).unwrap();
        for private_member in ["\"d\"", "\"p\"", "\"q\"", "\"dp\"", "\"dq\"", "\"qi\"", "\"k\""] {
            assert!(!text.contains(private_member), "{alg}: public JWKS leaks {private_member}");
        }
        let set = KeySet::from_jwks_json(&text).unwrap();
        assert_eq!(set.len(), 1);
        jose::verify(&token, &set, &v).unwrap_or_else(|e| panic!("{alg} JWKS: {e}"));
    }
}

#[test]
fn jwk_and_pem_round_trips_keep_the_key() {
    for alg in Algorithm::ALL {
        let key = Key::generate(alg, None).unwrap();
        let v = validation(&[alg]);
        let token = jose::sign(&claims(), &key, None).unwrap();

        // Private JWK.
        let private_jwk = key.to_jwk(true).unwrap();
        let reimported = Key::from_jwk_json(&serde_json::to_string(&private_jwk).unwrap()).unwrap();
        assert_eq!(reimported.thumbprint(), key.thumbprint(), "{alg}: private JWK thumbprint");
        assert_eq!(reimported.kid(), key.kid(), "{alg}");
        assert_eq!(reimported.alg(), Some(alg), "{alg}");
        assert!(reimported.has_private(), "{alg}");
        assert!(jose::verify(&token, &reimported, &v).is_ok(), "{alg}: reimported verifies the original's token");
        let token2 = jose::sign(&claims(), &reimported, None).unwrap();
        assert!(jose::verify(&token2, &key, &v).is_ok(), "{alg}: original verifies the reimported's token");

        if alg.key_type() == KeyType::Oct {
            assert_eq!(code(key.to_jwk(false)), ErrorCode::InvalidKey, "{alg}: no public JWK");
            assert_eq!(code(key.to_pem(true)), ErrorCode::InvalidKey, "{alg}: no PEM");
            assert_eq!(code(key.to_pem(false)), ErrorCode::InvalidKey, "{alg}: no PEM");
            continue;
        }

        // Public JWK.
        let public_jwk = key.to_jwk(false).unwrap();
        assert!(!public_jwk.contains_key("d"), "{alg}: public JWK has no d");
        let public = Key::from_jwk(&public_jwk).unwrap();
        assert_eq!(public.thumbprint(), key.thumbprint(), "{alg}: public JWK thumbprint");
        assert!(!public.has_private());
        assert!(jose::verify(&token, &public, &v).is_ok(), "{alg}: public JWK verifies");

        // PEM, private (PKCS#8) and public (SPKI).
        let private_pem = key.to_pem(true).unwrap();
        assert!(private_pem.starts_with("-----BEGIN PRIVATE KEY-----\n"), "{alg}");
        let from_private_pem = Key::from_pem(&private_pem).unwrap();
        assert_eq!(from_private_pem.thumbprint(), key.thumbprint(), "{alg}: private PEM thumbprint");
        assert!(from_private_pem.has_private(), "{alg}");
        let token3 = jose::sign(&claims(), &from_private_pem.clone().with_alg(alg).unwrap(), None).unwrap();
        assert!(jose::verify(&token3, &key, &v).is_ok(), "{alg}: PEM-imported key signs");
        assert!(jose::verify(&token, &from_private_pem, &v).is_ok(), "{alg}: PEM-imported key verifies");

        let public_pem = key.to_pem(false).unwrap();
        assert!(public_pem.starts_with("-----BEGIN PUBLIC KEY-----\n"), "{alg}");
        let from_public_pem = Key::from_pem(&public_pem).unwrap();
        assert_eq!(from_public_pem.thumbprint(), key.thumbprint(), "{alg}: public PEM thumbprint");
        assert!(!from_public_pem.has_private(), "{alg}");
        assert!(jose::verify(&token, &from_public_pem, &v).is_ok(), "{alg}: public PEM verifies");
        assert_eq!(from_public_pem.to_pem(false).unwrap(), public_pem, "{alg}: PEM export is stable");
        assert_eq!(code(from_public_pem.to_pem(true)), ErrorCode::InvalidKey, "{alg}: no private part to export");
    }
}

#[test]
fn rsa_3072_and_4096_keys_work() {
    for bits in [3072u32, 4096] {
        let key = Key::generate(Algorithm::RS256, Some(bits)).unwrap();
        assert_eq!(key.rsa_bits(), Some(bits as usize));
        let token = jose::sign(&claims(), &key, None).unwrap();
        assert_eq!(unb64(&parts(&token).2).len(), bits as usize / 8);
        assert!(jose::verify(&token, &key.public_key().unwrap(), &validation(&[Algorithm::RS256])).is_ok(), "{bits}");
    }
    assert_eq!(code(Key::generate(Algorithm::RS256, Some(1024))), ErrorCode::InvalidRequest);
}

// ---- decode_unverified ------------------------------------------------------------------

#[test]
fn decode_unverified_reads_without_verifying() {
    let header = b64(r#"{"alg":"RS256","kid":"whatever"}"#);
    let payload = b64(r#"{"sub":"mallory","exp":1}"#);
    for sig in ["", "AAAA", "bm90IGEgc2lnbmF0dXJl"] {
        let token = format!("{header}.{payload}.{sig}");
        let decoded = jose::decode_unverified(&token).unwrap();
        assert_eq!(decoded.claims["sub"], "mallory");
        assert_eq!(decoded.header["kid"], "whatever");
        // ...and such a token never verifies.
        assert!(jose::verify(&token, &rsa256_public(), &validation(&[Algorithm::RS256])).is_err());
    }
    let real = jose::sign(&claims(), es256(), None).unwrap();
    assert_eq!(jose::decode_unverified(&real).unwrap().claims, claims());

    for garbage in ["", "garbage", "a.b.c", "a.b", "...", "e30.e30.", format!("{header}.WzFd.").as_str(), format!("{header}.{payload}").as_str()] {
        assert_eq!(code(jose::decode_unverified(garbage)), ErrorCode::InvalidToken, "{garbage:?}");
    }
}

// ---- malformed input never panics -------------------------------------------------------

/// xorshift64*: deterministic, no external crates.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

const POOL: &[char] = &[
    'a', 'Z', '0', '9', '-', '_', '.', '.', '=', '+', '/', '{', '}', '[', ']', '"', ':', ',', ' ', '\n', '\\', 'e', 'y',
    'J', '\u{0}', '\u{e9}', '\u{1F600}', '-', '\r', '\t',
];

/// Inserts a character that is never valid base64url at `at`.
fn insert_bad(s: &str, at: usize, c: char) -> String {
    let mut out = s.to_owned();
    out.insert(at, c);
    out
}

fn malformed_inputs() -> Vec<(String, String)> {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut out: Vec<(String, String)> = Vec::new();
    let mut push = |what: &str, s: String| out.push((what.to_owned(), s));

    // A. Random text.
    for _ in 0..50 {
        let len = rng.below(120);
        let s: String = (0..len).map(|_| *rng.pick(POOL)).collect();
        push("random text", s);
    }
    // B. Three segments of random base64url bytes.
    for _ in 0..25 {
        let (a, b, c) = (rng.below(60), rng.below(60), rng.below(90));
        push("random segments", format!("{}.{}.{}", b64(rng.bytes(a)), b64(rng.bytes(b)), b64(rng.bytes(c))));
    }
    // C. Valid tokens, broken structurally.
    let signers = [hs256(), es256(), rs256()];
    for i in 0..40 {
        let key = signers[i % signers.len()];
        let token = jose::sign(&map(json!({"exp": NOW + 3600, "i": i})), key, None).unwrap();
        let last_dot = token.rfind('.').unwrap();
        let first_dot = token.find('.').unwrap();
        let s = match i % 8 {
            0 => token[..rng.below(last_dot)].to_owned(), // cut before the signature separator
            1 => insert_bad(&token, rng.below(last_dot), *rng.pick(&['!', '=', '+', '/', ' ', '*', '\u{e9}'])),
            2 => insert_bad(&token, rng.below(token.len()), '.'),
            3 => format!("{}.{}", b64(r#"["alg","HS256"]"#), &token[first_dot + 1..]),
            4 => format!("{}.{}", b64(r#"{"typ":"JWT"}"#), &token[first_dot + 1..]),
            5 => format!("{}.{}", b64(r#"{"alg":7}"#), &token[first_dot + 1..]),
            6 => format!("{}.{}.{}", &token[..first_dot], b64(*rng.pick(&["[1]", "1", "\"x\"", "null", "{", "{}}"])), "AAAA"),
            _ => token.replacen('.', "..", 1),
        };
        push("broken token", s);
    }
    // D. JWKs, truncated and with broken members.
    let jwk_sources: Vec<Map<String, Value>> = vec![
        hs256().to_jwk(true).unwrap(),
        es256().to_jwk(true).unwrap(),
        es256().to_jwk(false).unwrap(),
        rs256().to_jwk(false).unwrap(),
        rs256().to_jwk(true).unwrap(),
        Key::generate(Algorithm::EdDSA, None).unwrap().to_jwk(true).unwrap(),
    ];
    for (i, jwk) in jwk_sources.iter().enumerate() {
        let text = serde_json::to_string(jwk).unwrap();
        for _ in 0..3 {
            push("truncated JWK", text[..rng.below(text.len())].to_owned());
        }
        let jwks = serde_json::to_string(&json!({"keys": [Value::Object(jwk.clone())]})).unwrap();
        push("truncated JWKS", jwks[..rng.below(jwks.len())].to_owned());
        // Corrupt one required member (the first base64url one).
        let member = ["k", "x", "n", "e", "y", "d"].into_iter().find(|m| jwk.contains_key(*m)).unwrap();
        let original = jwk[member].as_str().unwrap().to_owned();
        let corruptions: [(&str, Value); 7] = [
            ("number", json!(5)),
            ("padded", json!(format!("{original}=="))),
            ("std alphabet", json!(format!("+/{original}"))),
            ("truncated", json!(original[..original.len() / 3].to_owned())),
            ("empty", json!("")),
            ("null", Value::Null),
            ("whitespace", json!(format!("{} {}", &original[..4], &original[4..]))),
        ];
        let (what, value) = &corruptions[i % corruptions.len()];
        for (what, value) in [(what, value), (&corruptions[(i + 3) % 7].0, &corruptions[(i + 3) % 7].1)] {
            let mut broken = jwk.clone();
            broken.insert(member.into(), value.clone());
            push(&format!("JWK {member} {what}"), serde_json::to_string(&broken).unwrap());
            push(
                &format!("JWKS {member} {what}"),
                serde_json::to_string(&json!({"keys": [Value::Object(broken)]})).unwrap(),
            );
        }
        let mut no_kty = jwk.clone();
        no_kty.remove("kty");
        push("JWK without kty", serde_json::to_string(&no_kty).unwrap());
        push("JWKS without kty", serde_json::to_string(&json!({"keys": [Value::Object(no_kty)]})).unwrap());
    }
    // An EC private key whose d belongs to another key; an RSA key whose n
    // does not fit its private members; an Ed25519 key with a foreign x.
    let mut ec_mismatch = es256().to_jwk(true).unwrap();
    ec_mismatch.insert("d".into(), Key::generate(Algorithm::ES256, None).unwrap().to_jwk(true).unwrap()["d"].clone());
    push("EC d mismatch", serde_json::to_string(&ec_mismatch).unwrap());
    let mut rsa_mismatch = rs256().to_jwk(true).unwrap();
    rsa_mismatch.insert("n".into(), Key::generate(Algorithm::RS256, None).unwrap().to_jwk(false).unwrap()["n"].clone());
    push("RSA n mismatch", serde_json::to_string(&rsa_mismatch).unwrap());
    let mut ed_mismatch = Key::generate(Algorithm::EdDSA, None).unwrap().to_jwk(true).unwrap();
    ed_mismatch.insert("x".into(), Key::generate(Algorithm::EdDSA, None).unwrap().to_jwk(false).unwrap()["x"].clone());
    push("Ed25519 x mismatch", serde_json::to_string(&ed_mismatch).unwrap());
    let mut ec_off_curve = es256().to_jwk(false).unwrap();
    ec_off_curve.insert("y".into(), json!(b64([1u8; 32])));
    push("EC point off the curve", serde_json::to_string(&ec_off_curve).unwrap());
    for text in [
        r#"{"kty":"oct","k":"c2hvcnQ"}"#,
        r#"{"kty":"RSA","n":"AQAB","e":"AQAB"}"#,
        r#"{"kty":"EC","crv":"P-256","x":"AA","y":"AA"}"#,
        r#"{"kty":"OKP","crv":"Ed25519","x":"AA"}"#,
        r#"{"kty":"RSA","n":"AQAB","e":"AQAB","oth":[]}"#,
        r#"{"kty":7}"#,
        r#"{"kty":"EC","crv":"P-256","x":"AA","y":"AA","kty":"EC"}"#,
        r#"{"keys":{}}"#,
        r#"{"keys":[1]}"#,
        r#"{"keys":"[]"}"#,
        r#"{"keys":[{"kty":"oct","k":"c2hvcnQ"}]}"#,
        r#"{"keys":[],"keys":[]}"#,
        "null",
        "[]",
        "\u{feff}{}",
    ] {
        push("hand-written JSON", text.to_owned());
    }
    // Deep nesting must hit the parser's recursion limit, not the stack.
    push("deep arrays", "[".repeat(100_000));
    push("deep objects", r#"{"a":"#.repeat(50_000));
    push("deep JWKS", format!(r#"{{"keys":{}"#, "[".repeat(100_000)));
    push("deep token header", format!("{}.e30.", b64("[".repeat(3_000))));
    // F. PEM.
    let pems = [
        rs256().to_pem(true).unwrap(),
        rs256().to_pem(false).unwrap(),
        es256().to_pem(true).unwrap(),
        es256().to_pem(false).unwrap(),
        Key::generate(Algorithm::EdDSA, None).unwrap().to_pem(true).unwrap(),
        Key::generate(Algorithm::ES512, None).unwrap().to_pem(false).unwrap(),
    ];
    for pem in &pems {
        let end = pem.find("-----END").unwrap();
        push("truncated PEM", pem[..rng.below(end)].to_owned());
        let label = pem.lines().next().unwrap().trim_start_matches("-----BEGIN ").trim_end_matches("-----").to_owned();
        let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        let der = STANDARD.decode(&body).unwrap();
        // Truncated DER, re-encoded.
        for cut in [1, der.len() / 2, der.len() - 1] {
            push("truncated DER", format!("-----BEGIN {label}-----\n{}\n-----END {label}-----\n", STANDARD.encode(&der[..cut])));
        }
        // A flipped length byte.
        let mut bad_len = der.clone();
        bad_len[1] ^= 0x01;
        push("bad DER length", format!("-----BEGIN {label}-----\n{}\n-----END {label}-----\n", STANDARD.encode(&bad_len)));
        // Random DER.
        let random_len = 1 + rng.below(200);
        let random = rng.bytes(random_len);
        push("random DER", format!("-----BEGIN {label}-----\n{}\n-----END {label}-----\n", STANDARD.encode(random)));
        // A body character that is not base64.
        let mut corrupted = pem.clone();
        let at = pem.find('\n').unwrap() + 1 + rng.below(20);
        corrupted.replace_range(at..at + 1, "*");
        push("corrupted PEM body", corrupted);
        // Wrong END label.
        push("mismatched PEM labels", pem.replace("-----END", "-----END X"));
        // The DER of one kind under another label.
        let other = if label == "PUBLIC KEY" { "PRIVATE KEY" } else { "PUBLIC KEY" };
        push("swapped PEM label", format!("-----BEGIN {other}-----\n{body}\n-----END {other}-----\n"));
    }
    for text in [
        "-----BEGIN -----\n-----END -----",
        "-----BEGIN PRIVATE KEY-----",
        "-----BEGIN PRIVATE KEY-----\n-----END PRIVATE KEY-----",
        "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMAA=\n-----END ENCRYPTED PRIVATE KEY-----",
        "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nMAA=\n-----END RSA PRIVATE KEY-----",
        "-----BEGIN RSA PUBLIC KEY-----\nMAA=\n-----END RSA PUBLIC KEY-----",
        "-----BEGIN EC PRIVATE KEY-----\nMAA=\n-----END EC PRIVATE KEY-----",
        "-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----",
        "-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA\n-----END PUBLIC KEY-----",
        "-----BEGIN PUBLIC KEY-----\nMIQAAAAA\n-----END PUBLIC KEY-----",
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl",
    ] {
        push("hand-written PEM", text.to_owned());
    }
    out
}

/// Runs one parser; `Some(debug text)` when it wrongly accepted the input.
type Check<'a> = Box<dyn Fn(&str) -> Option<String> + 'a>;

#[test]
fn malformed_input_is_an_error_never_a_panic() {
    let inputs = malformed_inputs();
    assert!(inputs.len() >= 200, "only {} inputs", inputs.len());
    let verify_keys = KeySet::new(vec![hs256().clone(), es256().clone(), rs256().clone()]).unwrap();
    let v = validation(&Algorithm::ALL);
    let mut failures = Vec::new();
    for (i, (what, input)) in inputs.iter().enumerate() {
        let checks: [(&str, Check<'_>); 6] = [
            ("verify(key set)", Box::new(|s: &str| jose::verify(s, &verify_keys, &v).ok().map(|t| format!("{t:?}")))),
            ("verify(key)", Box::new(|s: &str| jose::verify(s, hs256(), &v).ok().map(|t| format!("{t:?}")))),
            ("decode_unverified", Box::new(|s: &str| jose::decode_unverified(s).ok().map(|t| format!("{t:?}")))),
            ("Key::from_jwk_json", Box::new(|s: &str| Key::from_jwk_json(s).ok().map(|k| format!("{k:?}")))),
            ("Key::from_pem", Box::new(|s: &str| Key::from_pem(s).ok().map(|k| format!("{k:?}")))),
            ("KeySet::from_jwks_json", Box::new(|s: &str| KeySet::from_jwks_json(s).ok().map(|k| format!("{k:?}")))),
        ];
        for (name, check) in &checks {
            match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check(input))) {
                Ok(None) => {}
                Ok(Some(ok)) => failures.push(format!("#{i} {what}: {name} accepted {:?} -> {ok}", preview(input))),
                Err(_) => failures.push(format!("#{i} {what}: {name} PANICKED on {:?}", preview(input))),
            }
        }
    }
    assert!(failures.is_empty(), "{} failures:\n{}", failures.len(), failures.join("\n"));
}

fn preview(s: &str) -> String {
    s.chars().take(120).collect()
}

/// The allocation-light scanner behind `verify_payload` and the JSON tree
/// parser behind `verify`/`decode_unverified` must accept exactly the same
/// payloads.
#[test]
fn fast_scanner_and_tree_parser_agree() {
    use idflow::jose::{sign_payload, verify, verify_payload, Algorithm, Key, Validation};
    let key = Key::generate(Algorithm::HS256, None).unwrap_or_else(|e| unreachable!("{e}"));
    let deep_ok = format!(r#"{{"x":{}1{}}}"#, "[".repeat(63), "]".repeat(63));
    let deep_bad = format!(r#"{{"x":{}1{}}}"#, "[".repeat(64), "]".repeat(64));
    let payloads: Vec<String> = vec![
        r#"{"a":1}"#.into(),
        r#"{"a":1,"a":2}"#.into(),
        r#"{"a":1,"\u0061":2}"#.into(),
        r#"{"a":{"b":1,"b":2}}"#.into(),
        r#"{"a":[{"b":1},{"b":1}]}"#.into(),
        r#"{"a":[{"b":1,"b":1}]}"#.into(),
        r#"{"exp":1e400}"#.into(),
        r#"{"n":18446744073709551616}"#.into(),
        r#"{"s":"\ud800"}"#.into(),
        r#"{"a":1} "#.into(),
        r#"{"a":1} x"#.into(),
        r#"{"a":1}{"b":2}"#.into(),
        "\u{feff}{}".into(),
        r#"[{"a":1}]"#.into(),
        r#""x""#.into(),
        "{}".into(),
        r#"{"aud":[["x"]],"iss":{"a":1,"a":1}}"#.into(),
        deep_ok,
        deep_bad,
    ];
    let mut v = Validation::new(&[Algorithm::HS256]);
    v.required_claims.clear();
    for p in payloads {
        let token = sign_payload(p.as_bytes(), &key, None).unwrap_or_else(|e| unreachable!("{e}"));
        let fast = verify_payload(&token, &key, &v);
        let tree = verify(&token, &key, &v);
        assert_eq!(fast.is_ok(), tree.is_ok(), "payload {p:?}: fast {fast:?} tree {tree:?}");
        if let Err(e) = fast {
            assert_eq!(Some(e.code), tree.err().map(|t| t.code), "payload {p:?}");
        }
    }
}

#[test]
fn sign_json_needs_one_strict_object() {
    use idflow::jose::{sign_json, verify, Algorithm, Key, Validation};
    use idflow::ErrorCode;
    let key = Key::generate(Algorithm::ES256, None).unwrap_or_else(|e| unreachable!("{e}"));
    for bad in ["[1]", "\"x\"", "1", "", "{\"a\":1,\"a\":2}", "{\"a\":1} {}", "{"] {
        assert_eq!(sign_json(bad, &key, None).map_err(|e| e.code), Err(ErrorCode::InvalidRequest), "{bad:?}");
    }
    let token = sign_json(r#"{"sub":"u","exp":4102444800}"#, &key, None).unwrap_or_else(|e| unreachable!("{e}"));
    let claims = verify(&token, &key, &Validation::new(&[Algorithm::ES256])).unwrap_or_else(|e| unreachable!("{e}")).claims;
    assert_eq!(claims["sub"], "u");
}
