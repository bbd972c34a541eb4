//! One version everywhere: the Cargo workspace (and so the Python wheel,
//! whose version maturin reads from it, and `idflow --version`), the npm
//! packages (idflow and its platform packages) and the Maven pom agree; the CHANGELOG names it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::Command;

fn repo(path: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").join(path)).unwrap()
}

#[test]
fn every_package_has_the_workspace_version() {
    let version = env!("CARGO_PKG_VERSION");
    let out = Command::new(env!("CARGO_BIN_EXE_idflow")).arg("--version").output().unwrap();
    assert_eq!(String::from_utf8(out.stdout).unwrap().trim(), format!("idflow {version}"));
    let npm: serde_json::Value = serde_json::from_str(&repo("node/package.json")).unwrap();
    assert_eq!(npm["version"], version, "node/package.json");
    // The platform packages (node/npm/<platform>/) that idflow names at its version.
    let platforms = std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../node/npm")).unwrap();
    let mut count = 0;
    for dir in platforms {
        let dir = dir.unwrap().file_name().into_string().unwrap();
        let package: serde_json::Value = serde_json::from_str(&repo(&format!("node/npm/{dir}/package.json"))).unwrap();
        assert_eq!(package["version"], version, "node/npm/{dir}/package.json");
        count += 1;
    }
    assert_eq!(count, 3, "linux-x64-gnu, linux-arm64-gnu, linux-x64-musl");
    let pom = repo("kotlin/pom.xml");
    let project_version = pom.split("<version>").nth(1).and_then(|v| v.split("</version>").next()).unwrap();
    assert_eq!(project_version, version, "kotlin/pom.xml (the project's own <version>)");
    let pyproject = repo("python/pyproject.toml");
    assert!(pyproject.contains("dynamic = [\"version\"]"), "python/pyproject.toml takes its version from Cargo");
    assert!(!pyproject.lines().any(|l| l.trim_start().starts_with("version")), "python/pyproject.toml sets no version of its own");
    assert!(repo("CHANGELOG.md").contains(&format!("## {version}")), "CHANGELOG.md has a section for {version}");
}
