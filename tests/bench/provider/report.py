"""Prints the provider benchmark's markdown table and targets from the JSON
lines of one run (tests/bench/provider/run.sh writes them).

    python3 tests/bench/provider/report.py [tests/bench/provider/results/latest.jsonl]

One row per measurement: idflow, oidc-provider, the ratio idflow / oidc-provider,
and, where the benchmark sets one, the target and PASS/FAIL. Then the servers'
CPU during each measurement (CPU % of one core, CPU ms per request or login):
a server near 200 % is CPU-bound on this 2-core machine, and CPU ms per
request compares the work each server does regardless of how much CPU the
load generator left it. Standard library only.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

SERVERS = ("idflow", "oidc-provider")


def load(path: Path):
    meta, loads, rss, samples = {}, {}, {}, {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            r = json.loads(line)
        except ValueError:
            continue
        kind = r.get("kind")
        if kind == "meta":
            meta = r
        elif kind == "load":
            loads[(r["server"], r["alg"], r["test"])] = r
        elif kind == "rss":
            rss[(r["server"], r["alg"], r["when"])] = r
        elif kind == "sample":
            samples[(r["server"], r["alg"])] = r
    return meta, loads, rss, samples


def num(v, digits=0):
    if v is None:
        return "n/a"
    return f"{v:,.{digits}f}"


def ratio(a, b):
    return a / b if a is not None and b else None


def main() -> int:
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parent / "results" / "latest.jsonl"
    meta, loads, rss, samples = load(path)
    out: list[str] = []
    problems: list[str] = []
    targets: list[bool] = []

    def result(server, alg, test):
        r = loads.get((server, alg, test))
        return (r or {}).get("result") or {}

    def rate(server, alg, test):
        res = result(server, alg, test)
        if not res:
            return None
        bad = (res.get("non_2xx") or 0) + (res.get("socket_errors") or 0) + (res.get("errors") or 0)
        if bad:
            problems.append(f"{server} {alg} {test}: {bad} failed requests"
                            + (f" (first: {res.get('first_error')})" if res.get("first_error") else ""))
        return res.get("rps", res.get("logins_per_s"))

    def p99(server, alg, test):
        return result(server, alg, test).get("p99_ms")

    def mb(server, alg, when, field="rss_kb"):
        r = rss.get((server, alg, when))
        return r[field] / 1024 if r and r.get(field) else None

    rows = []

    def add(label, ours, theirs, digits, need=None, higher=True, unit_ratio="x"):
        x = ratio(ours, theirs)
        if need is None:
            tgt, status = "", ""
        else:
            tgt = f"≥ {need:g}×" if higher else f"≤ 1/{round(1 / need):g} (× {need:.2f})"
            ok = x is not None and (x >= need if higher else x <= need)
            status = "PASS" if ok else "FAIL"
            targets.append(ok)
        rows.append((label, num(ours, digits), num(theirs, digits), "n/a" if x is None else f"{x:.2f}×", tgt, status))

    for alg in ("RS256", "ES256"):
        cc = "client_credentials"
        add(f"{alg} client_credentials tokens/s", rate("idflow", alg, cc), rate("oidc-provider", alg, cc), 0,
            3.0 if alg == "RS256" else None)
        add(f"{alg} client_credentials p99 ms", p99("idflow", alg, cc), p99("oidc-provider", alg, cc), 2,
            1 / 3 if alg == "RS256" else None, higher=False)
        if alg == "RS256":
            add("JWKS GET requests/s", rate("idflow", alg, "jwks"), rate("oidc-provider", alg, "jwks"), 0, 3.0)
            add("JWKS GET p99 ms", p99("idflow", alg, "jwks"), p99("oidc-provider", alg, "jwks"), 2)
        add(f"{alg} authorization-code logins/s", rate("idflow", alg, "login"), rate("oidc-provider", alg, "login"), 0)
        add(f"{alg} login p99 ms", p99("idflow", alg, "login"), p99("oidc-provider", alg, "login"), 2)
    idle = mb("idflow", "RS256", "idle")
    rows.append((
        "idle RSS MB (RS256, after start + a few requests)", num(idle, 1), num(mb("oidc-provider", "RS256", "idle"), 1),
        "n/a" if ratio(idle, mb("oidc-provider", "RS256", "idle")) is None else f"{ratio(idle, mb('oidc-provider', 'RS256', 'idle')):.2f}×",
        "idflow ≤ 30 MB", "PASS" if idle is not None and idle <= 30 else "FAIL"))
    targets.append(idle is not None and idle <= 30)
    for alg in ("RS256", "ES256"):
        if alg == "ES256":
            add("idle RSS MB (ES256, after start + a few requests)", mb("idflow", alg, "idle"), mb("oidc-provider", alg, "idle"), 1)
        add(f"idle RSS MB ({alg}, after the load)", mb("idflow", alg, "after-load"), mb("oidc-provider", alg, "after-load"), 1)
        add(f"peak RSS MB ({alg}, VmHWM)", mb("idflow", alg, "after-load", "hwm_kb"), mb("oidc-provider", alg, "after-load", "hwm_kb"), 1)

    if meta:
        out.append(f"idflow {meta.get('idflow', '?').split()[-1]} (idflow serve, SQLite) vs oidc-provider {meta.get('oidc_provider')} "
                   f"(in-memory adapter) on node {meta.get('node')}; {meta.get('wrk')} -t{meta.get('threads')} -c{meta.get('connections')}, "
                   f"{meta.get('seconds')} s per measurement after {meta.get('warmup')} s warm-up; {meta.get('cpus')} CPUs; "
                   "loopback; one server at a time.")
    out.append("")
    out.append("| measurement | idflow | oidc-provider | idflow ÷ oidc-provider | target | result |")
    out.append("|---|---:|---:|---:|---|---|")
    for r in rows:
        out.append("| " + " | ".join(r) + " |")
    out.append("")
    passed = sum(targets)
    out.append(f"targets: {passed} passed, {len(targets) - passed} failed")

    # ---- CPU of the servers (cheap profile)
    out.append("")
    out.append("CPU during each measurement (100 % = one core of the 2; ms/op = server CPU ms per request or login;"
               " other = the machine's busy CPU minus server and load generator):")
    out.append("")
    out.append("| measurement | server | server CPU % | server CPU ms/op | load generator CPU % | other CPU % |")
    out.append("|---|---|---:|---:|---:|---:|")
    for alg in ("RS256", "ES256"):
        for test in ("client_credentials", "jwks", "login"):
            for server in SERVERS:
                r = loads.get((server, alg, test))
                if not r:
                    continue
                res = r.get("result") or {}
                cpu = r.get("cpu_s", res.get("server_cpu_s"))
                gen = r.get("generator_cpu_s", res.get("generator_cpu_s"))
                machine = r.get("machine_cpu_s", res.get("machine_cpu_s"))
                secs = res.get("duration_s", res.get("seconds"))
                ops = res.get("requests", res.get("logins"))
                pct = lambda v: num(100 * v / secs, 0) if v is not None and secs else "n/a"
                other = machine - cpu - gen if None not in (machine, cpu, gen) else None
                if other is not None and secs and other / secs > 0.15:
                    problems.append(f"{server} {alg} {test}: other processes used {100 * other / secs:.0f} % of a core"
                                    " during the measurement")
                gen_name = "login-load.js" if test == "login" else "wrk"
                out.append(f"| {alg} {test} | {server} | {pct(cpu)} | {num(1000 * cpu / ops, 3) if cpu is not None and ops else 'n/a'}"
                           f" | {pct(gen)} ({gen_name}) | {pct(other)} |")

    # ---- what bounds the RS256 client_credentials ratio
    cc = loads.get(("idflow", "RS256", "client_credentials"))
    theirs = rate("oidc-provider", "RS256", "client_credentials") if ("oidc-provider", "RS256", "client_credentials") in loads else None
    cpus = meta.get("cpus") or 2
    if cc and cc.get("cpu_s") and (cc.get("result") or {}).get("requests"):
        ms = 1000 * cc["cpu_s"] / cc["result"]["requests"]
        line = (f"idflow spends {ms:.3f} CPU ms per RS256 client_credentials token (one RSA-2048 signature is most of it),"
                f" so with all {cpus} CPUs and none left for wrk it could answer at most {cpus * 1000 / ms:,.0f} tokens/s")
        if theirs:
            line += f"; 3x oidc-provider is {3 * theirs:,.0f}/s."
        out.append("")
        out.append(line)

    out.append("")
    out.append("Differences that remain: idflow keeps its state in SQLite on disk (WAL) and logs a line per request;"
               " oidc-provider keeps it in its in-memory adapter and logs nothing. Both sign 2 JWTs per login"
               " (access token and id_token: a flow run for an authorization request issues no session JWTs of its own);"
               " an oidc-provider login takes one more round trip (the resume redirect).")

    # ---- what was compared
    out.append("")
    out.append("Tokens compared (one client_credentials access token from each; login tokens in results/latest.jsonl):")
    for (server, alg), s in sorted(samples.items(), key=lambda kv: (kv[0][1] != "RS256", kv[0][0] != "idflow")):
        h = s["header"]
        out.append(f"  {alg} {server}: header alg={h.get('alg')} typ={h.get('typ')}; claims {', '.join(s['claims'])}")
        if h.get("alg") != alg:
            problems.append(f"{server} {alg}: its access token is signed with {h.get('alg')}")
    for (server, alg, test), r in sorted(loads.items()):
        if test == "login":
            res = r.get("result") or {}
            at, it = res.get("access_token_header") or {}, res.get("id_token_header") or {}
            if at.get("alg") != alg or it.get("alg") != alg:
                problems.append(f"{server} {alg} login: tokens signed with {at.get('alg')} / {it.get('alg')}")
    if problems:
        out.append("")
        out.append("problems (these rows are not comparable):")
        out += [f"  - {p}" for p in problems]
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
