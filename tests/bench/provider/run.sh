#!/usr/bin/env bash
# The provider benchmark, in one command: bash tests/bench/provider/run.sh
#
# idflow's OIDC provider (`idflow serve`, the release binary; it is not
# built here) against the npm package oidc-provider (pinned in package.json /
# package-lock.json, installed here with npm ci), configured alike
# (project-rs256.json / project-es256.json and oidc-server.js): over loopback,
# one server alone on the machine at a time (start, measure, stop, then the
# other), with wrk at 2 threads / 16 connections and, for logins, the same
# Node load generator (login-load.js, 16 workers) for both:
#   1. client_credentials tokens (client_secret_basic, scope reports:read,
#      a JWT access token): requests/s and p99 (token.lua)
#   2. GET of the JWKS document: requests/s and p99 (jwks.lua)
#   3. full authorization-code logins with PKCE: logins/s and p99
#   4. VmRSS of the server process: idle after start and a few requests, idle
#      after the load, and its peak (VmHWM)
#   5. 1 and 3 again with ES256 signing (RS256 first; a fresh key each)
# Also the server's CPU time during each measurement (from /proc/PID/stat),
# as CPU % and CPU ms per request: a cheap profile that tells whether a
# server is CPU-bound. Rows go to results/latest.jsonl; report.py prints the
# markdown table with ratios and the targets (PASS/FAIL), also saved as
# results/latest.txt. Progress goes to stderr, the report to stdout.
#
# Knobs: IDFLOW_BIN (default target/x86_64-unknown-linux-gnu/release/idflow),
# PROVIDER_BENCH_SECONDS (per measurement, default 10), PROVIDER_BENCH_WARMUP
# (unmeasured warm-up before each, default 3), PROVIDER_BENCH_PROFILE=1
# (perf record idflow during its RS256 client_credentials run, when perf exists),
# PROVIDER_BENCH_WAIT_QUIET (wait up to this many seconds for other processes
# to leave the CPUs idle before starting, default 0; a busy machine is flagged
# in the report either way).
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)"
HERE="$ROOT/tests/bench/provider"
RES="$HERE/results"
IDFLOW_BIN="${IDFLOW_BIN:-$ROOT/target/x86_64-unknown-linux-gnu/release/idflow}"
DURATION="${PROVIDER_BENCH_SECONDS:-10}"
WARMUP="${PROVIDER_BENCH_WARMUP:-3}"
PROFILE="${PROVIDER_BENCH_PROFILE:-0}"
WAIT_QUIET="${PROVIDER_BENCH_WAIT_QUIET:-0}"
THREADS=2
CONNECTIONS=16
IDFLOW_PORT=18291 # also the baseUrl of the project files
OIDC_PORT=18292
CLIENT_BASIC="$(printf '%s' 'K-bench:bench-secret-0123456789abcdef' | base64 | tr -d '\n')"
CLK_TCK="$(getconf CLK_TCK)"
# Only loopback sockets are opened.
export NO_PROXY="127.0.0.1,localhost${NO_PROXY:+,$NO_PROXY}"
export no_proxy="$NO_PROXY"

mkdir -p "$RES"
rm -f "$RES/latest.txt" # written again only by a run that gets to the report
WORK="$(mktemp -d "${TMPDIR:-/tmp}/idflow-provider-bench.XXXXXX")"
ROWS="$RES/latest.jsonl"
t_start=$SECONDS
SERVER_PID=""

log() { printf '%s\n' "$*" >&2; }
step() { printf '\n==== %s ====\n' "$*" >&2; }
die() {
  log "provider bench: $*"
  exit 1
}

stop_server() {
  [ -n "$SERVER_PID" ] || return 0
  kill -TERM "$SERVER_PID" 2>/dev/null
  local i
  for i in $(seq 1 50); do
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$SERVER_PID" 2>/dev/null
  wait "$SERVER_PID" 2>/dev/null
  SERVER_PID=""
}

