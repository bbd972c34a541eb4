#!/usr/bin/env bash
# Builds swift/IdFlowFFI.xcframework: idflow's core as a static library for
# iOS (devices), the iOS simulator (arm64 and x86_64) and macOS (arm64 and
# x86_64), with the C header and a module map, for the Swift package's
# binary target. Package.swift uses the XCFramework instead of the system
# library when this folder exists (on Apple platforms).
#
# Needs a Mac with Xcode (xcodebuild, lipo) and rustup. It has not run where
# idflow is developed (Linux, no Xcode): it is written against Xcode's
# documented `xcodebuild -create-xcframework` and cargo's `--crate-type`.
# Usage: bash swift/build-xcframework.sh
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
if [ "$(uname -s)" != Darwin ] || ! command -v xcodebuild >/dev/null; then
  echo "swift/build-xcframework.sh needs macOS with Xcode (xcodebuild, lipo); this machine has neither" >&2
  exit 1
fi
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
unset CARGO_BUILD_TARGET
# The package's minimum platforms (Package.swift): the C code and rustc
# target these versions.
export IPHONEOS_DEPLOYMENT_TARGET=15.0 MACOSX_DEPLOYMENT_TARGET=12.0
TARGETS=(aarch64-apple-ios aarch64-apple-ios-sim x86_64-apple-ios aarch64-apple-darwin x86_64-apple-darwin)
WORK="$CARGO_TARGET_DIR/xcframework"
OUTPUT="$ROOT/swift/IdFlowFFI.xcframework"
rm -rf "$WORK" "$OUTPUT"
mkdir -p "$WORK/headers" "$WORK/ios" "$WORK/ios-simulator" "$WORK/macos"

for target in "${TARGETS[@]}"; do
  rustup target add "$target"
  # A static library of the uniffi crate (its Cargo.toml builds a cdylib for
  # Kotlin and Linux; Apple apps link statically).
  cargo rustc --profile dist -p idflow-uniffi --target "$target" --crate-type staticlib
done
lib() { echo "$CARGO_TARGET_DIR/$1/dist/libidflow_uniffi.a"; }
cp "$(lib aarch64-apple-ios)" "$WORK/ios/"
lipo -create "$(lib aarch64-apple-ios-sim)" "$(lib x86_64-apple-ios)" -output "$WORK/ios-simulator/libidflow_uniffi.a"
lipo -create "$(lib aarch64-apple-darwin)" "$(lib x86_64-apple-darwin)" -output "$WORK/macos/libidflow_uniffi.a"

# The headers uniffi generated (committed in swift/Sources/IdFlowFFI) and a
# module map without a `link` line: the binary target links the library.
cp swift/Sources/IdFlowFFI/IdFlowFFI.h swift/Sources/IdFlowFFI/IdFlowCoreFFI.h "$WORK/headers/"
cat > "$WORK/headers/module.modulemap" <<'EOF'
module IdFlowFFI {
    header "IdFlowFFI.h"
    header "IdFlowCoreFFI.h"
    export *
}
EOF

xcodebuild -create-xcframework \
  -library "$WORK/ios/libidflow_uniffi.a" -headers "$WORK/headers" \
  -library "$WORK/ios-simulator/libidflow_uniffi.a" -headers "$WORK/headers" \
  -library "$WORK/macos/libidflow_uniffi.a" -headers "$WORK/headers" \
  -output "$OUTPUT"
echo "built $OUTPUT; Package.swift now uses it (swift build / Xcode)"
