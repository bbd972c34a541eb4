#!/usr/bin/env bash
# Builds the release artifacts this machine can build into dist/out/, all
# with the `dist` Cargo profile (release code, no debug info, stripped) and
# linked by zig (maturin --zig, cargo-zigbuild): against glibc 2.28, so they
# run on any Linux with glibc 2.28 or later, or against musl.
#   - Python: abi3 wheels (cp310-abi3: one wheel for Python 3.10 and later)
#     for manylinux_2_28 x86_64 and aarch64 and musllinux_1_2 x86_64, and
#     the sdist;
#   - Node: the npm packages, packed: `idflow` (JavaScript and types only,
#     with an optional dependency per platform package) and the platform
#     packages `idflow-linux-x64-gnu`, `idflow-linux-arm64-gnu` and
#     `idflow-linux-x64-musl` (the native module);
#   - JVM: the `dev.idflow:idflow` jar with libidflow_uniffi.so under JNA's
#     resource paths linux-x86-64/ and linux-aarch64/, installed into Maven's
#     local repository (~/.m2) and copied here with its pom;
#   - the `idflow` binary, static (musl), for x86_64 and aarch64 Linux.
# Usage:
#   bash dist/build.sh          everything above (about 30 minutes on 2 cores)
#   bash dist/build.sh x86_64   the x86_64 glibc artifacts, the sdist and the
#                               static x86_64 binary (what tests/run.sh checks)
# then bash dist/check.sh, which checks what is there.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
case "${1:-all}" in
  all) ALL=1 ;;
  x86_64) ALL=0 ;;
  *) echo "usage: bash dist/build.sh [x86_64]" >&2; exit 2 ;;
esac
OUT="$ROOT/dist/out"
VENV="$ROOT/.venv-dist"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
STAGE="$CARGO_TARGET_DIR/dist-stage"
# musl builds of shared libraries (the Python and Node modules) need a
# dynamic C runtime, the static binary a static one: each has its own target
# dir, so that neither rebuilds the other's.
MUSL_DYLIB_TARGET_DIR="$CARGO_TARGET_DIR/dist-musl-dylib"
# maturin links with its own zig wrapper, cargo-zigbuild with another, and
# each rebuilds what the other built in a shared target dir: the wheels get
# their own.
WHEEL_TARGET_DIR="$CARGO_TARGET_DIR/dist-wheels"
# The Cargo target wins over CARGO_BUILD_TARGET (tests/run.sh sets that).
unset CARGO_BUILD_TARGET
VERSION=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n1)
# maturin finds zig through the python on PATH (python -m ziglang).
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install -q --disable-pip-version-check -r dist/requirements.txt
export PATH="$VENV/bin:$PATH"
rm -rf "$OUT" "$STAGE" && mkdir -p "$OUT" "$STAGE"

add_target() {
  rustup target list --installed | grep -qx "$1" || rustup target add "$1"
}

wheel() { # wheel RUST_TARGET COMPATIBILITY
  echo "== python: abi3 wheel ($2, $1)"
  add_target "$1"
  (cd python && CARGO_TARGET_DIR="$WHEEL_TARGET_DIR" maturin build --profile dist --zig --compatibility "$2" --target "$1" -i python3 -o "$OUT")
}

# The Node addon and the uniffi library, in one build (they share the core),
# into $CARGO_TARGET_DIR/RUST_TARGET/dist/. (Not a $(...) substitution:
# bash runs those without errexit, so a failed build would go unnoticed.)
native_libs() { # native_libs RUST_TARGET
  add_target "$1"
  cargo zigbuild --profile dist -p idflow-node -p idflow-uniffi --target "$1.2.28"
}