cleanup() {
  stop_server
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- prerequisites
[ -x "$IDFLOW_BIN" ] || die "no idflow binary at $IDFLOW_BIN (build it with cargo build --release, or set IDFLOW_BIN)"
if ! command -v wrk >/dev/null && [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null; then
  log "installing Debian's wrk for the load"
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null) || die "wrk could not be installed"
fi
command -v wrk >/dev/null || die "wrk is not installed (apt-get install wrk)"
command -v node >/dev/null || die "node is not installed"
command -v python3 >/dev/null || die "python3 is not installed"
command -v curl >/dev/null || die "curl is not installed"
for port in "$IDFLOW_PORT" "$OIDC_PORT"; do
  if curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$port/"; then
    die "port $port is already in use; stop whatever listens there"
  fi
done

step "oidc-provider (npm ci in tests/bench/provider)"
(cd "$HERE" && npm ci --no-audit --no-fund --loglevel=error) >&2 || die "npm ci failed"

step "keys"
for alg in RS256 ES256; do
  bits=()
  [ "$alg" = RS256 ] && bits=(--bits 2048)
  jwk="$("$IDFLOW_BIN" keys generate --alg "$alg" "${bits[@]}")" || die "idflow keys generate failed"
  printf '{"keys":[%s]}\n' "$jwk" >"$WORK/oidc-provider-$alg.jwks.json"
done
log "oidc-provider keys: RSA 2048 and P-256 from idflow keys generate; idflow makes its own on start (RSA 2048 / P-256)"

: >"$ROWS"
row() { printf '%s\n' "$1" >>"$ROWS"; }
json_str() { python3 -c 'import json,sys; print(json.dumps(sys.argv[1]))' "$1"; }

cpu_busy() {
  # Percent of all CPUs busy over one second (everything on the machine).
  local a b
  a=($(head -n 1 /proc/stat))
  sleep 1
  b=($(head -n 1 /proc/stat))
  local total=0 idle i
  for i in 1 2 3 4 5 6 7 8; do total=$((total + b[i] - a[i])); done
  idle=$((b[4] - a[4] + b[5] - a[5]))
  echo $((total > 0 ? 100 * (total - idle) / total : 0))
}
busy=$(cpu_busy)
waited=0
while [ "$busy" -gt 10 ] && [ "$waited" -lt "$WAIT_QUIET" ]; do
  log "the machine is busy ($busy % of the CPUs); waiting for it to calm down (${waited}/${WAIT_QUIET} s)"
  sleep 4
  waited=$((waited + 5))
  busy=$(cpu_busy)
done
{
  echo "cpus: $(nproc), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
  echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg); CPUs busy before the run: $busy %"
  if [ "$busy" -gt 10 ]; then
    echo "WARNING: other processes kept $busy % of the CPUs busy before the run: the figures below are not reliable"
  fi
} >"$RES/machine.txt"
cat "$RES/machine.txt" >&2
row "{\"kind\":\"meta\",\"idflow\":$(json_str "$("$IDFLOW_BIN" --version)"),\"oidc_provider\":$(json_str "$(node -p "require('$HERE/node_modules/oidc-provider/package.json').version")"),\"node\":$(json_str "$(node --version)"),\"wrk\":$(json_str "$(wrk --version 2>&1 | head -n 1 | cut -d' ' -f1-2)"),\"cpus\":$(nproc),\"seconds\":$DURATION,\"warmup\":$WARMUP,\"threads\":$THREADS,\"connections\":$CONNECTIONS}"

cpu_ticks() { awk '{print $14 + $15}' "/proc/$SERVER_PID/stat" 2>/dev/null || echo 0; }
status_kb() { awk -v k="$1:" '$1 == k {print $2}' "/proc/$SERVER_PID/status" 2>/dev/null || echo 0; }

wait_ready() {
  local url="$1" i
  for i in $(seq 1 100); do
    curl -s -o /dev/null --max-time 1 "$url" && return 0
    kill -0 "$SERVER_PID" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}

