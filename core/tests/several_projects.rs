//! Several projects in one process (`Providers`): each at its own issuer
//! with every endpoint under it, its own keys, users and store; nothing of
//! one is accepted by another.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use idflow::oidc::provider::{HttpRequest, HttpResponse, Providers};
use idflow::pkce;
use idflow::project::Project;
use idflow::ErrorCode;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

const BASE: &str = "http://127.0.0.1:18181";
const CB: &str = "http://127.0.0.1/callback";

fn e2e_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/e2e")
}

/// The e2e project's JSON as project `id`.
fn project_json(id: &str) -> String {
    let mut doc: Value = serde_json::from_str(&std::fs::read_to_string(e2e_dir().join("project.json")).unwrap()).unwrap();
    doc["projectId"] = id.into();
    doc["baseUrl"] = BASE.into();
    doc.to_string()
}

fn project(id: &str) -> Project {
    Project::from_json(&project_json(id), &e2e_dir()).unwrap()
}

fn acme_and_globex(database: Option<&str>) -> Providers {
    Providers::open(vec![project("acme"), project("globex")], database).unwrap()
}

fn query(url: &str) -> HashMap<String, String> {
    let q = url.split_once('?').map_or("", |(_, q)| q);
    url::form_urlencoded::parse(q.as_bytes()).into_owned().collect()
}

fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn body(r: &HttpResponse) -> Value {
    serde_json::from_slice(&r.body).unwrap_or(Value::Null)
}

async fn get(p: &Providers, target: &str, headers: &[(&str, &str)]) -> HttpResponse {
    let headers = headers.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    p.handle(HttpRequest::new("GET", target, headers, vec![])).await
}

async fn post(p: &Providers, path: &str, content_type: &str, body: String, headers: &[(&str, &str)]) -> HttpResponse {
    let mut h: Vec<(String, String)> = headers.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    h.push(("Content-Type".into(), content_type.into()));
    p.handle(HttpRequest::new("POST", path, h, body.into_bytes())).await
}

async fn post_form(p: &Providers, path: &str, form: &[(&str, &str)]) -> HttpResponse {
    let body = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(form).finish();
    post(p, path, "application/x-www-form-urlencoded", body, &[]).await
}

/// The `Set-Cookie` header for `name`, whole.
fn set_cookie<'a>(r: &'a HttpResponse, name: &str) -> Option<&'a str> {
    r.headers.iter().filter(|(k, _)| k.eq_ignore_ascii_case("set-cookie")).map(|(_, v)| v.as_str()).find(|v| v.starts_with(&format!("{name}=")))
}

fn pair(cookie: &str) -> &str {
    cookie.split(';').next().unwrap()
}

struct SignedIn {
    tokens: Value,
    session: String,
}

/// A whole sign-in of `email` at project `pid`: authorize, the hosted
/// page's flow API, the delivery, the token request; every URL under the
/// project's issuer.
async fn sign_in(p: &Providers, pid: &str, email: &str) -> SignedIn {
    let issuer = format!("{BASE}/{pid}");
    let pkce = pkce::generate(None).unwrap();
    let authorize = format!(
        "/{pid}/oauth2/v1/authorize?response_type=code&client_id=e2e&redirect_uri={}&scope=openid%20offline_access&state=s1&nonce=n1&code_challenge={}&code_challenge_method=S256",
        enc(CB),
        pkce.challenge
    );
    let r = get(p, &authorize, &[]).await;
    assert_eq!(r.status, 302, "{}", r.text());
    let browser = set_cookie(&r, "idflow_browser").unwrap();
    assert!(browser.contains(&format!("Path=/{pid};")), "the cookie is the project's alone: {browser}");
    let browser = pair(browser).to_owned();
    let location = r.header("Location").unwrap().to_owned();
    assert!(location.starts_with(&format!("{issuer}/login/{pid}?flow=")), "{location}");
    let q = query(&location);
    let started = post(p, &format!("/{pid}/v1/flow/start"), "application/json", json!({"request": q["request"]}).to_string(), &[]).await;
    let s = body(&started);
    assert_eq!(s["status"], "waiting", "{s}");
    let next = json!({"executionId": s["executionId"], "executionSecret": s["executionSecret"], "stepId": s["stepId"], "interactionId": "submit", "input": {"email": email}});
    let d = body(&post(p, &format!("/{pid}/v1/flow/next"), "application/json", next.to_string(), &[]).await);
    assert_eq!(d["status"], "completed", "{d}");
    let complete = d["redirect"]["url"].as_str().unwrap();
    assert!(complete.starts_with(&format!("{issuer}/oauth2/v1/authorize/complete?id=")), "{complete}");
    let delivered = get(p, complete, &[("Cookie", &browser)]).await;
    assert_eq!(delivered.status, 302, "{}", delivered.text());
    let session = set_cookie(&delivered, "idflow_session").unwrap();
    assert!(session.contains(&format!("Path=/{pid};")), "{session}");
    let session = pair(session).to_owned();
    let back = query(delivered.header("Location").unwrap());
    assert_eq!(back["iss"], issuer);
    let form = [
        ("grant_type", "authorization_code"),
        ("code", back["code"].as_str()),
        ("redirect_uri", CB),
        ("client_id", "e2e"),
        ("code_verifier", pkce.verifier.as_str()),
    ];
    let t = post_form(p, &format!("/{pid}/oauth2/v1/token"), &form).await;
    assert_eq!(t.status, 200, "{}", t.text());
    SignedIn { tokens: body(&t), session: format!("{browser}; {session}") }
}

