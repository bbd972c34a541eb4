#!/usr/bin/env bash
# Builds the release artifacts this machine can build into dist/out/:
#   - the Python abi3 wheel (cp310-abi3, one wheel for Python 3.10 and later)
#     for manylinux_2_28 x86_64, cross-linked with zig so that it runs on
#     glibc 2.28 and later, and the sdist;
#   - the `idflow` binary for x86_64 Linux, static (musl, linked by zig
#     through cargo-zigbuild), built with the `dist` profile (stripped).
# The other artifacts of the packaging plan (aarch64 and musl wheels, npm
# platform packages, the JVM jar, the aarch64 binary) are not built yet.
# Usage: bash dist/build.sh    (then bash dist/check.sh)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
OUT="$ROOT/dist/out"
VENV="$ROOT/.venv-dist"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
# maturin finds zig through the python on PATH (python -m ziglang).
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install -q --disable-pip-version-check -r dist/requirements.txt
export PATH="$VENV/bin:$PATH"
rm -rf "$OUT" && mkdir -p "$OUT"

echo "== python: abi3 wheel (manylinux_2_28 x86_64) and sdist"
(cd python && maturin build --release --zig --compatibility manylinux_2_28 \
  --target x86_64-unknown-linux-gnu -i python3 --strip -o "$OUT")
(cd python && maturin sdist -o "$OUT")

echo "== idflow: static x86_64-unknown-linux-musl binary"
rustup target list --installed | grep -qx x86_64-unknown-linux-musl || rustup target add x86_64-unknown-linux-musl
cargo zigbuild --profile dist -p idflow-cli --target x86_64-unknown-linux-musl
cp "$CARGO_TARGET_DIR/x86_64-unknown-linux-musl/dist/idflow" "$OUT/idflow-x86_64-unknown-linux-musl"
ls -l "$OUT"
