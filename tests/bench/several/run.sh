#!/usr/bin/env bash
# The several-servers benchmark, in one command: bash tests/bench/several/run.sh
#
# idflow's provider (`idflow serve`, the release binary, built here when
# missing) on SQLite and on PostgreSQL, one server and three servers on one
# database, and Ory Hydra v2 on the same PostgreSQL (built from its Go module,
# pinned in hydra/go.mod, configured to issue JWT access tokens), over
# loopback, one configuration at a time:
#   1. client_credentials tokens (client_secret_basic, a JWT access token),
#      RS256 and ES256: tokens/s and p99 (wrk, 2 threads / 16 connections;
#      three servers get three wrk processes of 1 thread, 6/5/5 connections)
#   2. full authorization-code logins with PKCE (idflow only: Hydra needs a
#      login and consent app of yours): logins/s and p99
#      (tests/bench/provider/login-load.js, 16 workers in all)
# with the CPU time of the servers and of PostgreSQL during each
# measurement, as CPU ms per request: on a 2-core machine three servers
# share two cores with PostgreSQL and the load generator, so the ratio of
# CPU per token says more than tokens/s alone. Rows go to
# results/latest.jsonl; report.py prints the table and the targets
# (also results/latest.txt). PostgreSQL is a private cluster
# (tests/postgres.sh), removed at the end.
#
# Knobs: IDFLOW_BIN (default target/x86_64-unknown-linux-gnu/release/idflow),
# SEVERAL_BENCH_SECONDS (per measurement, default 10), SEVERAL_BENCH_WARMUP
# (default 3), SEVERAL_BENCH_HYDRA=0 (skip Hydra).
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)"
HERE="$ROOT/tests/bench/several"
PROVIDER="$ROOT/tests/bench/provider"
RES="$HERE/results"
IDFLOW_BIN="${IDFLOW_BIN:-$ROOT/target/x86_64-unknown-linux-gnu/release/idflow}"
DURATION="${SEVERAL_BENCH_SECONDS:-10}"
WARMUP="${SEVERAL_BENCH_WARMUP:-3}"
HYDRA="${SEVERAL_BENCH_HYDRA:-1}"
PORTS=(18391 18392 18393)
HYDRA_PUBLIC=18394
HYDRA_ADMIN=18395
CLK_TCK="$(getconf CLK_TCK)"
DATA_KEY="AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
CLIENT_BASIC="$(printf '%s' 'K-bench:bench-secret-0123456789abcdef' | base64 | tr -d '\n')"
export NO_PROXY="127.0.0.1,localhost${NO_PROXY:+,$NO_PROXY}"
export no_proxy="$NO_PROXY"

mkdir -p "$RES"
rm -f "$RES/latest.txt"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/idflow-several-bench.XXXXXX")"
chmod 755 "$WORK"
ROWS="$RES/latest.jsonl"
PIDS=()

log() { printf '%s\n' "$*" >&2; }
step() { printf '\n==== %s ====\n' "$*" >&2; }
die() {
  log "several-servers bench: $*"
  exit 1
}

stop_servers() {
  local pid i
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null; done
  for pid in "${PIDS[@]}"; do
    for i in $(seq 1 50); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
  done
  PIDS=()
}

