// swift-tools-version:5.9
// idflow for Swift (iOS, macOS, Linux): the generated uniffi bindings over
// the Rust core, in swift/. At the repository root so that an app adds it by
// URL (see swift/README.md). No unsafe flags. The core comes one of two ways:
// - swift/IdFlowFFI.xcframework, when it is there and the host is a Mac
//   (`bash swift/build-xcframework.sh` builds it): a binary target, linked
//   statically for iOS, the iOS simulator and macOS;
// - otherwise a system library linked by name, `idflow_uniffi`, found where
//   the linker looks (LIBRARY_PATH or -Xlinker -L on Linux).
import Foundation
import PackageDescription

let xcframework = "swift/IdFlowFFI.xcframework"
#if os(macOS)
let useXCFramework = FileManager.default.fileExists(
    atPath: URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent(xcframework).path
)
#else
let useXCFramework = false
#endif

let ffi: Target = useXCFramework
    ? .binaryTarget(name: "IdFlowFFI", path: xcframework)
    : .systemLibrary(name: "IdFlowFFI", path: "swift/Sources/IdFlowFFI")
// The static core uses the system's certificate verifier (Security) on
// Apple platforms; the system library carries its own link line.
let coreLinking: [LinkerSetting] = useXCFramework
    ? [.linkedFramework("Security"), .linkedFramework("CoreFoundation")]
    : [.linkedLibrary("idflow_uniffi")]

let package = Package(
    name: "IdFlow",
    platforms: [.macOS(.v12), .iOS(.v15)],
    products: [.library(name: "IdFlow", targets: ["IdFlow"])],
    targets: [
        ffi,
        .target(
            name: "IdFlow",
            dependencies: ["IdFlowFFI"],
            path: "swift/Sources/IdFlow",
            linkerSettings: coreLinking
        ),
        .testTarget(name: "IdFlowTests", dependencies: ["IdFlow"], path: "swift/Tests/IdFlowTests"),
    ]
)
