#!/usr/bin/env bash
# The one test command: builds everything once and runs every suite
# (Rust, Python, Node, Kotlin, the end-to-end suite, the release artifacts
# of dist/; Swift where a toolchain exists). It installs what it needs into
# local folders: .venv, .venv-dist, node/node_modules, Maven's local
# repository. Usage: bash tests/run.sh
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

# One target dir for every build; napi always passes --target, so everyone does.
export CARGO_BUILD_TARGET="${CARGO_BUILD_TARGET:-x86_64-unknown-linux-gnu}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
export CARGO_TERM_COLOR=never
export RUST_BACKTRACE=0
LIB_DIR="$CARGO_TARGET_DIR/$CARGO_BUILD_TARGET/debug"
PY="$ROOT/.venv/bin/python"

passed=()
failed=()
skipped=()

step() { printf '\n==== %s ====\n' "$*"; }

suite() {
  # suite NAME COMMAND...: runs a suite and records its outcome.
  local name="$1"
  shift
  step "$name"
  local t0=$SECONDS
  if "$@"; then
    passed+=("$name")
    echo "---- $name: ok ($((SECONDS - t0)) s)"
  else
    failed+=("$name")
    echo "---- $name: FAILED ($((SECONDS - t0)) s)"
  fi
}

# shellcheck source=tests/postgres.sh
. "$ROOT/tests/postgres.sh"
trap pg_stop EXIT

with_postgres() {
  # with_postgres COMMAND...: runs it with a private PostgreSQL cluster
  # (tests/postgres.sh), stopped at the end.
  pg_start || return 1
  local ok=0
  "$@" || ok=1
  pg_stop
  return $ok
}

rust_suite() {
  # The store contract and the several-servers tests run on PostgreSQL too.
  with_postgres cargo test --workspace --exclude idflow-python --exclude idflow-node --exclude idflow-uniffi
}

uniffi_build() {
  # The cdylib for Kotlin/Swift and the pinned bindgen binary, in one build.
  cargo build -p idflow-uniffi --features bindgen || return 1
  local gen
  gen="$(mktemp -d)"
  "$LIB_DIR/uniffi-bindgen" generate "$LIB_DIR/libidflow_uniffi.so" -l kotlin -l swift --no-format -o "$gen" || return 1
  # Two uniffi crates: bindings/uniffi (IdFlow, dev.idflow) and the core's
  # own records (IdFlowCore, compiled into the same Swift module; Kotlin
  # package dev.idflow.core).
  mkdir -p kotlin/src/main/kotlin/dev/idflow/core
  cp "$gen/dev/idflow/idflow.kt" kotlin/src/main/kotlin/dev/idflow/idflow.kt
  cp "$gen/dev/idflow/core/idflow_core.kt" kotlin/src/main/kotlin/dev/idflow/core/idflow_core.kt
  cp "$gen/IdFlow.swift" "$gen/IdFlowCore.swift" swift/Sources/IdFlow/
  cp "$gen/IdFlowFFI.h" "$gen/IdFlowCoreFFI.h" swift/Sources/IdFlowFFI/
  rm -rf "$gen"
  # The committed bindings must be what this core generates.
  if ! git diff --quiet -- kotlin/src/main swift/Sources 2>/dev/null || [ -n "$(git ls-files --others --exclude-standard -- kotlin/src/main swift/Sources 2>/dev/null)" ]; then
    echo "generated bindings changed: commit kotlin/src/main and swift/Sources"
    git --no-pager diff --stat -- kotlin/src/main swift/Sources
    [ "${CI:-}" = "true" ] && return 1
  fi
  return 0
}