# shellcheck source=tests/postgres.sh
. "$ROOT/tests/postgres.sh"
cleanup() {
  stop_servers
  pg_stop
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- prerequisites
if [ ! -x "$IDFLOW_BIN" ]; then
  step "idflow (cargo build --release -p idflow-cli)"
  (cd "$ROOT" && CARGO_BUILD_TARGET=x86_64-unknown-linux-gnu CARGO_TARGET_DIR="$ROOT/target" cargo build --release -p idflow-cli >&2) ||
    die "the release build failed"
fi
if ! command -v wrk >/dev/null && [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null; then
  log "installing Debian's wrk for the load"
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null) || die "wrk could not be installed"
fi
command -v wrk >/dev/null || die "wrk is not installed (apt-get install wrk)"
command -v node >/dev/null || die "node is not installed"
(cd "$PROVIDER" && npm ci --no-audit --no-fund --loglevel=error) >&2 || die "npm ci in tests/bench/provider failed"
pg_start >&2 || die "no PostgreSQL"
PG_BASE="${IDFLOW_TEST_POSTGRES%/postgres?*}"
PG_ADMIN="$IDFLOW_TEST_POSTGRES"
PG_MASTER="$(head -n 1 "$PG_DIR/data/postmaster.pid")"
psql_admin() { psql -q -v ON_ERROR_STOP=1 "$PG_ADMIN" -c "$1" >/dev/null; }

if [ "$HYDRA" = 1 ]; then
  step "Ory Hydra (go build from tests/bench/several/hydra/go.mod)"
  if (cd "$HERE/hydra" && go build -o "$WORK/hydra" github.com/ory/hydra/v2) >&2; then
    log "hydra: $("$WORK/hydra" version 2>/dev/null | grep -m1 -i version)"
  else
    log "Hydra could not be built: its rows are n/a"
    HYDRA=0
  fi
fi

: >"$ROWS"
row() { printf '%s\n' "$1" >>"$ROWS"; }
json_str() { python3 -c 'import json,sys; print(json.dumps(sys.argv[1]))' "$1"; }
row "{\"kind\":\"meta\",\"idflow\":$(json_str "$("$IDFLOW_BIN" --version)"),\"postgres\":$(json_str "$(psql --version)"),\"cpus\":$(nproc),\"seconds\":$DURATION,\"warmup\":$WARMUP}"

# Every wait names its jobs: the servers run in the background too.
# ---- CPU accounting: servers (PIDS) and PostgreSQL (the postmaster's tree)
ticks_of() { local p t=0; for p in "$@"; do t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0))); done; echo "$t"; }
# Children of the postmaster come and go (one per connection); their time is
# counted when they exit into the postmaster's cutime, so read both.
pg_ticks() { awk '{print $14 + $15 + $16 + $17}' "/proc/$PG_MASTER/stat" | { read -r own; echo $((own + $(ticks_of $(pgrep -P "$PG_MASTER")))); }; }
seconds_of() { awk -v a="$1" -v b="$2" -v t="$CLK_TCK" 'BEGIN{printf "%.3f", (b - a) / t}'; }

wait_ready() {
  local url="$1" i
  for i in $(seq 1 200); do
    curl -s -o /dev/null --max-time 1 "$url" && return 0
    sleep 0.1
  done
  return 1
}

project_file() {
  # project_file ALG DB_KIND: the provider bench's project, with the data key
  # (PostgreSQL needs one) and this bench's first port as its baseUrl.
  local alg="$1" out="$WORK/project-$1-$2.json"
  python3 - "$PROVIDER/project-$(echo "$alg" | tr 'A-Z' 'a-z').json" "$out" "${PORTS[0]}" "$DATA_KEY" "$PROVIDER" <<'EOF'
import json, sys, os
src, out, port, key, provider = sys.argv[1:]
p = json.load(open(src))
p["baseUrl"] = f"http://127.0.0.1:{port}"
p["encryption"] = {"key": key}
p["flows"] = [os.path.join(provider, f) for f in p["flows"]]
json.dump(p, open(out, "w"))
EOF
  echo "$out"
}

start_idflow() {
  # start_idflow ALG DB N: N servers on DB (a file or a URL), first port first.
  local alg="$1" db="$2" n="$3" i config
  config="$(project_file "$alg" "$(case "$db" in postgres*) echo pg ;; *) echo sqlite ;; esac)")"
  for i in $(seq 0 $((n - 1))); do
    IDFLOW_LOG=warn "$IDFLOW_BIN" serve --config "$config" --addr "127.0.0.1:${PORTS[$i]}" --db "$db" >"$WORK/idflow-$i.log" 2>&1 &
    PIDS+=($!)
    wait_ready "http://127.0.0.1:${PORTS[$i]}/health" || { log "idflow serve did not start: $(tail -n 5 "$WORK/idflow-$i.log")"; return 1; }
  done
}

