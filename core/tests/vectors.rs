//! Runs every entry of the shared RFC test vectors in `tests/vectors/`
//! (see tests/vectors/README.md) against the idflow core.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use idflow::jose::{self, Algorithm, Key, Validation};
use idflow::pkce::{self, Method};
use idflow::ErrorCode;
use serde_json::{Map, Value};

macro_rules! vector_path {
    ($name:literal) => {
        concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/vectors/", $name)
    };
}

fn load(path: &str) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path} is not JSON: {e}"))
}

fn entries<'a>(doc: &'a Value, member: &str, path: &str) -> &'a Vec<Value> {
    let items = doc[member].as_array().unwrap_or_else(|| panic!("{path}: no {member:?} array"));
    assert!(!items.is_empty(), "{path}: {member:?} is empty");
    items
}

fn b64url_decode(text: &str) -> Vec<u8> {
    URL_SAFE_NO_PAD.decode(text).unwrap_or_else(|e| panic!("vector base64url {text:?} does not decode: {e}"))
}

fn b64url(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn s<'a>(v: &'a Value, member: &str, id: &str) -> &'a str {
    v[member].as_str().unwrap_or_else(|| panic!("{id}: member {member:?} is not a string"))
}

fn obj<'a>(v: &'a Value, member: &str, id: &str) -> &'a Map<String, Value> {
    v[member].as_object().unwrap_or_else(|| panic!("{id}: member {member:?} is not an object"))
}

fn code<T: std::fmt::Debug>(r: idflow::Result<T>, what: &str) -> ErrorCode {
    match r {
        Ok(v) => panic!("{what}: expected an error, got Ok({v:?})"),
        Err(e) => e.code,
    }
}

fn ids(items: &[Value]) -> Vec<&str> {
    items.iter().filter_map(|v| v["id"].as_str()).collect()
}

const KNOWN_FILES: [&str; 8] = [
    "pkce_rfc7636.json",
    "jws_rfc7515.json",
    "jws_rfc7520.json",
    "jws_rfc8037.json",
    "jws_rfc7797.json",
    "jwk_thumbprint_rfc7638.json",
    "error_codes.json", // covered by the unit test in core/src/error.rs
    "result_shapes.json",
];

#[test]
fn every_vector_file_is_run_by_this_suite() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/vectors");
    let mut found = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        if name.ends_with(".json") {
            found += 1;
            assert!(KNOWN_FILES.contains(&name.as_str()), "vector file {name} is not run by core/tests/vectors.rs");
        }
    }
    assert_eq!(found, KNOWN_FILES.len(), "a known vector file is missing from {dir}");
}

// ---- PKCE (RFC 7636) ---------------------------------------------------------