python_suite() {
  if [ ! -x "$PY" ]; then
    python3 -m venv "$ROOT/.venv" || return 1
  fi
  "$PY" -m pip install -q --disable-pip-version-check "maturin>=1.9.4,<2" "pytest>=8,<9" "mypy>=1.15,<2" "flask>=3.1,<4" "argon2-cffi>=25.1,<26" "bcrypt>=5,<6" "aiosmtpd>=1.4.6,<2" "pyotp>=2.9,<3" "prometheus-client>=0.21,<1" || return 1
  (cd python && "$ROOT/.venv/bin/maturin" build --profile dev -o "$CARGO_TARGET_DIR/wheels" -i "$PY") || return 1
  local wheel
  wheel="$(ls -t "$CARGO_TARGET_DIR"/wheels/idflow-*.whl | head -n 1)"
  "$PY" -m pip install -q --disable-pip-version-check --force-reinstall --no-deps "$wheel" || return 1
  # Run from outside python/ so the source tree cannot shadow the installed module.
  # stubtest checks the .pyi stubs against the compiled module.
  (cd "$CARGO_TARGET_DIR" && "$PY" -m mypy.stubtest idflow && "$PY" -m pytest -q -p no:cacheprovider "$ROOT/python/tests")
}

node_suite() {
  (cd node && npm ci --no-audit --no-fund --loglevel=error && npm run --silent build:debug) || return 1
  # The Express example links ../../node; its test runs with the binding's.
  (cd examples/express && npm ci --no-audit --no-fund --loglevel=error) || return 1
  (cd node && npm test)
}

ensure_chromium() {
  # The hosted login page is tested in Debian's Chromium (headless).
  [ -x /usr/bin/chromium ] && return 0
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing Debian's chromium for the login-page test"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) || return 1
  fi
  [ -x /usr/bin/chromium ]
}

e2e_suite() {
  # Real clients (openid-client, jose, authlib, PyJWT, Chromium) against a
  # running `idflow serve` on 127.0.0.1; each test file starts its own server.
  cargo build -p idflow-cli || return 1
  export IDFLOW_BIN="$LIB_DIR/idflow"
  ensure_chromium || { echo "chromium is missing and could not be installed"; return 1; }
  if [ ! -x "$PY" ]; then
    python3 -m venv "$ROOT/.venv" || return 1
  fi
  "$PY" -m pip install -q --disable-pip-version-check -r tests/e2e/python/requirements.txt || return 1
  (cd tests/e2e/node && npm ci --no-audit --no-fund --loglevel=error) || return 1
  local ok=0
  "$PY" -m pytest -q -p no:cacheprovider -c tests/e2e/python/pytest.ini tests/e2e/python || ok=1
  (cd tests/e2e/node && npm test) || ok=1
  return $ok
}

dist_suite() {
  # The release artifacts as users install them (no Rust on PATH):
  # dist/build.sh x86_64 (the x86_64 artifacts; the aarch64 and musl ones
  # take another 20 minutes), then dist/check.sh.
  bash dist/build.sh x86_64 && bash dist/check.sh
}

kotlin_suite() {
  (cd kotlin && mvn -B -ntp test -Didflow.lib.dir="$LIB_DIR")
}

swift_suite() {
  # The package is at the root (an app adds it by URL); the library is
  # linked by name, so the linker is told where this build put it.
  LIBRARY_PATH="$LIB_DIR" LD_LIBRARY_PATH="$LIB_DIR" swift test -Xlinker -L"$LIB_DIR"
}

t_start=$SECONDS
suite rust rust_suite
suite uniffi-build uniffi_build
# The bindings' Provider on PostgreSQL is tested too.
suite python with_postgres python_suite
suite node with_postgres node_suite
suite kotlin kotlin_suite
suite e2e with_postgres e2e_suite
suite dist dist_suite
if command -v swift >/dev/null 2>&1; then
  suite swift swift_suite
else
  step swift
  echo "SKIPPED: Swift suite: no swift toolchain on this machine (bindings are generated; run 'bash tests/run.sh' where swift exists)"
  skipped+=(swift)
fi

step summary
echo "passed:  ${passed[*]:-none}"
echo "failed:  ${failed[*]:-none}"
echo "skipped: ${skipped[*]:-none}"
echo "total time: $((SECONDS - t_start)) s"
echo "suites: ${#passed[@]} passed, ${#failed[@]} failed, ${#skipped[@]} skipped"
[ "${#failed[@]}" -eq 0 ]