start_hydra() {
  # Hydra v2 on its own database, JWT access tokens signed RS256 (its
  # default key), a client_credentials client with client_secret_basic.
  # Its pool is raised from the default (a few connections), with which 16
  # concurrent token requests wait on each other until they time out.
  local db="$PG_BASE/hydra?sslmode=disable&max_conns=32&max_idle_conns=16" out
  psql_admin "DROP DATABASE IF EXISTS hydra" && psql_admin "CREATE DATABASE hydra" || return 1
  DSN="$db" "$WORK/hydra" migrate sql up -e --yes >"$WORK/hydra-migrate.log" 2>&1 ||
    { log "hydra migrate failed: $(tail -n 5 "$WORK/hydra-migrate.log")"; return 1; }
  DSN="$db" SERVE_PUBLIC_PORT=$HYDRA_PUBLIC SERVE_ADMIN_PORT=$HYDRA_ADMIN SERVE_PUBLIC_HOST=127.0.0.1 SERVE_ADMIN_HOST=127.0.0.1 \
    URLS_SELF_ISSUER="http://127.0.0.1:$HYDRA_PUBLIC" SECRETS_SYSTEM="this-is-the-bench-system-secret" \
    STRATEGIES_ACCESS_TOKEN=jwt LOG_LEVEL=error \
    "$WORK/hydra" serve all --dev >"$WORK/hydra.log" 2>&1 &
  PIDS+=($!)
  wait_ready "http://127.0.0.1:$HYDRA_ADMIN/health/ready" || { log "hydra did not start: $(tail -n 5 "$WORK/hydra.log")"; return 1; }
  out="$("$WORK/hydra" create oauth2-client --endpoint "http://127.0.0.1:$HYDRA_ADMIN" --grant-type client_credentials \
    --token-endpoint-auth-method client_secret_basic --scope reports:read --format json 2>"$WORK/hydra-client.log")" ||
    { log "hydra create oauth2-client failed: $(cat "$WORK/hydra-client.log")"; return 1; }
  HYDRA_BASIC="$(python3 -c 'import json,sys,base64,urllib.parse as u; c=json.loads(sys.argv[1]); print(base64.b64encode((u.quote(c["client_id"], safe="")+":"+u.quote(c["client_secret"], safe="")).encode()).decode())' "$out")"
}

sample_token() {
  # One token, checked: a JWT with the expected alg (both sides issue the same kind).
  local url="$1" basic="$2" alg="$3" body
  body="$(curl -s -H "Authorization: Basic $basic" -H 'Content-Type: application/x-www-form-urlencoded' \
    --data 'grant_type=client_credentials&scope=reports:read' "$url")"
  python3 - "$body" "$alg" <<'EOF' || { log "no good token: $body"; return 1; }
import base64, json, sys
body, alg = sys.argv[1:]
tok = json.loads(body)["access_token"]
h = json.loads(base64.urlsafe_b64decode(tok.split(".")[0] + "=="))
assert h["alg"] == alg, h
EOF
}

load_one() {
  # load_one KIND I SECONDS: one load generator against server I (its share
  # of 16 connections), for SECONDS; its JSON line is the last on stdout.
  local kind="$1" i="$2" secs="$3" share=(16)
  [ "$N" = 3 ] && share=(6 5 5)
  case "$kind" in
    tokens)
      wrk -t$([ "$N" = 1 ] && echo 2 || echo 1) -c"${share[$i]}" -d"${secs}s" --latency -s "$PROVIDER/token.lua" "${URLS[$i]}" -- "$BASIC" ;;
    logins)
      node "$PROVIDER/login-load.js" --target idflow --base "${URLS[$i]}" --seconds "$secs" --warmup 0 --concurrency "${share[$i]}" ;;
  esac
}