#[test]
fn pkce_rfc7636_vectors() {
    let path = vector_path!("pkce_rfc7636.json");
    let doc = load(path);
    let vectors = entries(&doc, "vectors", path);
    for v in vectors {
        let id = s(v, "id", "pkce");
        let verifier = s(v, "code_verifier", id);
        let challenge = s(v, "code_challenge", id);
        let expected = s(v, "expected", id);
        let method = Method::parse(s(v, "code_challenge_method", id)).unwrap_or_else(|e| panic!("{id}: {e}"));
        assert!(matches!(expected, "match" | "mismatch"), "{id}: unknown expected {expected:?}");
        let want_match = expected == "match";

        if let Some(octets) = v["verifier_octets"].as_array() {
            let bytes: Vec<u8> = octets.iter().map(|o| o.as_u64().unwrap() as u8).collect();
            assert_eq!(b64url(&bytes), verifier, "{id}: verifier = b64url(verifier_octets)");
        }
        if let Some(octets) = v["challenge_sha256_octets"].as_array() {
            let bytes: Vec<u8> = octets.iter().map(|o| o.as_u64().unwrap() as u8).collect();
            assert_eq!(b64url(&bytes), challenge, "{id}: challenge = b64url(challenge_sha256_octets)");
        }

        match method {
            Method::S256 => {
                assert_eq!(pkce::verify(verifier, challenge, Method::S256, false), Ok(want_match), "{id}: S256 verify");
                // allow_plain must not change S256 behaviour.
                assert_eq!(pkce::verify(verifier, challenge, Method::S256, true), Ok(want_match), "{id}: S256 verify (allow_plain)");
                let computed = pkce::challenge(verifier, Method::S256, false).unwrap_or_else(|e| panic!("{id}: {e}"));
                assert_eq!(computed == challenge, want_match, "{id}: computed challenge {computed:?} vs {challenge:?}");
            }
            Method::Plain => {
                assert_eq!(
                    code(pkce::verify(verifier, challenge, Method::Plain, false), id),
                    ErrorCode::InvalidRequest,
                    "{id}: plain must be refused without allow_plain"
                );
                assert_eq!(
                    code(pkce::challenge(verifier, Method::Plain, false), id),
                    ErrorCode::InvalidRequest,
                    "{id}: plain challenge must be refused without allow_plain"
                );
                assert_eq!(pkce::verify(verifier, challenge, Method::Plain, true), Ok(want_match), "{id}: plain verify (allowed)");
                let computed = pkce::challenge(verifier, Method::Plain, true).unwrap_or_else(|e| panic!("{id}: {e}"));
                assert_eq!(computed == challenge, want_match, "{id}: plain challenge");
            }
        }
    }
    assert!(ids(vectors).contains(&"rfc7636-B-S256"), "the RFC 7636 Appendix B vector is present");

    let syntax = entries(&doc, "verifier_syntax", path);
    for (i, v) in syntax.iter().enumerate() {
        let verifier = s(v, "code_verifier", "verifier_syntax");
        let reason = v["reason"].as_str().unwrap_or("?");
        let valid = v["valid"].as_bool().unwrap_or_else(|| panic!("verifier_syntax[{i}]: valid is not a bool"));
        let result = pkce::validate_verifier(verifier);
        if valid {
            assert_eq!(result, Ok(()), "verifier_syntax[{i}] ({reason}) must be valid");
            // A valid verifier can always be turned into a challenge.
            assert!(pkce::challenge(verifier, Method::S256, false).is_ok(), "verifier_syntax[{i}] ({reason})");
        } else {
            assert_eq!(
                result.map_err(|e| e.code),
                Err(ErrorCode::InvalidRequest),
                "verifier_syntax[{i}] ({reason}) must be invalid_request"
            );
            // ...and verify refuses it as malformed rather than answering false.
            assert_eq!(
                code(pkce::verify(verifier, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", Method::S256, false), reason),
                ErrorCode::InvalidRequest,
                "verifier_syntax[{i}] ({reason}): verify"
            );
        }
    }
}

// ---- JWS (RFC 7515, 7520, 8037, 7797) ------------------------------------------

/// Counts what a JWS file exercised, so a file that silently skips entries fails.
#[derive(Default, Debug)]
struct Ran {
    compact_verified: usize,
    raw_verified: usize,
    resigned: usize,
    rejected: usize,
    jwt_level: usize,
}

fn pinned(alg: Algorithm) -> Validation {
    let mut v = Validation::new(&[alg]);
    v.now = Some(1_300_819_300); // before exp 1300819380 of RFC 7515 A.1-A.3
    v
}

fn flip_last_signature_byte(compact: &str) -> String {
    let (head, sig) = compact.rsplit_once('.').unwrap();
    let mut bytes = b64url_decode(sig);
    let last = bytes.len() - 1;
    bytes[last] ^= 0x01;
    format!("{head}.{}", b64url(&bytes))
}

fn run_jws_file(path: &str) -> Ran {
    let doc = load(path);
    let vectors = entries(&doc, "vectors", path);
    let mut ran = Ran::default();
    for v in vectors {
        let id = s(v, "id", path);
        let expected = s(v, "expected", id);
        let alg_name = s(v, "alg", id);
        let compact = v["compact"].as_str();
        let signing_input = s(v, "signing_input", id);
        let signature_b64u = s(v, "signature_b64u", id);
        let payload = s(v, "payload", id);
        let protected_b64u = s(v, "protected_b64u", id);
        let detached = v["detached_payload"].as_bool().unwrap_or(false);

        // The vector's own pieces must agree with each other.
        if let Some(header) = v["protected_header"].as_str() {
            assert_eq!(b64url(header.as_bytes()), protected_b64u, "{id}: protected_b64u = b64url(protected_header)");
        } else {
            assert_eq!(protected_b64u, "", "{id}: no protected header");
        }
        if let Some(payload_b64u) = v["payload_b64u"].as_str() {
            assert_eq!(b64url(payload.as_bytes()), payload_b64u, "{id}: payload_b64u = b64url(payload)");
            assert_eq!(signing_input, format!("{protected_b64u}.{payload_b64u}"), "{id}: signing_input");
        }
        if let Some(compact) = compact {
            assert_eq!(compact.rsplit_once('.').map(|(_, sig)| sig), Some(signature_b64u), "{id}: compact signature");
        }

        if expected == "reject" {
            // RFC 7515 A.5: alg "none" can never be accepted, whatever is allowed.
            assert_eq!(
                code(Algorithm::parse(alg_name), id),
                ErrorCode::UnsupportedAlgorithm,
                "{id}: alg {alg_name:?} must not parse"
            );
            let compact = compact.unwrap_or_else(|| panic!("{id}: reject vector without compact form"));
            let any_key = Key::generate(Algorithm::HS256, None).unwrap();
            assert_eq!(
                code(jose::verify_jws(compact, &any_key, &Algorithm::ALL, 1 << 20), id),
                ErrorCode::UnsupportedAlgorithm,
                "{id}: verify_jws"
            );
            let mut validation = Validation::new(&Algorithm::ALL);
            validation.now = Some(1_300_819_300);
            assert_eq!(
                code(jose::verify(compact, &any_key, &validation), id),
                ErrorCode::UnsupportedAlgorithm,
                "{id}: JWT verify"
            );
            ran.rejected += 1;
            continue;
        }

        let alg = Algorithm::parse(alg_name).unwrap_or_else(|e| panic!("{id}: {e}"));
        let signature = b64url_decode(signature_b64u);
        let private = Key::from_jwk(obj(v, "key", id)).unwrap_or_else(|e| panic!("{id}: key import: {e}"));
        let mut keys = vec![("key", private.clone())];
        if !v["public_key"].is_null() {
            let public = Key::from_jwk(obj(v, "public_key", id)).unwrap_or_else(|e| panic!("{id}: public_key import: {e}"));
            assert!(!public.has_private(), "{id}: public_key has no private part");
            assert_eq!(public.thumbprint(), private.thumbprint(), "{id}: key and public_key are the same key");
            keys.push(("public_key", public));
        }
        if let Some(tp) = v["jwk_thumbprint_sha256"].as_str() {
            for (which, key) in &keys {
                assert_eq!(key.thumbprint(), tp, "{id}: {which} thumbprint");
            }
        }

        for (which, key) in &keys {
            let ctx = format!("{id} ({which}, {alg})");

            // The raw primitive over the exact signing input, always.
            key.verify_bytes(alg, signing_input.as_bytes(), &signature)
                .unwrap_or_else(|e| panic!("{ctx}: raw verify: {e}"));
            let mut bad = signature.clone();
            bad[0] ^= 0x80;
            assert_eq!(
                code(key.verify_bytes(alg, signing_input.as_bytes(), &bad), &ctx),
                ErrorCode::InvalidSignature,
                "{ctx}: raw verify of a modified signature"
            );
            ran.raw_verified += 1;

            match (expected, compact) {
                ("reject_unless_b64_supported", Some(compact)) => {
                    // RFC 7797 4.2: crit b64 must be refused by an implementation without b64.
                    assert_eq!(
                        code(jose::verify_jws(compact, key, &[alg], 1 << 20), &ctx),
                        ErrorCode::InvalidToken,
                        "{ctx}: crit b64 must be rejected"
                    );
                    assert_eq!(
                        code(jose::verify(compact, key, &pinned(alg)), &ctx),
                        ErrorCode::InvalidToken,
                        "{ctx}: crit b64 must be rejected (JWT)"
                    );
                    ran.rejected += 1;
                }
                ("valid", Some(compact)) if detached => {
                    // RFC 7520 4.5: the compact form has an empty payload segment.
                    assert!(compact.contains(".."), "{ctx}: detached compact has an empty payload segment");
                    assert_eq!(
                        code(jose::verify_jws(compact, key, &[alg], 1 << 20), &ctx),
                        ErrorCode::InvalidSignature,
                        "{ctx}: detached compact does not verify without its payload"
                    );
                    // Re-attached, it is an ordinary JWS over the same signing input.
                    let attached = format!("{signing_input}.{signature_b64u}");
                    let jws = jose::verify_jws(&attached, key, &[alg], 1 << 20)
                        .unwrap_or_else(|e| panic!("{ctx}: re-attached compact: {e}"));
                    assert_eq!(jws.payload, payload.as_bytes(), "{ctx}: payload");
                    ran.compact_verified += 1;
                }
                ("valid", Some(compact)) => {
                    let jws = jose::verify_jws(compact, key, &[alg], 1 << 20)
                        .unwrap_or_else(|e| panic!("{ctx}: verify_jws: {e}"));
                    assert_eq!(jws.payload, payload.as_bytes(), "{ctx}: payload bytes");
                    let header: Map<String, Value> = serde_json::from_str(s(v, "protected_header", id)).unwrap();
                    assert_eq!(jws.header, header, "{ctx}: header");
                    assert_eq!(
                        code(jose::verify_jws(&flip_last_signature_byte(compact), key, &[alg], 1 << 20), &ctx),
                        ErrorCode::InvalidSignature,
                        "{ctx}: a modified signature must fail"
                    );
                    let other = if alg == Algorithm::HS256 { Algorithm::RS256 } else { Algorithm::HS256 };
                    assert_eq!(
                        code(jose::verify_jws(compact, key, &[other], 1 << 20), &ctx),
                        ErrorCode::UnsupportedAlgorithm,
                        "{ctx}: alg outside the allowed list"
                    );
                    ran.compact_verified += 1;

                    // JWT level.
                    let is_claims = serde_json::from_str::<Map<String, Value>>(payload).is_ok();
                    if is_claims {
                        let token = jose::verify(compact, key, &pinned(alg))
                            .unwrap_or_else(|e| panic!("{ctx}: JWT verify with pinned clock: {e}"));
                        assert_eq!(token.claims["iss"], "joe", "{ctx}: iss");
                        assert_eq!(token.claims["exp"], 1_300_819_380u64, "{ctx}: exp");
                        assert_eq!(token.claims["http://example.com/is_root"], true, "{ctx}: is_root");
                        assert_eq!(
                            code(jose::verify(compact, key, &Validation::new(&[alg])), &ctx),
                            ErrorCode::ExpiredToken,
                            "{ctx}: JWT verify with the real clock (exp is in 2011)"
                        );
                    } else {
                        assert_eq!(
                            code(jose::verify(compact, key, &pinned(alg)), &ctx),
                            ErrorCode::InvalidToken,
                            "{ctx}: a non-JSON payload is not a JWT"
                        );
                    }
                    ran.jwt_level += 1;
                }
                ("valid", None) => {
                    // RFC 7520 4.7 / 4.8 sig 2: alg only in an unprotected header;
                    // the raw verify above is the test.
                    assert!(v["unprotected_header"].is_object(), "{ctx}: compact is null only for unprotected alg");
                }
                _ => panic!("{ctx}: unexpected expected={expected:?} / compact={compact:?}"),
            }

            if v["deterministic"].as_bool() == Some(true) && key.has_private() {
                let resigned = key
                    .sign_bytes(alg, signing_input.as_bytes())
                    .unwrap_or_else(|e| panic!("{ctx}: re-sign: {e}"));
                assert_eq!(b64url(&resigned), signature_b64u, "{ctx}: deterministic re-signing must reproduce the signature");
                ran.resigned += 1;
            }
        }
    }
    ran
}

#[test]
fn jws_rfc7515_vectors() {
    let ran = run_jws_file(vector_path!("jws_rfc7515.json"));
    // A.1 oct; A.2-A.4 key + public_key; A.5 rejected.
    assert_eq!(ran.compact_verified, 7, "{ran:?}");
    assert_eq!(ran.raw_verified, 7, "{ran:?}");
    assert_eq!(ran.resigned, 2, "A.1 (HS256) and A.2 (RS256) re-sign: {ran:?}");
    assert_eq!(ran.rejected, 1, "A.5 (none): {ran:?}");
    assert_eq!(ran.jwt_level, 7, "{ran:?}");
}

#[test]
fn jws_rfc7520_vectors() {
    let ran = run_jws_file(vector_path!("jws_rfc7520.json"));
    // 10 entries; RSA/EC ones have a public_key too (4.1, 4.2, 4.3, 4.8-sig1, 4.8-sig2).
    assert_eq!(ran.raw_verified, 15, "{ran:?}");
    // Compact forms everywhere except 4.7 (oct) and 4.8-sig2 (key + public_key).
    assert_eq!(ran.compact_verified, 12, "{ran:?}");
    // Deterministic: 4.1, 4.4, 4.5, 4.6, 4.7, 4.8-sig1, 4.8-sig3 (private keys only).
    assert_eq!(ran.resigned, 7, "{ran:?}");
}

#[test]
fn jws_rfc8037_vectors() {
    let ran = run_jws_file(vector_path!("jws_rfc8037.json"));
    assert_eq!(ran.compact_verified, 2, "{ran:?}");
    assert_eq!(ran.jwt_level, 2, "non-JSON payload refused at JWT level: {ran:?}");
    assert_eq!(ran.resigned, 1, "Ed25519 is deterministic: {ran:?}");
}

#[test]
fn jws_rfc7797_vectors() {
    let ran = run_jws_file(vector_path!("jws_rfc7797.json"));
    assert_eq!(ran.compact_verified, 1, "4.1: {ran:?}");
    assert_eq!(ran.rejected, 1, "4.2 (b64=false, crit): {ran:?}");
    assert_eq!(ran.resigned, 2, "{ran:?}");
    assert_eq!(ran.raw_verified, 2, "{ran:?}");
}

// ---- JWK thumbprints (RFC 7638) ---------------------------------------------------

#[test]
fn jwk_thumbprint_rfc7638_vectors() {
    let path = vector_path!("jwk_thumbprint_rfc7638.json");
    let doc = load(path);
    let vectors = entries(&doc, "vectors", path);
    for v in vectors {
        let id = s(v, "id", path);
        let jwk = obj(v, "jwk", id);
        let expected_tp = s(v, "thumbprint_sha256", id);
        let canonical = s(v, "canonical_json", id);
        if let Some(octets) = v["sha256_octets"].as_array() {
            let bytes: Vec<u8> = octets.iter().map(|o| o.as_u64().unwrap() as u8).collect();
            assert_eq!(b64url(&bytes), expected_tp, "{id}: thumbprint = b64url(sha256_octets)");
        }

        // The only members that matter for the thumbprint are the required ones.
        let mut required = jwk.clone();
        for optional in ["kid", "alg", "use", "key_ops"] {
            required.remove(optional);
        }

        let key = match Key::from_jwk(jwk) {
            Ok(key) => key,
            // RFC 7517 A.1's EC key is `"use":"enc"`. If idflow refuses to
            // import it as a JWS key, check its thumbprint on the same JWK
            // without "use".
            Err(e) if jwk.get("use").and_then(Value::as_str).is_some_and(|u| u != "sig") => {
                assert_eq!(e.code, ErrorCode::InvalidKey, "{id}: a \"use\":\"enc\" JWK");
                let mut signing = jwk.clone();
                signing.remove("use");
                Key::from_jwk(&signing).unwrap_or_else(|e| panic!("{id}: {e}"))
            }
            Err(e) => panic!("{id}: import: {e}"),
        };
        if let Some(u) = jwk.get("use").and_then(Value::as_str).filter(|u| *u != "sig") {
            // Whatever the import did, an encryption key never verifies a JWS.
            if key.key_use() == Some(u) {
                assert_eq!(
                    code(key.verify_bytes(Algorithm::ES256, b"m", &[0u8; 64]), id),
                    ErrorCode::InvalidKey,
                    "{id}: a \"use\":\"{u}\" key is not usable for JWS"
                );
            }
            let jwks = serde_json::json!({"keys": [Value::Object(jwk.clone())]}).to_string();
            let set = idflow::jose::KeySet::from_jwks_json(&jwks).unwrap_or_else(|e| panic!("{id}: {e}"));
            assert!(set.is_empty(), "{id}: a key set skips a \"use\":\"{u}\" key");
        }
        assert_eq!(key.thumbprint(), expected_tp, "{id}: thumbprint");
        assert_eq!(key.canonical_jwk(), canonical, "{id}: canonical JSON");

        let bare = Key::from_jwk(&required).unwrap_or_else(|e| panic!("{id}: {e}"));
        assert_eq!(bare.thumbprint(), expected_tp, "{id}: optional members do not change the thumbprint");
        let renamed = bare.clone().with_kid("something-else");
        assert_eq!(renamed.thumbprint(), expected_tp, "{id}: kid does not change the thumbprint");
        if let Some(kid) = jwk.get("kid").and_then(Value::as_str) {
            assert_eq!(key.kid(), kid, "{id}: explicit kid kept");
        } else {
            assert_eq!(key.kid(), expected_tp, "{id}: kid defaults to the thumbprint");
        }
    }
    let ids = ids(vectors);
    for want in ["rfc7638-3.1", "rfc8037-A.3", "rfc7517-A.1-ec"] {
        assert!(ids.contains(&want), "{want} is present");
    }
}

/// The token set and the session as core writes them for every binding
/// have the fields of tests/vectors/result_shapes.json.
#[test]
fn result_shapes() {
    use idflow::oidc::client::session::Session;
    use idflow::oidc::client::TokenSet;
    let shapes = load(vector_path!("result_shapes.json"));
    let expected = |concept: &str| -> Vec<String> {
        let mut names: Vec<String> = shapes[concept].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_owned()).collect();
        names.sort();
        names
    };
    let keys = |v: Value| -> Vec<String> {
        let mut names: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        names.sort();
        names
    };
    let some = |s: &str| Some(s.to_owned());
    let claims: Map<String, Value> = [("sub".to_owned(), Value::from("u1"))].into_iter().collect();
    let tokens = TokenSet {
        access_token: "at".into(),
        token_type: "Bearer".into(),
        expires_in: Some(60),
        refresh_token: some("rt"),
        id_token: some("it"),
        scope: some("openid"),
        claims: Some(claims.clone()),
    };
    assert_eq!(keys(tokens.to_json()), expected("token_set"));
    let session = Session {
        access_token: "at".into(),
        token_type: "Bearer".into(),
        refresh_token: some("rt"),
        id_token: some("it"),
        scope: some("openid"),
        expires_at: Some(1),
        claims,
    };
    assert_eq!(keys(session.to_json()), expected("session"));
}