start_server() {
  # start_server SERVER ALG: starts it in the background, sets SERVER_* vars.
  local server="$1" alg="$2" lc
  lc="$(echo "$alg" | tr 'A-Z' 'a-z')"
  SERVER_LOG="$WORK/$server-$alg.log"
  case "$server" in
    idflow)
      BASE="http://127.0.0.1:$IDFLOW_PORT"
      TOKEN_URL="$BASE/oauth2/v1/token"
      JWKS_URL="$BASE/bench/.well-known/jwks.json"
      # A fresh database: the provider makes an $alg signing key on start.
      # It logs one line per request to stderr, as it does by default.
      (cd "$HERE" && exec "$IDFLOW_BIN" serve --config "project-$lc.json" --addr "127.0.0.1:$IDFLOW_PORT" \
        --db "$WORK/idflow-$alg.db" >"$SERVER_LOG" 2>&1) &
      SERVER_PID=$!
      wait_ready "$BASE/health" || { log "idflow serve did not start: $(tail -n 5 "$SERVER_LOG")"; return 1; }
      ;;
    oidc-provider)
      BASE="http://127.0.0.1:$OIDC_PORT"
      TOKEN_URL="$BASE/token"
      JWKS_URL="$BASE/jwks"
      (cd "$HERE" && NODE_ENV=production exec node oidc-server.js --port "$OIDC_PORT" --alg "$alg" \
        --jwks "$WORK/oidc-provider-$alg.jwks.json" >"$SERVER_LOG" 2>&1) &
      SERVER_PID=$!
      wait_ready "$BASE/.well-known/openid-configuration" || { log "oidc-server.js did not start: $(tail -n 5 "$SERVER_LOG")"; return 1; }
      ;;
  esac
  log "$server ($alg) started, pid $SERVER_PID"
}

sample_token() {
  # One client_credentials token: its JOSE header and claims go in a row, so
  # the report can show that both servers issue the same kind of token.
  local server="$1" alg="$2" body
  body="$(curl -s -H "Authorization: Basic $CLIENT_BASIC" -H 'Content-Type: application/x-www-form-urlencoded' \
    --data 'grant_type=client_credentials&scope=reports:read' "$TOKEN_URL")"
  python3 - "$server" "$alg" "$body" >>"$ROWS" 2>/dev/null <<'EOF' || { log "$server: no client_credentials token: $body"; return 1; }
import base64, json, sys
server, alg, body = sys.argv[1:]
tok = json.loads(body)["access_token"]
part = lambda s: json.loads(base64.urlsafe_b64decode(s + "=" * (-len(s) % 4)))
h, c = tok.split(".")[:2]
print(json.dumps({"kind": "sample", "server": server, "alg": alg, "header": part(h), "claims": sorted(part(c))}))
EOF
}

machine_ticks() { head -n 1 /proc/stat | awk '{print $2 + $3 + $4 + $7 + $8 + $9}'; } # all CPUs, busy
ticks_s() { awk -v a="$1" -v b="$2" -v t="$CLK_TCK" 'BEGIN{print (b - a) / t}'; }

measure_wrk() {
  # measure_wrk SERVER ALG TEST SCRIPT URL [SCRIPT ARGS...]: warm-up, then the
  # measured run; the row has the server's CPU, wrk's own CPU and the whole
  # machine's busy CPU seconds, so that CPU taken by anything else shows.
  local server="$1" alg="$2" test="$3" script="$4" url="$5" c0 c1 m0 m1 line wrk_cpu
  shift 5
  wrk -t"$THREADS" -c"$CONNECTIONS" -d"${WARMUP}s" -s "$HERE/$script" "$url" -- "$@" >/dev/null 2>&1
  local perf_pid=""
  if [ "$PROFILE" = 1 ] && [ "$server" = idflow ] && [ "$test" = client_credentials ] && [ "$alg" = RS256 ] && command -v perf >/dev/null; then
    perf record -q -F 499 -g -p "$SERVER_PID" -o "$RES/idflow-cc-rs256.perf.data" -- sleep "$DURATION" >/dev/null 2>&1 &
    perf_pid=$!
  fi
  c0=$(cpu_ticks)
  m0=$(machine_ticks)
  local TIMEFORMAT='%U %S'
  { time wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --latency -s "$HERE/$script" "$url" -- "$@" >"$WORK/wrk.out" 2>&1; } 2>"$WORK/wrk.time"
  c1=$(cpu_ticks)
  m1=$(machine_ticks)
  wrk_cpu=$(awk '{print $1 + $2}' "$WORK/wrk.time")
  if [ -n "$perf_pid" ]; then
    wait "$perf_pid"
    perf report -i "$RES/idflow-cc-rs256.perf.data" --no-children --sort dso,sym --stdio 2>/dev/null |
      grep -E '^ +[0-9.]+%' | head -n 25 >"$RES/idflow-cc-rs256.perf.txt"
    log "perf profile: $RES/idflow-cc-rs256.perf.txt (profiling slows the measured run)"
  fi
  line="$(grep '^{' "$WORK/wrk.out" | tail -n 1)"
  [ -n "$line" ] || { cat "$WORK/wrk.out" >&2; line='{}'; }
  row "{\"kind\":\"load\",\"server\":\"$server\",\"alg\":\"$alg\",\"test\":\"$test\",\"cpu_s\":$(ticks_s "$c0" "$c1"),\"generator_cpu_s\":${wrk_cpu:-null},\"machine_cpu_s\":$(ticks_s "$m0" "$m1"),\"result\":$line}"
  log "$server $alg $test: $line"
}

