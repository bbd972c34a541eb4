#!/usr/bin/env bash
# The OIDC client's callback cost (network excluded): idflow vs openid-client
# (Node) and vs authlib (Python), in one run. Needs the release Node addon and
# the release wheel in .venv-bench, which tests/bench/run.sh builds first.
# Usage: bash tests/bench/callback/run.sh   (BENCH_SECONDS per measurement)
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)"
cd "$ROOT"
PY="${BENCH_PY:-$ROOT/.venv-bench/bin/python}"
export BENCH_SECONDS="${BENCH_SECONDS:-2}"
node_rows="$(node tests/bench/callback/bench_node.js)" || exit 1
py_rows="$("$PY" tests/bench/callback/bench_py.py 2>/dev/null)" || exit 1
python3 - "$node_rows" "$py_rows" <<'PY'
import json, sys
rows = [[json.loads(line) for line in block.splitlines() if line.strip()] for block in sys.argv[1:]]
print("| OIDC callback (state + token response + RS256 id_token), ops/s | idflow | peer | ratio | target ≥ 2× |")
print("|---|---|---|---|---|")
for lang, (ours, peer) in zip(["Node", "Python"], rows):
    ratio = ours["ops"] / peer["ops"] if peer["ops"] else float("nan")
    verdict = "PASS" if ratio >= 2 else "FAIL"
    print(f"| {lang}: idflow vs {peer['lib']} | {ours['ops']:,.0f} | {peer['ops']:,.0f} | {ratio:.2f}× | {verdict} |")
PY
