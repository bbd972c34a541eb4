//! Passkeys through the shared flow tests/flows/passkey.json with a software
//! authenticator written here (P-256 keys from aws-lc-rs, "none"
//! attestation, the CBOR webauthn-rs reads): registration after a password
//! sign-up, a username-less sign-in (amr hwk, user), and what an attacker
//! tries: an assertion made for another execution's challenge, a counterfeit
//! signature, a passkey never registered, a replayed assertion, a huge or
//! malformed answer.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_ASN1_SIGNING};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use idflow::flow::{FlowEngine, FlowResponse, FlowStatus};
use idflow::jose::{Algorithm, Key};
use idflow::store::MemoryStore;
use idflow::ErrorCode;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::sync::Arc;
use support::flows::{amr, obj};

const ORIGIN: &str = "https://id.example.com";
const PASSWORD: &str = "a long enough secret";

fn dir() -> std::path::PathBuf {
    std::path::PathBuf::from(format!("{}/../tests/flows", env!("CARGO_MANIFEST_DIR")))
}

fn setup() -> (FlowEngine, Key) {
    let mut doc: Value = serde_json::from_str(&std::fs::read_to_string(dir().join("password-project.json")).unwrap()).unwrap();
    doc["flows"] = json!(["passkey.json"]);
    doc["baseUrl"] = ORIGIN.into();
    let key = Key::generate(Algorithm::ES256, None).unwrap();
    let engine = idflow::project::Project::from_json(&doc.to_string(), &dir()).unwrap().engine(key.clone(), Arc::new(MemoryStore::new())).unwrap();
    (engine, key)
}

fn sha256(data: &[u8]) -> Vec<u8> {
    aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, data).as_ref().to_vec()
}

/// A platform authenticator with one discoverable P-256 credential.
struct Authenticator {
    key: EcdsaKeyPair,
    id: Vec<u8>,
    user_handle: String,
    count: u32,
}

fn cbor(v: &serde_cbor_2::Value) -> Vec<u8> {
    serde_cbor_2::to_vec(v).unwrap()
}

fn auth_data(rp_id: &str, flags: u8, count: u32, attested: &[u8]) -> Vec<u8> {
    let mut d = sha256(rp_id.as_bytes());
    d.push(flags);
    d.extend_from_slice(&count.to_be_bytes());
    d.extend_from_slice(attested);
    d
}

fn client_data(kind: &str, challenge: &str) -> Vec<u8> {
    json!({"type": kind, "challenge": challenge, "origin": ORIGIN, "crossOrigin": false}).to_string().into_bytes()
}

impl Authenticator {
    /// Answers a creation ceremony (`screen.passkey.publicKey`).
    fn create(options: &Value) -> (Authenticator, String) {
        use serde_cbor_2::Value as C;
        let key = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_ASN1_SIGNING).unwrap();
        let point = key.public_key().as_ref().to_vec(); // 0x04 | x | y
        let mut id = vec![0u8; 16];
        aws_lc_rs::rand::fill(&mut id).unwrap();
        let cose = C::Map(BTreeMap::from([
            (C::Integer(1), C::Integer(2)),
            (C::Integer(3), C::Integer(-7)),
            (C::Integer(-1), C::Integer(1)),
            (C::Integer(-2), C::Bytes(point[1..33].to_vec())),
            (C::Integer(-3), C::Bytes(point[33..65].to_vec())),
        ]));
        let mut attested = vec![0u8; 16]; // AAGUID
        attested.extend_from_slice(&u16::try_from(id.len()).unwrap().to_be_bytes());
        attested.extend_from_slice(&id);
        attested.extend_from_slice(&cbor(&cose));
        let rp_id = options["rp"]["id"].as_str().unwrap();
        // User present, user verified, attested credential data.
        let data = auth_data(rp_id, 0x01 | 0x04 | 0x40, 0, &attested);
        let attestation = C::Map(BTreeMap::from([
            (C::Text("fmt".into()), C::Text("none".into())),
            (C::Text("attStmt".into()), C::Map(BTreeMap::new())),
            (C::Text("authData".into()), C::Bytes(data)),
        ]));
        let client = client_data("webauthn.create", options["challenge"].as_str().unwrap());
        let answer = json!({
            "id": B64.encode(&id), "rawId": B64.encode(&id), "type": "public-key",
            "response": {"attestationObject": B64.encode(cbor(&attestation)), "clientDataJSON": B64.encode(client), "transports": ["internal"]},
            "extensions": {"credProps": {"rk": true}},
        });
        let user_handle = options["user"]["id"].as_str().unwrap().to_owned();
        (Authenticator { key, id, user_handle, count: 0 }, answer.to_string())
    }

    /// Answers a get ceremony (`screen.passkey.publicKey`).
    fn get(&mut self, options: &Value) -> Value {
        self.count += 1;
        let rp_id = options["rpId"].as_str().unwrap();
        let data = auth_data(rp_id, 0x01 | 0x04, self.count, &[]);
        let client = client_data("webauthn.get", options["challenge"].as_str().unwrap());
        let mut signed = data.clone();
        signed.extend_from_slice(&sha256(&client));
        let signature = self.key.sign(&SystemRandom::new(), &signed).unwrap();
        json!({
            "id": B64.encode(&self.id), "rawId": B64.encode(&self.id), "type": "public-key",
            "response": {"authenticatorData": B64.encode(data), "clientDataJSON": B64.encode(client),
                "signature": B64.encode(signature.as_ref()), "userHandle": self.user_handle},
            "extensions": {},
        })
    }
}

