//! JOSE benchmark: idflow's native sign/verify and the raw aws-lc-rs floor.
//!
//! `cargo bench -p idflow --bench jose` prints one JSON object per line, the
//! same shape as `tests/bench/bench_py.py` and `bench_node.js`:
//! `{"lang":"rust","lib":"idflow","alg":"RS256","op":"verify","ops":..,"note":""}`.
//! `tests/bench/run.sh` collects them and `tests/bench/report.py` prints the
//! table. Each (lib, alg, op) runs for `BENCH_SECONDS` (default 1.0) of wall
//! clock after a short warm-up, cycling over `BENCH_TOKENS` (default 2000)
//! distinct tokens (distinct `jti`); the rate reported is the best of five
//! equal windows (the same rule as the Python and Node benches).
//!
//! idflow rows: `jose::sign`, `jose::verify` (claims as a JSON map) and
//! `jose::verify_payload` (the verified payload bytes, no JSON tree: what the
//! bindings build their objects from), each with a `Validation` checking
//! `iss`, `aud` and `exp`.
//!
//! The raw floor ("aws-lc-rs") is the primitive alone with the key parsed once:
//! `hmac::sign`/`hmac::verify`, `ParsedPublicKey::verify_sig`,
//! `RsaKeyPair::sign`, `EcdsaKeyPair::sign`, `Ed25519KeyPair::sign`, over the
//! very signing inputs (and, for verify, signatures) of idflow's tokens. It
//! does no base64, JSON or claim work: no JWT library can beat it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use aws_lc_rs::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _, ParsedPublicKey, RsaKeyPair};
use aws_lc_rs::{hmac, rand};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use idflow::jose::{self, Algorithm, Key, KeySet, Validation};
use serde_json::{Map, Value};
use std::hint::black_box;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const ISS: &str = "https://issuer.idflow.test/Pbench";
const AUD: &str = "idflow-bench";
/// Timed windows per measurement (the best one is reported).
const WINDOWS: usize = 5;

fn env_f64(name: &str, default: f64) -> f64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Runs `op(i)` with i = 0, 1, 2, ... for about `secs` seconds after a
/// warm-up and returns operations per second: the best of `WINDOWS` equal
/// windows, so a burst of load from another process on the machine costs one
/// window, not the result.
fn measure(secs: f64, mut op: impl FnMut(usize)) -> f64 {
    let warm = Instant::now();
    let mut i = 0usize;
    while warm.elapsed() < Duration::from_secs_f64((secs * 0.15).max(0.05)) {
        for _ in 0..16 {
            op(i);
            i = i.wrapping_add(1);
        }
    }
    let window = Duration::from_secs_f64(secs / WINDOWS as f64);
    let mut best = 0f64;
    for _ in 0..WINDOWS {
        let start = Instant::now();
        let mut n = 0u64;
        loop {
            for _ in 0..16 {
                op(i);
                i = i.wrapping_add(1);
            }
            n += 16;
            let el = start.elapsed();
            if el >= window {
                best = best.max(n as f64 / el.as_secs_f64());
                break;
            }
        }
    }
    best
}

