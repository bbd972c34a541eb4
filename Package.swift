// swift-tools-version:5.9
// idflow for Swift (iOS, macOS, Linux): the generated uniffi bindings over
// the Rust core, in swift/. At the repository root so that an app adds it by
// URL (see swift/README.md). No unsafe flags: the core library is linked by
// name, `idflow_uniffi`, and found where the linker looks (LIBRARY_PATH or
// -Xlinker -L on Linux; the XCFramework on Apple platforms).
import PackageDescription

let package = Package(
    name: "IdFlow",
    platforms: [.macOS(.v12), .iOS(.v15)],
    products: [.library(name: "IdFlow", targets: ["IdFlow"])],
    targets: [
        .systemLibrary(name: "IdFlowFFI", path: "swift/Sources/IdFlowFFI"),
        .target(
            name: "IdFlow",
            dependencies: ["IdFlowFFI"],
            path: "swift/Sources/IdFlow",
            linkerSettings: [.linkedLibrary("idflow_uniffi")]
        ),
        .testTarget(name: "IdFlowTests", dependencies: ["IdFlow"], path: "swift/Tests/IdFlowTests"),
    ]
)