fn claims(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).unwrap();
    use base64::Engine;
    serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

#[tokio::test]
async fn each_project_is_served_under_its_own_issuer() {
    let p = acme_and_globex(None);
    for pid in ["acme", "globex"] {
        let issuer = format!("{BASE}/{pid}");
        let r = get(&p, &format!("/{pid}/.well-known/openid-configuration"), &[]).await;
        assert_eq!(r.status, 200, "{}", r.text());
        let d = body(&r);
        assert_eq!(d["issuer"], issuer);
        for (field, path) in [
            ("authorization_endpoint", "/oauth2/v1/authorize"),
            ("token_endpoint", "/oauth2/v1/token"),
            ("userinfo_endpoint", "/oauth2/v1/userinfo"),
            ("end_session_endpoint", "/oauth2/v1/logout"),
            ("revocation_endpoint", "/oauth2/v1/revoke"),
            ("jwks_uri", "/.well-known/jwks.json"),
        ] {
            assert_eq!(d[field], format!("{issuer}{path}"), "{field}");
        }
        assert_eq!(get(&p, &format!("/{pid}/health"), &[]).await.status, 200);
        assert_eq!(get(&p, &format!("/{pid}/login/{pid}"), &[]).await.status, 200);
    }
    // Each project signs with keys of its own.
    let kids = |r: HttpResponse| body(&r)["keys"].as_array().unwrap().iter().map(|k| k["kid"].clone()).collect::<Vec<_>>();
    let (a, g) = (kids(get(&p, "/acme/.well-known/jwks.json", &[]).await), kids(get(&p, "/globex/.well-known/jwks.json", &[]).await));
    assert!(a.iter().all(|k| !g.contains(k)), "{a:?} {g:?}");
    // Nothing answers outside the issuers (but the health check), and a
    // path that merely starts like a project's is not that project's.
    assert_eq!(get(&p, "/health", &[]).await.status, 200);
    for path in ["/oauth2/v1/token", "/.well-known/openid-configuration", "/acmeco/.well-known/openid-configuration", "/login/acme", "/v1/flow/start"] {
        let r = get(&p, path, &[]).await;
        assert_eq!(r.status, 404, "{path}: {}", r.text());
    }
}

