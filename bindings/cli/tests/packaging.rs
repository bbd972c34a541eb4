//! The Swift package's two ways to get the core agree with the scripts that
//! make them (no Swift toolchain runs here, so these are read as text).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

fn repo(path: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").join(path)).unwrap()
}

#[test]
fn package_swift_declares_no_unsafe_flags() {
    // SwiftPM refuses unsafe flags in a package that an app adds by URL.
    let manifest = repo("Package.swift");
    assert!(!manifest.contains("unsafeFlags"), "Package.swift uses unsafeFlags");
}

#[test]
fn the_binary_target_is_what_build_xcframework_writes() {
    let manifest = repo("Package.swift");
    let script = repo("swift/build-xcframework.sh");
    assert!(manifest.contains("let xcframework = \"swift/IdFlowFFI.xcframework\""));
    assert!(script.contains("OUTPUT=\"$ROOT/swift/IdFlowFFI.xcframework\""));
    assert!(manifest.contains(".binaryTarget(name: \"IdFlowFFI\", path: xcframework)"));
    // The XCFramework's module is the one the bindings import.
    assert!(script.contains("module IdFlowFFI {"));
    assert!(repo("swift/Sources/IdFlowFFI/module.modulemap").contains("module IdFlowFFI {"));
    assert!(repo("swift/Sources/IdFlow/IdFlow.swift").contains("import IdFlowFFI"));
    // It builds for the package's minimum platforms.
    assert!(manifest.contains("platforms: [.macOS(.v12), .iOS(.v15)]"));
    assert!(script.contains("IPHONEOS_DEPLOYMENT_TARGET=15.0 MACOSX_DEPLOYMENT_TARGET=12.0"));
    assert!(repo(".gitignore").lines().any(|l| l == "/swift/IdFlowFFI.xcframework/"), "the built XCFramework is not committed");
}
