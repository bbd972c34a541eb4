"""The several-servers benchmark's table and targets, from results/latest.jsonl
(written by tests/bench/several/run.sh)."""

import json
import sys


def load(path):
    rows = [json.loads(line) for line in open(path, encoding="utf-8") if line.strip()]
    meta = next((r for r in rows if r["kind"] == "meta"), {})
    return meta, [r for r in rows if r["kind"] in ("tokens", "logins")]


def summary(row):
    parts = [p for p in row["parts"] if p]
    if row["kind"] == "tokens":
        done = sum(p.get("requests", 0) for p in parts)
        rate = sum(p.get("rps", 0) for p in parts)
        errors = sum(p.get("non_2xx", 0) + p.get("socket_errors", 0) for p in parts)
    else:
        done = sum(p.get("logins", 0) for p in parts)
        rate = sum(p.get("logins_per_s", 0) for p in parts)
        errors = sum(p.get("errors", 0) for p in parts)
    p99 = max((p.get("p99_ms", 0) for p in parts), default=0)
    per = lambda s: (1000 * s / done) if done else float("nan")
    return {"rate": rate, "p99": p99, "done": done, "errors": errors,
            "server_ms": per(row.get("server_cpu_s", 0)), "pg_ms": per(row.get("pg_cpu_s", 0)),
            "ok": bool(parts) and len(parts) == row["servers"]}


def label(row):
    servers = f"{row['servers']} server" + ("s" if row["servers"] > 1 else "")
    store = {"sqlite": "SQLite", "postgres": "PostgreSQL", "hydra": "PostgreSQL"}[row["name"]]
    who = "Ory Hydra" if row["name"] == "hydra" else "idflow"
    return f"{who}, {store}, {servers}"


def main(path):
    meta, rows = load(path)
    print(f"idflow: {meta.get('idflow', '?')}; {meta.get('postgres', '?')}; {meta.get('cpus', '?')} CPUs; "
          f"{meta.get('seconds', '?')} s per measurement after {meta.get('warmup', '?')} s of warm-up")
    print()
    print("| test | alg | configuration | per s | p99 ms | CPU ms/op (servers) | CPU ms/op (PostgreSQL) | errors |")
    print("|---|---|---|---|---|---|---|---|")
    results = {}
    for r in rows:
        s = summary(r)
        results[(r["kind"], r["alg"], r["name"], r["servers"])] = s
        test = "client_credentials tokens" if r["kind"] == "tokens" else "logins"
        print(f"| {test} | {r['alg']} | {label(r)} | {s['rate']:.0f} | {s['p99']:.1f} | {s['server_ms']:.2f} | {s['pg_ms']:.2f} | {s['errors']} |")
    print()
    print("Targets:")
    def target(name, ok):
        print(f"- {'PASS' if ok else 'MISS'}: {name}")
    for alg in ("RS256", "ES256"):
        sqlite = results.get(("tokens", alg, "sqlite", 1))
        pg1 = results.get(("tokens", alg, "postgres", 1))
        pg3 = results.get(("tokens", alg, "postgres", 3))
        if sqlite and pg1:
            target(f"{alg}: PostgreSQL, one server, >= 0.7x SQLite's tokens/s ({pg1['rate']:.0f} vs {sqlite['rate']:.0f}: {pg1['rate'] / sqlite['rate']:.2f}x)",
                   pg1["rate"] >= 0.7 * sqlite["rate"])
        if sqlite and pg3:
            target(f"{alg}: three servers on PostgreSQL >= one server on SQLite ({pg3['rate']:.0f} vs {sqlite['rate']:.0f}: {pg3['rate'] / sqlite['rate']:.2f}x)",
                   pg3["rate"] >= sqlite["rate"])
        for key in (("tokens", alg, "sqlite", 1), ("tokens", alg, "postgres", 1), ("tokens", alg, "postgres", 3)):
            if key in results:
                s = results[key]
                target(f"{alg}: p99 <= 25 ms, {label({'name': key[2], 'servers': key[3]})} ({s['p99']:.1f} ms)", s["p99"] <= 25)
    hydra = results.get(("tokens", "RS256", "hydra", 1))
    pg1 = results.get(("tokens", "RS256", "postgres", 1))
    if hydra and pg1 and hydra["rate"] > 0:
        target(f"RS256: idflow >= 3x Ory Hydra's tokens/s, both one server on PostgreSQL ({pg1['rate']:.0f} vs {hydra['rate']:.0f}: {pg1['rate'] / hydra['rate']:.2f}x)",
               pg1["rate"] >= 3 * hydra["rate"])
    else:
        print("- n/a: Ory Hydra (not built or not run)")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "tests/bench/several/results/latest.jsonl")