fn emit(lib: &str, alg: &str, op: &str, ops: f64, note: &str) {
    let row = serde_json::json!({"lang": "rust", "lib": lib, "alg": alg, "op": op, "ops": (ops * 10.0).round() / 10.0, "note": note});
    println!("{row}");
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

fn claims(i: usize, now: u64) -> Map<String, Value> {
    let v = serde_json::json!({
        "iss": ISS,
        "sub": format!("user-{}", i % 97),
        "aud": AUD,
        "iat": now,
        "exp": now + 3600,
        "jti": format!("jti-{i:08}"),
    });
    match v {
        Value::Object(m) => m,
        _ => unreachable!(),
    }
}

/// The DER inside a PEM block.
fn pem_der(pem: &str) -> Vec<u8> {
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    STANDARD.decode(body).unwrap()
}

/// (signing input, signature bytes) of a compact JWS.
fn split(token: &str) -> (Vec<u8>, Vec<u8>) {
    let dot = token.rfind('.').unwrap();
    (token.as_bytes()[..dot].to_vec(), URL_SAFE_NO_PAD.decode(&token[dot + 1..]).unwrap())
}

#[allow(clippy::large_enum_variant)] // four values, made once
enum Raw {
    Hmac(hmac::Key),
    Rsa(RsaKeyPair, ParsedPublicKey),
    Ec(EcdsaKeyPair, ParsedPublicKey),
    Ed(Ed25519KeyPair, ParsedPublicKey),
}

fn raw_key(alg: Algorithm, key: &Key, secret: &[u8]) -> Raw {
    match alg {
        Algorithm::HS256 => Raw::Hmac(hmac::Key::new(hmac::HMAC_SHA256, secret)),
        Algorithm::RS256 => {
            let pair = RsaKeyPair::from_pkcs8(&pem_der(&key.to_pem(true).unwrap())).unwrap();
            let public =
                ParsedPublicKey::new(&signature::RSA_PKCS1_2048_8192_SHA256, pair.public_key().as_ref()).unwrap();
            Raw::Rsa(pair, public)
        }
        Algorithm::ES256 => {
            let pair = EcdsaKeyPair::from_pkcs8(
                &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
                &pem_der(&key.to_pem(true).unwrap()),
            )
            .unwrap();
            let public = ParsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, pair.public_key().as_ref()).unwrap();
            Raw::Ec(pair, public)
        }
        Algorithm::EdDSA => {
            let pair = Ed25519KeyPair::from_pkcs8(&pem_der(&key.to_pem(true).unwrap())).unwrap();
            let public = ParsedPublicKey::new(&signature::ED25519, pair.public_key().as_ref()).unwrap();
            Raw::Ed(pair, public)
        }
        other => panic!("no raw floor for {other}"),
    }
}