#[tokio::test]
async fn nothing_of_one_project_is_accepted_by_another() {
    let p = acme_and_globex(None);
    let a = sign_in(&p, "acme", "ann@example.com").await;
    let g = sign_in(&p, "globex", "ann@example.com").await;
    // The same email is two users, each known to its project only.
    let (a_id, g_id) = (claims(a.tokens["id_token"].as_str().unwrap()), claims(g.tokens["id_token"].as_str().unwrap()));
    assert_ne!(a_id["sub"], g_id["sub"]);
    assert_eq!(a_id["iss"], format!("{BASE}/acme"));
    let acme_users = p.provider("acme").unwrap().store();
    let globex_users = p.provider("globex").unwrap().store();
    assert!(acme_users.user(a_id["sub"].as_str().unwrap()).unwrap().is_some());
    assert!(globex_users.user(a_id["sub"].as_str().unwrap()).unwrap().is_none());

    // Acme's access token: accepted by acme's userinfo, refused by globex's.
    let at = format!("Bearer {}", a.tokens["access_token"].as_str().unwrap());
    let own = get(&p, "/acme/oauth2/v1/userinfo", &[("Authorization", &at)]).await;
    assert_eq!(own.status, 200, "{}", own.text());
    assert_eq!(body(&own)["sub"], a_id["sub"]);
    let other = get(&p, "/globex/oauth2/v1/userinfo", &[("Authorization", &at)]).await;
    assert_eq!(other.status, 401, "{}", other.text());
    assert!(other.header("WWW-Authenticate").unwrap().contains("invalid_token"));

    // Acme's refresh token is unknown to globex, and still works at acme.
    let rt = a.tokens["refresh_token"].as_str().unwrap();
    let refresh = [("grant_type", "refresh_token"), ("refresh_token", rt), ("client_id", "e2e")];
    let r = post_form(&p, "/globex/oauth2/v1/token", &refresh).await;
    assert_eq!((r.status, body(&r)["error"].clone()), (400, json!("invalid_grant")), "{}", r.text());
    assert_eq!(post_form(&p, "/acme/oauth2/v1/token", &refresh).await.status, 200);

    // Acme's session answers prompt=none at acme only.
    let challenge = pkce::generate(None).unwrap().challenge;
    let silent = |pid: &str| {
        format!(
            "/{pid}/oauth2/v1/authorize?response_type=code&client_id=e2e&redirect_uri={}&scope=openid&state=s2&nonce=n2&prompt=none&code_challenge={challenge}&code_challenge_method=S256",
            enc(CB)
        )
    };
    let at_acme = get(&p, &silent("acme"), &[("Cookie", &a.session)]).await;
    assert!(query(at_acme.header("Location").unwrap()).contains_key("code"), "{:?}", at_acme.header("Location"));
    let at_globex = get(&p, &silent("globex"), &[("Cookie", &a.session)]).await;
    assert_eq!(query(at_globex.header("Location").unwrap())["error"], "login_required");

    // Acme's flow executions mean nothing at globex.
    let start = body(&post(&p, "/acme/v1/flow/start", "application/json", json!({"flowId": "sign-up-or-in"}).to_string(), &[]).await);
    let next = json!({"executionId": start["executionId"], "executionSecret": start["executionSecret"], "stepId": start["stepId"], "interactionId": "submit", "input": {"email": "bob@example.com"}});
    let r = post(&p, "/globex/v1/flow/next", "application/json", next.to_string(), &[]).await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("no such execution"), "{}", r.text());
    let r = post(&p, "/acme/v1/flow/next", "application/json", next.to_string(), &[]).await;
    assert_eq!(body(&r)["status"], "completed", "{}", r.text());
}

#[tokio::test]
async fn a_project_named_like_a_path_of_the_process_hides_nothing() {
    let p = Providers::open(vec![project("health"), project("acme")], None).unwrap();
    assert_eq!(body(&get(&p, "/health", &[]).await), json!({"status": "ok"}));
    let d = body(&get(&p, "/health/.well-known/openid-configuration", &[]).await);
    assert_eq!(d["issuer"], format!("{BASE}/health"));
    assert_eq!(get(&p, "/healthz", &[]).await.status, 404);
}