load_round() {
  # load_round KIND SECONDS OUT: one generator per server at once.
  local kind="$1" secs="$2" out="$3" i jobs=()
  for i in $(seq 0 $((N - 1))); do
    load_one "$kind" "$i" "$secs" >"$out-$i.out" 2>&1 &
    jobs+=($!)
  done
  wait "${jobs[@]}"
}

measure() {
  # measure KIND NAME ALG: a warm-up round, then the measured one with the
  # CPU time of the servers and of PostgreSQL around it (URLS, BASIC and N
  # say where and how many).
  local kind="$1" name="$2" alg="$3" i s0 s1 p0 p1 lines=() parts
  load_round "$kind" "$WARMUP" "$WORK/warm"
  s0=$(ticks_of "${PIDS[@]}")
  p0=$(pg_ticks)
  load_round "$kind" "$DURATION" "$WORK/run"
  s1=$(ticks_of "${PIDS[@]}")
  p1=$(pg_ticks)
  for i in $(seq 0 $((N - 1))); do
    lines+=("$(grep '^{' "$WORK/run-$i.out" | tail -n 1 || echo '{}')")
  done
  parts="$(IFS=,; echo "${lines[*]}")"
  row "{\"kind\":\"$kind\",\"name\":\"$name\",\"alg\":\"$alg\",\"servers\":$N,\"server_cpu_s\":$(seconds_of "$s0" "$s1"),\"pg_cpu_s\":$(seconds_of "$p0" "$p1"),\"parts\":[$parts]}"
  log "$name $alg $kind, $N server(s): $parts"
}

run_idflow() {
  # run_idflow NAME ALG DB N
  local name="$1" alg="$2" db="$3" n="$4" i
  step "$name, $alg, $n server(s)"
  start_idflow "$alg" "$db" "$n" || { stop_servers; return 1; }
  sample_token "http://127.0.0.1:${PORTS[0]}/oauth2/v1/token" "$CLIENT_BASIC" "$alg" || { stop_servers; return 1; }
  N="$n" BASIC="$CLIENT_BASIC"
  URLS=()
  for i in $(seq 0 $((n - 1))); do URLS+=("http://127.0.0.1:${PORTS[$i]}/oauth2/v1/token"); done
  measure tokens "$name" "$alg"
  if [ "$alg" = RS256 ]; then
    URLS=()
    for i in $(seq 0 $((n - 1))); do URLS+=("http://127.0.0.1:${PORTS[$i]}"); done
    measure logins "$name" "$alg"
  fi
  stop_servers
}

fresh_pg() {
  psql_admin "DROP DATABASE IF EXISTS idflow_bench" && psql_admin "CREATE DATABASE idflow_bench" && echo "$PG_BASE/idflow_bench?sslmode=disable"
}

t_bench=$SECONDS
failed=()
for alg in RS256 ES256; do
  run_idflow sqlite "$alg" "$WORK/bench-$alg.db" 1 || failed+=("sqlite $alg")
  run_idflow postgres "$alg" "$(fresh_pg)" 1 || failed+=("postgres $alg")
  run_idflow postgres "$alg" "$(fresh_pg)" 3 || failed+=("postgres x3 $alg")
done
if [ "$HYDRA" = 1 ]; then
  step "hydra, RS256"
  if start_hydra && sample_token "http://127.0.0.1:$HYDRA_PUBLIC/oauth2/token" "$HYDRA_BASIC" RS256; then
    N=1 BASIC="$HYDRA_BASIC" URLS=("http://127.0.0.1:$HYDRA_PUBLIC/oauth2/token")
    measure tokens hydra RS256
  else
    failed+=("hydra")
  fi
  stop_servers
fi
cp "$ROWS" "$RES/run-$(date +%Y%m%d-%H%M%S).jsonl"

step "report"
python3 "$HERE/report.py" "$ROWS" | tee "$RES/latest.txt"
echo
echo "benches: $((SECONDS - t_bench)) s"
if [ "${#failed[@]}" -gt 0 ]; then
  echo "failed: ${failed[*]}"
  exit 1
fi