fn main() {
    let secs = env_f64("BENCH_SECONDS", 1.0);
    let n_tokens = env_f64("BENCH_TOKENS", 2000.0) as usize;
    let now = now();
    let all_claims: Vec<Map<String, Value>> = (0..n_tokens).map(|i| claims(i, now)).collect();
    let rng = rand::SystemRandom::new();
    println!("{}", serde_json::json!({"lang": "rust", "lib": "idflow", "version": env!("CARGO_PKG_VERSION")}));

    for name in ["HS256", "RS256", "ES256", "EdDSA"] {
        let alg = Algorithm::parse(name).unwrap();
        let secret: Vec<u8> = (0..32u8).map(|b| b.wrapping_mul(7).wrapping_add(1)).collect();
        let key = if alg == Algorithm::HS256 {
            Key::from_hmac_secret(&secret).unwrap()
        } else {
            Key::generate(alg, Some(2048)).unwrap()
        };
        let verify_key = if alg == Algorithm::HS256 { key.clone() } else { key.public_key().unwrap() };
        let tokens: Vec<String> = all_claims.iter().map(|c| jose::sign(c, &key, None).unwrap()).collect();
        let mut validation = Validation::new(&[alg]);
        validation.issuer = Some(ISS.to_owned());
        validation.audience = vec![AUD.to_owned()];

        // Sanity: every token verifies, iss/aud/exp are really checked.
        for t in &tokens {
            jose::verify(t, &verify_key, &validation).unwrap();
        }
        let mut wrong_iss = validation.clone();
        wrong_iss.issuer = Some("https://other.test".into());
        assert!(jose::verify(&tokens[0], &verify_key, &wrong_iss).is_err());

        let ops = measure(secs, |i| {
            black_box(jose::sign(&all_claims[i % n_tokens], &key, None).unwrap());
        });
        emit("idflow", name, "sign", ops, "");
        let ops = measure(secs, |i| {
            black_box(jose::verify(&tokens[i % n_tokens], &verify_key, &validation).unwrap());
        });
        emit("idflow", name, "verify", ops, "jose::verify (claims as a JSON map); iss+aud+exp checked");
        let ops = measure(secs, |i| {
            black_box(jose::verify_payload(&tokens[i % n_tokens], &verify_key, &validation).unwrap());
        });
        emit(
            "idflow (verify_payload)",
            name,
            "verify",
            ops,
            "jose::verify_payload (payload bytes, no JSON tree); iss+aud+exp checked",
        );

        let raw = raw_key(alg, &key, &secret);
        let inputs: Vec<(Vec<u8>, Vec<u8>)> = tokens.iter().map(|t| split(t)).collect();
        for (msg, sig) in &inputs {
            let ok = match &raw {
                Raw::Hmac(k) => hmac::verify(k, msg, sig).is_ok(),
                Raw::Rsa(_, p) | Raw::Ec(_, p) | Raw::Ed(_, p) => p.verify_sig(msg, sig).is_ok(),
            };
            assert!(ok, "raw floor must verify idflow's {name} signatures");
        }
        let note = "primitive only, key parsed once, same signing inputs";
        let ops = match &raw {
            Raw::Hmac(k) => measure(secs, |i| {
                black_box(hmac::sign(k, &inputs[i % n_tokens].0));
            }),
            Raw::Rsa(pair, _) => {
                let mut sig = vec![0u8; pair.public_modulus_len()];
                measure(secs, |i| {
                    pair.sign(&signature::RSA_PKCS1_SHA256, &rng, &inputs[i % n_tokens].0, &mut sig).unwrap();
                    black_box(&sig);
                })
            }
            Raw::Ec(pair, _) => measure(secs, |i| {
                black_box(pair.sign(&rng, &inputs[i % n_tokens].0).unwrap());
            }),
            Raw::Ed(pair, _) => measure(secs, |i| {
                black_box(pair.sign(&inputs[i % n_tokens].0));
            }),
        };
        emit("aws-lc-rs", name, "sign", ops, note);
        let ops = match &raw {
            Raw::Hmac(k) => measure(secs, |i| {
                let (m, s) = &inputs[i % n_tokens];
                black_box(hmac::verify(k, m, s)).unwrap();
            }),
            Raw::Rsa(_, p) | Raw::Ec(_, p) | Raw::Ed(_, p) => measure(secs, |i| {
                let (m, s) = &inputs[i % n_tokens];
                black_box(p.verify_sig(m, s)).unwrap();
            }),
        };
        emit("aws-lc-rs", name, "verify", ops, note);
    }

    // RS256 against a 3-key set, the key chosen by the token's kid.
    let keys: Vec<Key> = (0..3).map(|_| Key::generate(Algorithm::RS256, Some(2048)).unwrap()).collect();
    let set = KeySet::new(keys.iter().map(|k| k.public_key().unwrap()).collect()).unwrap();
    let tokens: Vec<String> =
        all_claims.iter().enumerate().map(|(i, c)| jose::sign(c, &keys[i % 3], None).unwrap()).collect();
    let mut validation = Validation::new(&[Algorithm::RS256]);
    validation.issuer = Some(ISS.to_owned());
    validation.audience = vec![AUD.to_owned()];
    for t in &tokens {
        jose::verify(t, &set, &validation).unwrap();
    }
    let ops = measure(secs, |i| {
        black_box(jose::verify(&tokens[i % n_tokens], &set, &validation).unwrap());
    });
    emit("idflow", "RS256-jwks3", "verify", ops, "jose::verify, KeySet, kid selects the key");
    let ops = measure(secs, |i| {
        black_box(jose::verify_payload(&tokens[i % n_tokens], &set, &validation).unwrap());
    });
    emit("idflow (verify_payload)", "RS256-jwks3", "verify", ops, "jose::verify_payload, KeySet, kid selects the key");
    let parsed: Vec<(String, ParsedPublicKey)> = keys
        .iter()
        .map(|k| {
            let pair = RsaKeyPair::from_pkcs8(&pem_der(&k.to_pem(true).unwrap())).unwrap();
            (
                k.kid().to_owned(),
                ParsedPublicKey::new(&signature::RSA_PKCS1_2048_8192_SHA256, pair.public_key().as_ref()).unwrap(),
            )
        })
        .collect();
    let inputs: Vec<(usize, Vec<u8>, Vec<u8>)> = tokens
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let (m, s) = split(t);
            (i % 3, m, s)
        })
        .collect();
    let ops = measure(secs, |i| {
        let (k, m, s) = &inputs[i % n_tokens];
        black_box(parsed[*k].1.verify_sig(m, s)).unwrap();
    });
    emit("aws-lc-rs", "RS256-jwks3", "verify", ops, "primitive only, key pre-selected");
}