measure_logins() {
  # The generator reads the server's CPU time (--pid), its own and the
  # machine's itself, around its measured part only (its warm-up runs first,
  # in the same process).
  local server="$1" alg="$2" line
  line="$(node "$HERE/login-load.js" --target "$server" --base "$BASE" --seconds "$DURATION" --warmup "$WARMUP" \
    --concurrency "$CONNECTIONS" --pid "$SERVER_PID" | tail -n 1)"
  [ -n "$line" ] || line='{}'
  row "{\"kind\":\"load\",\"server\":\"$server\",\"alg\":\"$alg\",\"test\":\"login\",\"result\":$line}"
  log "$server $alg login: $line"
}

rss_row() {
  local server="$1" alg="$2" when="$3"
  row "{\"kind\":\"rss\",\"server\":\"$server\",\"alg\":\"$alg\",\"when\":\"$when\",\"rss_kb\":$(status_kb VmRSS),\"hwm_kb\":$(status_kb VmHWM),\"threads\":$(status_kb Threads)}"
  log "$server $alg rss $when: $(status_kb VmRSS) kB (peak $(status_kb VmHWM) kB)"
}

bench_server() {
  # bench_server SERVER ALG: start, a few requests, idle RSS, the loads, RSS, stop.
  local server="$1" alg="$2" i
  step "$server, $alg"
  start_server "$server" "$alg" || return 1
  sample_token "$server" "$alg" || return 1
  for i in 1 2 3 4 5; do
    curl -s -o /dev/null -H "Authorization: Basic $CLIENT_BASIC" --data 'grant_type=client_credentials&scope=reports:read' "$TOKEN_URL"
    curl -s -o /dev/null "$JWKS_URL"
  done
  node "$HERE/login-load.js" --target "$server" --base "$BASE" --seconds 0.2 --warmup 0 --concurrency 1 --emails 2 >&2 ||
    { log "$server: a login failed"; return 1; }
  sleep 2
  rss_row "$server" "$alg" idle
  measure_wrk "$server" "$alg" client_credentials token.lua "$TOKEN_URL" "$CLIENT_BASIC"
  if [ "$alg" = RS256 ]; then
    measure_wrk "$server" "$alg" jwks jwks.lua "$JWKS_URL"
  fi
  measure_logins "$server" "$alg"
  sleep 1
  rss_row "$server" "$alg" after-load
  stop_server
  grep -E 'server_error|interaction error| ERROR | WARN ' "$SERVER_LOG" | head -n 5 >&2
  return 0
}

t_bench=$SECONDS
failed=()
for alg in RS256 ES256; do
  for server in idflow oidc-provider; do
    if ! bench_server "$server" "$alg"; then
      failed+=("$server $alg")
      log "---- $server $alg: FAILED (its rows are n/a)"
      stop_server
    fi
  done
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg); CPUs busy after the run (servers stopped): $(cpu_busy) %" >>"$RES/machine.txt"
cp "$ROWS" "$RES/run-$(date +%Y%m%d-%H%M%S).jsonl"

step "report"
{
  cat "$RES/machine.txt"
  python3 "$HERE/report.py" "$ROWS"
} | tee "$RES/latest.txt"
echo
echo "benches: $((SECONDS - t_bench)) s; total: $((SECONDS - t_start)) s"
if [ "${#failed[@]}" -gt 0 ]; then
  echo "failed: ${failed[*]}"
  exit 1
fi
