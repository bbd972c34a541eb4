#!/usr/bin/env bash
# The benchmark, in one command: bash tests/bench/run.sh
#
# Builds release artifacts (the Python wheel, the Node addon, the Rust bench),
# installs the pinned peers (Python: .venv-bench from tests/bench/requirements.txt;
# Node: tests/bench/node from its package-lock.json), makes one set of keys and
# tokens with idflow (tests/bench/results/keys), runs the Rust, Python and Node
# benches one after the other, writes every row to tests/bench/results/latest.jsonl
# and prints the table with ratios and the targets (tests/bench/report.py; also
# saved as results/latest.txt). A peer that cannot be installed or lacks an
# algorithm shows as n/a; nothing here stops the other benches.
# Knobs: BENCH_SECONDS (per measurement, default 1.0), BENCH_TOKENS (default 2000).
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"

# One target dir for every build; napi always passes --target, so everyone does.
export CARGO_BUILD_TARGET=x86_64-unknown-linux-gnu
export CARGO_TARGET_DIR="$ROOT/target"
export CARGO_TERM_COLOR=never
export BENCH_SECONDS="${BENCH_SECONDS:-1.0}"
export BENCH_TOKENS="${BENCH_TOKENS:-2000}"
# The only sockets the benches open are loopback JWKS endpoints.
export NO_PROXY="127.0.0.1,localhost${NO_PROXY:+,$NO_PROXY}"
export no_proxy="$NO_PROXY"

BENCH="$ROOT/tests/bench"
RES="$BENCH/results"
VENV="$ROOT/.venv-bench"
PY="$VENV/bin/python"
PIP=("$PY" -m pip install -q --disable-pip-version-check)
mkdir -p "$RES"
t_start=$SECONDS
failed=()

step() { printf '\n==== %s ====\n' "$*" >&2; }
timed() {
  # timed NAME COMMAND...: runs a step, records a failure, never exits.
  local name="$1" t0=$SECONDS
  shift
  step "$name"
  # Progress goes to stderr; stdout carries only the report.
  if "$@" >&2; then
    echo "---- $name: ok ($((SECONDS - t0)) s)" >&2
  else
    failed+=("$name")
    echo "---- $name: FAILED ($((SECONDS - t0)) s)" >&2
  fi
}

python_peers() {
  if [ ! -x "$PY" ]; then
    python3 -m venv "$VENV" || return 1
  fi
  # All at once (fast when already satisfied); if one pin cannot be had,
  # install the rest one by one: the bench reports a missing peer as n/a.
  if ! "${PIP[@]}" -r "$BENCH/requirements.txt"; then
    local req
    grep -vE '^\s*(#|$)' "$BENCH/requirements.txt" | while read -r req; do
      "${PIP[@]}" "$req" || echo "could not install $req (its rows will be n/a)" >&2
    done
  fi
  [ -x "$VENV/bin/maturin" ]
}

node_peers() {
  # npm ci refuses a lock that lacks the platform packages of
  # @node-rs/jsonwebtoken's optionalDependencies that the registry does not
  # serve; npm install then installs the same pinned versions from the lock.
  (cd "$BENCH/node" && { npm ci --no-audit --no-fund --loglevel=error 2>/dev/null ||
    npm install --no-audit --no-fund --loglevel=error; })
}

rust_build() {
  cargo bench -p idflow --bench jose --bench flow --no-run &&
    cargo build --release -p idflow-cli # idflow serve, for the provider bench
}

python_build() {
  (cd python && "$VENV/bin/maturin" build --release -o "$CARGO_TARGET_DIR/wheels-release" -i "$PY") || return 1
  local wheel
  wheel="$(ls -t "$CARGO_TARGET_DIR"/wheels-release/idflow-*.whl | head -n 1)"
  "${PIP[@]}" --force-reinstall --no-deps "$wheel"
}

node_build() {
  (cd node && npm ci --no-audit --no-fund --loglevel=error &&
    npx napi build --platform --release --manifest-path ../bindings/node/Cargo.toml --output-dir . --no-js --dts native.d.ts)
}

gen_keys() {
  rm -rf "$RES/keys"
  "$PY" "$BENCH/bench_py.py" --gen-keys "$RES/keys"
}

bench_rust() { cargo bench -q -p idflow --bench jose >"$RES/rust.jsonl"; }
bench_python() { "$PY" "$BENCH/bench_py.py" --keys "$RES/keys" >"$RES/python.jsonl"; }
bench_node() { node "$BENCH/bench_node.js" --keys "$RES/keys" >"$RES/node.jsonl"; }

timed "python peers (.venv-bench)" python_peers
timed "node peers (tests/bench/node)" node_peers
timed "build: rust bench and idflow (release)" rust_build
timed "build: python wheel (release)" python_build
timed "build: node addon (release)" node_build
timed "keys and tokens (idflow)" gen_keys

rm -f "$RES/rust.jsonl" "$RES/python.jsonl" "$RES/node.jsonl"
step "machine"
{
  echo "cpus: $(nproc), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
  echo "load average before the benches: $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "$RES/machine.txt" >&2
t_bench=$SECONDS
timed "bench: rust (native idflow + raw aws-lc-rs)" bench_rust
timed "bench: python" bench_python
timed "bench: node" bench_node
echo "load average after the benches: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$RES/machine.txt" >&2

cat "$RES"/rust.jsonl "$RES"/python.jsonl "$RES"/node.jsonl 2>/dev/null >"$RES/latest.jsonl"
cp "$RES/latest.jsonl" "$RES/run-$(date +%Y%m%d-%H%M%S).jsonl"

step "report"
{
  cat "$RES/machine.txt"
  "$PY" "$BENCH/report.py" "$RES/latest.jsonl" 2>&1 || python3 "$BENCH/report.py" "$RES/latest.jsonl"
} | tee "$RES/latest.txt"

bench_flow() { cargo bench -q -p idflow --bench flow | tee "$RES/flow.txt"; }
timed "bench: flow engine" bench_flow
cat "$RES/flow.txt" 2>/dev/null
timed "bench: provider (idflow serve vs oidc-provider)" bash "$BENCH/provider/run.sh"; cat "$BENCH/provider/results/latest.txt" 2>/dev/null
timed "bench: OIDC client callback (idflow vs openid-client, authlib)" bash "$BENCH/callback/run.sh"

echo
echo "benches: $((SECONDS - t_bench)) s; total: $((SECONDS - t_start)) s"
if [ "${#failed[@]}" -gt 0 ]; then
  echo "failed steps: ${failed[*]}"
  exit 1
fi