# A platform package: its package.json from node/npm/<platform>/ and the module.
pack_platform() { # pack_platform NAPI_PLATFORM LIBRARY
  echo "== node: idflow-$1"
  local dir="$STAGE/npm/$1"
  mkdir -p "$dir"
  cp "node/npm/$1/package.json" LICENSE "$dir/"
  cp "$2" "$dir/idflow.$1.node"
  (cd "$dir" && npm pack --silent --pack-destination "$OUT" >/dev/null)
}

static_binary() { # static_binary RUST_TARGET
  echo "== idflow: static $1 binary"
  add_target "$1"
  cargo zigbuild --profile dist -p idflow-cli --target "$1"
  cp "$CARGO_TARGET_DIR/$1/dist/idflow" "$OUT/idflow-$1"
}

# Everything of one CPU architecture on glibc (and its static binary): the
# wheel, the Node platform package, the jar's library.
glibc_arch() { # glibc_arch RUST_ARCH NAPI_PLATFORM JNA_FOLDER
  wheel "$1-unknown-linux-gnu" manylinux_2_28
  native_libs "$1-unknown-linux-gnu"
  local libs="$CARGO_TARGET_DIR/$1-unknown-linux-gnu/dist"
  pack_platform "$2" "$libs/libidflow_node.so"
  mkdir -p "$STAGE/jvm/native/$3"
  cp "$libs/libidflow_uniffi.so" "$STAGE/jvm/native/$3/"
  static_binary "$1-unknown-linux-musl"
}

(cd python && maturin sdist -o "$OUT")
glibc_arch x86_64 linux-x64-gnu linux-x86-64
if [ "$ALL" = 1 ]; then
  glibc_arch aarch64 linux-arm64-gnu linux-aarch64
  # musl: the Python and Node modules link the C runtime dynamically.
  add_target x86_64-unknown-linux-musl
  (export CARGO_TARGET_DIR="$MUSL_DYLIB_TARGET_DIR"
   export CARGO_TARGET_X86_64_UNKNOWN_LINUX_MUSL_RUSTFLAGS="-C target-feature=-crt-static"
   wheel x86_64-unknown-linux-musl musllinux_1_2
   echo "== node: the addon for x86_64-unknown-linux-musl"
   cargo zigbuild --profile dist -p idflow-node --target x86_64-unknown-linux-musl)
  pack_platform linux-x64-musl "$MUSL_DYLIB_TARGET_DIR/x86_64-unknown-linux-musl/dist/libidflow_node.so"
fi

echo "== node: idflow"
# node/ as published, plus an optional dependency on every platform package
# at this very version (npm installs the one whose os/cpu/libc match).
main="$STAGE/npm/idflow"
mkdir -p "$main"
node -e '
  const fs = require("node:fs")
  const [src, dest, npmDir] = process.argv.slice(1)
  const pkg = JSON.parse(fs.readFileSync(src + "/package.json", "utf8"))
  pkg.optionalDependencies = Object.fromEntries(fs.readdirSync(npmDir).sort().map((d) => [`idflow-${d}`, pkg.version]))
  for (const dev of ["devDependencies", "scripts", "overrides"]) delete pkg[dev]
  fs.writeFileSync(dest + "/package.json", JSON.stringify(pkg, null, 2) + "\n")
  for (const f of pkg.files) fs.copyFileSync(src + "/" + f, dest + "/" + f)
' node "$main" node/npm
cp LICENSE node/README.md "$main/"
(cd "$main" && npm pack --silent --pack-destination "$OUT" >/dev/null)

echo "== JVM: dev.idflow:idflow:$VERSION with the native libraries inside ($(ls "$STAGE/jvm/native" | tr '\n' ' '))"
(cd kotlin && mvn -B -ntp -q install -Dmaven.test.skip=true \
  -Didflow.native.dir="$STAGE/jvm/native" -Didflow.build.dir="$STAGE/jvm/target")
cp "$STAGE/jvm/target/idflow-$VERSION.jar" "$OUT/"
cp kotlin/pom.xml "$OUT/idflow-$VERSION.pom"
ls -l "$OUT"