#[tokio::test]
async fn metrics_name_each_series_project() {
    let p = acme_and_globex(None);
    sign_in(&p, "acme", "ann@example.com").await;
    get(&p, "/globex/.well-known/openid-configuration", &[]).await;
    let text = p.metrics();
    assert_eq!(text.matches("# TYPE idflow_http_requests counter").count(), 1, "{text}");
    assert!(text.contains(r#"idflow_tokens_issued_total{project="acme",grant="authorization_code"} 1"#), "{text}");
    assert!(text.contains(r#"idflow_http_requests_total{project="globex",route="discovery",status="200"} 1"#), "{text}");
    assert!(!text.contains(r#"project="globex",grant"#), "{text}");
    assert!(text.contains(r#"idflow_key_reload_failures_total{project="acme"} 0"#), "{text}");
}

#[tokio::test]
async fn one_project_is_served_as_it_always_was() {
    let p = Providers::open(vec![project("acme")], None).unwrap();
    let d = body(&get(&p, "/acme/.well-known/openid-configuration", &[]).await);
    assert_eq!(d["issuer"], format!("{BASE}/acme"));
    assert_eq!(d["token_endpoint"], format!("{BASE}/oauth2/v1/token"));
    assert!(!p.metrics().contains("project="));
}

#[test]
fn several_projects_never_share_a_store() {
    let err = |r: idflow::Result<Providers>| r.unwrap_err();
    let dir = std::env::temp_dir().join(format!("idflow-several-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let shared = dir.join("one.db");
    let e = err(Providers::open(vec![project("acme"), project("globex")], shared.to_str()));
    assert_eq!(e.code, ErrorCode::Config);
    assert!(e.message.contains("{project}"), "{}", e.message);
    let e = err(Providers::open(vec![project("acme"), project("acme")], None));
    assert!(e.message.contains("given twice"), "{}", e.message);
    let e = err(Providers::open(vec![project("acme"), project("glo/bex")], None));
    assert_eq!(e.code, ErrorCode::Config);
    assert!(e.message.contains("glo/bex"), "{}", e.message);
    let e = err(Providers::open(vec![], None));
    assert_eq!(e.code, ErrorCode::Config);
    // {project} in a single project's database is checked too: it names a file.
    let e = err(Providers::open(vec![project("../up")], Some("{project}.db")));
    assert_eq!(e.code, ErrorCode::Config);

    // One SQLite file per project, kept across restarts.
    let per_project = dir.join("{project}.db");
    let db = per_project.to_str().unwrap();
    let signed = {
        let p = Providers::open(vec![project("acme"), project("globex")], Some(db)).unwrap();
        let user = idflow::user::User::new("U-acme-1".into(), "ann@example.com", 1_700_000_000);
        p.provider("acme").unwrap().store().create_user(&user).unwrap();
        p.provider("acme").unwrap().issuer().to_owned()
    };
    assert!(dir.join("acme.db").is_file() && dir.join("globex.db").is_file());
    assert!(!dir.join("{project}.db").exists());
    let p = Providers::open(vec![project("acme"), project("globex")], Some(db)).unwrap();
    assert_eq!(p.provider("acme").unwrap().issuer(), signed);
    assert!(p.provider("acme").unwrap().store().user_by_login_id("ann@example.com").unwrap().is_some());
    assert!(p.provider("globex").unwrap().store().user_by_login_id("ann@example.com").unwrap().is_none());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_folder_stands_for_its_project_files() {
    let dir = std::env::temp_dir().join(format!("idflow-folder-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (name, id) in [("b.json", "globex"), ("a.json", "acme")] {
        let mut doc: Value = serde_json::from_str(&project_json(id)).unwrap();
        // Flow paths are relative to the project file's folder.
        for f in doc["flows"].as_array_mut().unwrap() {
            let path = f.as_str().map(|s| e2e_dir().join(s)).unwrap();
            *f = path.canonicalize().unwrap().to_str().unwrap().into();
        }
        std::fs::write(dir.join(name), doc.to_string()).unwrap();
    }
    std::fs::write(dir.join("notes.txt"), "not a project").unwrap();
    let p = Providers::open_files(&[&dir], None, Some("https://id.example.com/")).unwrap();
    let issuers: Vec<&str> = p.providers().iter().map(|x| x.issuer()).collect();
    assert_eq!(issuers, ["https://id.example.com/acme", "https://id.example.com/globex"]);
    let empty = dir.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let e = Providers::open_files(&[&empty], None, None).unwrap_err();
    assert!(e.message.contains("no project file"), "{}", e.message);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[cfg(feature = "postgres")]
#[path = "support/postgres.rs"]
mod pg_support;

/// One PostgreSQL database, a schema per project (`schema={project}`).
#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn projects_on_one_postgres_database_have_a_schema_each() {
    let Some(url) = pg_support::fresh_database("several") else {
        return;
    };
    let with_key = |id: &str| {
        let mut doc: Value = serde_json::from_str(&project_json(id)).unwrap();
        use base64::Engine;
        let key = base64::engine::general_purpose::STANDARD.encode(format!("{id:-<32}"));
        doc["encryption"] = json!({"key": key});
        Project::from_json(&doc.to_string(), &e2e_dir()).unwrap()
    };
    let with = |option: &str| format!("{url}{}{option}", if url.contains('?') { '&' } else { '?' });
    let db = with("schema=idflow_{project}");
    let p = Providers::open(vec![with_key("acme"), with_key("globex")], Some(&db)).unwrap();
    let a = sign_in(&p, "acme", "ann@example.com").await;
    let g = sign_in(&p, "globex", "ann@example.com").await;
    let sub = |s: &SignedIn| claims(s.tokens["id_token"].as_str().unwrap())["sub"].as_str().unwrap().to_owned();
    assert_ne!(sub(&a), sub(&g));
    // Each schema holds its project's user alone.
    let acme = idflow::store::open(Some(&with("schema=idflow_acme"))).unwrap();
    let globex = idflow::store::open(Some(&with("schema=idflow_globex"))).unwrap();
    assert_eq!(acme.user_by_login_id("ann@example.com").unwrap().map(|u| u.user_id), Some(sub(&a)));
    assert_eq!(globex.user_by_login_id("ann@example.com").unwrap().map(|u| u.user_id), Some(sub(&g)));
    let public = idflow::store::open(Some(&url)).unwrap();
    assert!(public.user_by_login_id("ann@example.com").unwrap().is_none());
    // A schema name that is not a plain name is refused, never quoted into SQL.
    let Err(e) = idflow::store::open(Some(&with("schema=a%22b"))) else { panic!("a schema with a quote was taken") };
    assert_eq!(e.code, ErrorCode::Config);
}
