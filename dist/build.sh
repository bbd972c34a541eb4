#!/usr/bin/env bash
# Builds the release artifacts this machine can build into dist/out/, all
# with the `dist` Cargo profile (release code, no debug info, stripped) and
# linked by zig (maturin --zig, cargo-zigbuild) against glibc 2.28, so they
# run on any Linux with glibc 2.28 or later, or statically against musl:
#   - Python: the abi3 wheel (cp310-abi3: one wheel for Python 3.10 and
#     later) for manylinux_2_28 x86_64, and the sdist;
#   - Node: the npm packages, packed: `idflow` (JavaScript and types only,
#     with an optional dependency per platform package) and
#     `idflow-linux-x64-gnu` (the native module);
#   - JVM: the `dev.idflow:idflow` jar with libidflow_uniffi.so under JNA's
#     resource path linux-x86-64/, installed into Maven's local repository
#     (~/.m2) and copied here with its pom;
#   - the `idflow` binary for x86_64 Linux, static (musl).
# Usage: bash dist/build.sh    (then bash dist/check.sh)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
OUT="$ROOT/dist/out"
VENV="$ROOT/.venv-dist"
STAGE="$ROOT/target/dist-stage"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
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

echo "== python: abi3 wheel (manylinux_2_28 x86_64) and sdist"
(cd python && maturin build --profile dist --zig --compatibility manylinux_2_28 \
  --target x86_64-unknown-linux-gnu -i python3 -o "$OUT")
(cd python && maturin sdist -o "$OUT")

echo "== node and JVM: the native libraries for x86_64-unknown-linux-gnu (glibc 2.28)"
# One build for both: the Node addon and the uniffi library share the core.
cargo zigbuild --profile dist -p idflow-node -p idflow-uniffi --target x86_64-unknown-linux-gnu.2.28
LIBS="$CARGO_TARGET_DIR/x86_64-unknown-linux-gnu/dist"

echo "== node: npm packages"
# The platform package: its package.json from node/npm/<platform>/ and the module.
pack_platform() { # pack_platform NAPI_PLATFORM LIBRARY
  local dir="$STAGE/npm/$1"
  mkdir -p "$dir"
  cp "node/npm/$1/package.json" "$dir/"
  cp "$2" "$dir/idflow.$1.node"
  cp LICENSE "$dir/"
  (cd "$dir" && npm pack --silent --pack-destination "$OUT" >/dev/null)
}
pack_platform linux-x64-gnu "$LIBS/libidflow_node.so"
# The main package: node/ as published, plus an optional dependency on every
# platform package at this very version (npm installs the matching one).
main="$STAGE/npm/idflow"
mkdir -p "$main"
node -e '
  const fs = require("node:fs")
  const [src, dest, npmDir] = process.argv.slice(1)
  const pkg = JSON.parse(fs.readFileSync(src + "/package.json", "utf8"))
  pkg.optionalDependencies = Object.fromEntries(fs.readdirSync(npmDir).sort().map((d) => [`idflow-${d}`, pkg.version]))
  delete pkg.devDependencies
  delete pkg.scripts
  delete pkg.overrides
  fs.writeFileSync(dest + "/package.json", JSON.stringify(pkg, null, 2) + "\n")
  for (const f of pkg.files) fs.copyFileSync(src + "/" + f, dest + "/" + f)
' node "$main" node/npm
cp LICENSE node/README.md "$main/"
(cd "$main" && npm pack --silent --pack-destination "$OUT" >/dev/null)

echo "== JVM: dev.idflow:idflow:$VERSION with the native library inside"
mkdir -p "$STAGE/jvm/native/linux-x86-64"
cp "$LIBS/libidflow_uniffi.so" "$STAGE/jvm/native/linux-x86-64/"
(cd kotlin && mvn -B -ntp -q install -Dmaven.test.skip=true \
  -Didflow.native.dir="$STAGE/jvm/native" -Didflow.build.dir="$STAGE/jvm/target")
cp "$STAGE/jvm/target/idflow-$VERSION.jar" "$OUT/"
cp kotlin/pom.xml "$OUT/idflow-$VERSION.pom"

echo "== idflow: static x86_64-unknown-linux-musl binary"
add_target x86_64-unknown-linux-musl
cargo zigbuild --profile dist -p idflow-cli --target x86_64-unknown-linux-musl
cp "$CARGO_TARGET_DIR/x86_64-unknown-linux-musl/dist/idflow" "$OUT/idflow-x86_64-unknown-linux-musl"
ls -l "$OUT"
