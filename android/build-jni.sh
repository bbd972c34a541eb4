#!/usr/bin/env bash
# Builds libidflow_uniffi.so for Android's ABIs into android/build/jniLibs/
# with cargo-ndk, for the AAR of android/build.gradle.kts.
# Needs the Android NDK (ANDROID_NDK_HOME) and `cargo install cargo-ndk`.
# It has not run where idflow is developed (no NDK there).
# Usage: bash android/build-jni.sh   (then: cd android && gradle assembleRelease)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
: "${ANDROID_NDK_HOME:?set ANDROID_NDK_HOME to the Android NDK}"
command -v cargo-ndk >/dev/null || { echo "cargo install cargo-ndk first" >&2; exit 1; }
unset CARGO_BUILD_TARGET
rustup target add aarch64-linux-android armv7-linux-androideabi x86_64-linux-android
# --platform 24: the module's minSdk. The release profile keeps line tables;
# the Android Gradle plugin strips the libraries when it packs the AAR.
cargo ndk --platform 24 -t arm64-v8a -t armeabi-v7a -t x86_64 -o android/build/jniLibs \
  build --release -p idflow-uniffi
ls -R android/build/jniLibs