fn ceremony(r: &FlowResponse) -> Value {
    r.screen.as_ref().expect("a screen")["passkey"]["publicKey"].clone()
}

/// Signs up with a password and registers a passkey; the authenticator.
async fn register(engine: &FlowEngine, email: &str) -> Authenticator {
    let s = engine.start("passkey", Map::new(), None).await.unwrap();
    let offer = engine.next(&s.execution_id, "welcome", "signUp", obj(json!({"email": email, "password": PASSWORD}))).await.unwrap();
    assert_eq!(offer.step_id.as_deref(), Some("offer"), "{:?}", offer.error);
    let create = engine.next(&s.execution_id, "offer", "add", Map::new()).await.unwrap();
    let options = ceremony(&create);
    assert_eq!(options["authenticatorSelection"]["residentKey"], "required", "{options}");
    assert_eq!(options["authenticatorSelection"]["userVerification"], "required");
    let (authenticator, answer) = Authenticator::create(&options);
    let done = engine.next(&s.execution_id, "create", "create", obj(json!({"credential": answer}))).await.unwrap();
    assert_eq!(done.status, FlowStatus::Completed, "{:?}", done.error);
    authenticator
}

/// Starts a username-less sign-in; the execution and the get options.
async fn begin_sign_in(engine: &FlowEngine) -> (String, Value) {
    let s = engine.start("passkey", Map::new(), None).await.unwrap();
    let get = engine.next(&s.execution_id, "welcome", "usePasskey", Map::new()).await.unwrap();
    let options = ceremony(&get);
    assert_eq!(options.get("allowCredentials").and_then(Value::as_array).map_or(0, Vec::len), 0, "username-less");
    (s.execution_id, options)
}

async fn use_passkey(engine: &FlowEngine, execution: &str, answer: &Value) -> FlowResponse {
    engine.next(execution, "get", "use", obj(json!({"credential": answer.to_string()}))).await.unwrap()
}

#[tokio::test]
async fn a_registered_passkey_signs_in_alone_and_only_once_per_assertion() {
    let (engine, key) = setup();
    let mut authenticator = register(&engine, "pia@example.com").await;
    let user = engine.store().user_by_login_id("pia@example.com").unwrap().unwrap();
    assert_eq!(idflow::users::passkeys::list(engine.store().as_ref(), &user.user_id).unwrap().len(), 1);
    let (execution, options) = begin_sign_in(&engine).await;
    let answer = authenticator.get(&options);
    let done = use_passkey(&engine, &execution, &answer).await;
    assert_eq!(done.status, FlowStatus::Completed, "{:?}", done.error);
    assert_eq!(amr(&key, &done), json!(["hwk", "user"]));
    assert_eq!(done.auth_info.as_ref().unwrap().user["userId"], user.user_id.as_str());
    // The same assertion again, in a new execution: its challenge is not this one's.
    let (again, _) = begin_sign_in(&engine).await;
    assert_eq!(use_passkey(&engine, &again, &answer).await.error.unwrap().code, ErrorCode::InvalidCredentials);
}

#[tokio::test]
async fn assertions_for_another_execution_counterfeit_or_unknown_are_refused() {
    let (engine, _) = setup();
    let mut authenticator = register(&engine, "ivy@example.com").await;
    // Made for execution A's challenge, sent to execution B.
    let (a, options_a) = begin_sign_in(&engine).await;
    let (b, _) = begin_sign_in(&engine).await;
    let for_a = authenticator.get(&options_a);
    let r = use_passkey(&engine, &b, &for_a).await;
    assert_eq!((r.error.unwrap().code, r.status), (ErrorCode::InvalidCredentials, FlowStatus::Waiting));
    // A signature changed on its way.
    let (c, options_c) = begin_sign_in(&engine).await;
    let mut forged = authenticator.get(&options_c);
    let mut sig = B64.decode(forged["response"]["signature"].as_str().unwrap()).unwrap();
    let last = sig.len() - 1;
    sig[last] ^= 1;
    forged["response"]["signature"] = B64.encode(sig).into();
    assert_eq!(use_passkey(&engine, &c, &forged).await.error.unwrap().code, ErrorCode::InvalidCredentials);
    // A passkey this server never registered.
    let (d, options_d) = begin_sign_in(&engine).await;
    let (mut stranger, _) = Authenticator::create(&json!({"rp": {"id": "id.example.com"}, "challenge": "x", "user": {"id": B64.encode(b"someone")}}));
    assert_eq!(use_passkey(&engine, &d, &stranger.get(&options_d)).await.error.unwrap().code, ErrorCode::InvalidCredentials);
    // Huge and malformed answers: refused with the same code, nothing else.
    let (e, _) = begin_sign_in(&engine).await;
    for bad in [json!("x".repeat(100_000)), json!("{}"), json!("not json")] {
        let r = engine.next(&e, "get", "use", obj(json!({"credential": bad}))).await.unwrap();
        assert_eq!(r.error.unwrap().code, ErrorCode::InvalidCredentials);
    }
    // A's own answer still works in A: B's refusal spent nothing of A's.
    let done = use_passkey(&engine, &a, &for_a).await;
    assert_eq!(done.status, FlowStatus::Completed, "{:?}", done.error);
}
