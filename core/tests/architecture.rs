//! docs/ARCHITECTURE.md checked against the sources: the layering (a module
//! below may not import one above it) and the provider's HTTP surface.

#![allow(clippy::expect_used)]

use std::path::{Path, PathBuf};

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("readable src") {
        let path = entry.expect("an entry").path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// (files under this folder or file, may not name these modules)
const RULES: &[(&str, &[&str])] = &[
    ("jose", &["crate::oidc", "crate::flow", "crate::store", "crate::user", "crate::project", "crate::connectors"]),
    ("pkce.rs", &["crate::oidc", "crate::flow", "crate::store", "crate::user", "crate::project"]),
    ("user", &["crate::store", "crate::users", "crate::flow", "crate::oidc", "crate::project"]),
    ("store", &["crate::users", "crate::flow", "crate::oidc", "crate::project", "crate::connectors"]),
    ("users", &["crate::flow", "crate::oidc", "crate::project"]),
    ("connectors", &["crate::flow", "crate::oidc", "crate::project", "crate::store"]),
    ("messaging", &["crate::store", "crate::user", "crate::users", "crate::flow", "crate::oidc", "crate::project", "crate::credentials"]),
    ("credentials", &["crate::store", "crate::user", "crate::users", "crate::flow", "crate::oidc", "crate::project", "crate::jose"]),
    ("vault.rs", &["crate::users", "crate::flow", "crate::oidc", "crate::project"]),
    ("flow", &["crate::oidc", "crate::project"]),
    ("oidc/client", &["crate::oidc::provider", "crate::flow", "crate::store", "crate::project", "super::super::provider"]),
];

#[test]
fn no_module_imports_one_above_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    let mut broken = Vec::new();
    for file in &files {
        let rel = file.strip_prefix(&src).expect("under src").to_string_lossy().replace('\\', "/");
        let text = std::fs::read_to_string(file).expect("readable source");
        for (scope, forbidden) in RULES {
            if rel == *scope || rel.starts_with(&format!("{scope}/")) {
                for (n, line) in text.lines().enumerate() {
                    let code = line.split("//").next().unwrap_or_default();
                    for f in *forbidden {
                        if code.contains(f) {
                            broken.push(format!("{rel}:{}: {f}", n + 1));
                        }
                    }
                }
            }
        }
    }
    assert!(files.len() > 50, "the sources were found");
    assert!(broken.is_empty(), "imports against the layering:\n{}", broken.join("\n"));
}

/// Every path of the provider's route table is in the HTTP surface table of
/// docs/ARCHITECTURE.md.
#[test]
fn every_route_is_documented() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let routes = std::fs::read_to_string(root.join("src/oidc/provider/routes.rs")).expect("the route table file");
    let doc = std::fs::read_to_string(root.join("../docs/ARCHITECTURE.md")).expect("the architecture document");
    let start = routes.find("fn at(path: &str, pid: &str, mounted: bool)").expect("the route table");
    let table = &routes[start..start + routes[start..].find("\n    }\n").expect("its end")];
    let mut paths: Vec<&str> = table
        .lines()
        .filter_map(|l| l.trim().strip_prefix('"')?.split_once('"').map(|(p, _)| p))
        .collect();
    for extra in ["/.well-known/openid-configuration", "/.well-known/jwks.json", "/login/"] {
        assert!(table.contains(extra), "the route table still has {extra}");
        paths.push(extra);
    }
    assert!(paths.len() > 12, "the routes were found: {paths:?}");
    let missing: Vec<&&str> = paths.iter().filter(|p| !doc.contains(&format!("`{p}")) && !doc.contains(&format!("{p}`"))).collect();
    assert!(missing.is_empty(), "docs/ARCHITECTURE.md does not list the routes {missing:?}");
}
