// swift-tools-version:5.9
// idflow for Swift: generated uniffi bindings over the Rust core.
// Tests link the cdylib that tests/run.sh builds; IDFLOW_LIB_DIR overrides
// where it is (an XCFramework replaces this for App Store builds).
import PackageDescription
import Foundation

let libDir = ProcessInfo.processInfo.environment["IDFLOW_LIB_DIR"]
    ?? "../target/x86_64-unknown-linux-gnu/debug"

let package = Package(
    name: "IdFlow",
    platforms: [.macOS(.v12), .iOS(.v15)],
    products: [.library(name: "IdFlow", targets: ["IdFlow"])],
    targets: [
        .systemLibrary(name: "IdFlowFFI", path: "Sources/IdFlowFFI"),
        .target(
            name: "IdFlow",
            dependencies: ["IdFlowFFI"],
            path: "Sources/IdFlow",
            linkerSettings: [.unsafeFlags(["-L", libDir])]
        ),
        .testTarget(name: "IdFlowTests", dependencies: ["IdFlow"], path: "Tests/IdFlowTests"),
    ]
)
