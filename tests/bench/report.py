"""Prints the benchmark table and the targets from the JSON lines of one run.

    python tests/bench/report.py [tests/bench/results/latest.jsonl]

One table per (alg, op): every lang/lib with ops/s, its ratio to the raw
aws-lc-rs primitive (the physical floor, from the Rust bench) and its ratio to
the fastest peer of its language (peers are every library but idflow; rows
marked cached, and rows whose strictness check failed, are not peers). Then the
targets of the benchmark issue, each with the measured value and PASS/MISS; a
target takes idflow's fastest way in that language (e.g. ``jwt.verify`` or a
``Verifier``) and names it.
Standard library only.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ORDER = [
    ("HS256", "sign"),
    ("HS256", "verify"),
    ("RS256", "sign"),
    ("RS256", "verify"),
    ("ES256", "sign"),
    ("ES256", "verify"),
    ("EdDSA", "sign"),
    ("EdDSA", "verify"),
    ("RS256-jwks3", "verify"),
]
LANGS = ["rust", "python", "node"]
FLOOR = ("rust", "aws-lc-rs")
ASYM = ["RS256", "ES256", "EdDSA"]


def load(path: Path):
    rows, versions = [], {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            r = json.loads(line)
        except ValueError:
            continue
        if "version" in r and "op" not in r:
            versions[(r.get("lang"), r.get("lib"))] = r["version"]
        elif "op" in r:
            rows.append(r)
    return rows, versions


def is_idflow(r) -> bool:
    return r["lib"] == "idflow" or r["lib"].startswith("idflow (")


def is_peer(r) -> bool:
    return (
        not is_idflow(r)
        and r["lang"] != "rust"
        and r.get("ops") is not None
        and "cache" not in r["lib"]
        and "cached" not in (r.get("note") or "")
        and "WARNING" not in (r.get("note") or "")
    )


def fmt_ops(v) -> str:
    return "n/a" if v is None else f"{v:,.0f}"


def fmt_ratio(v) -> str:
    return "-" if v is None else f"{v:.2f}x"


class Report:
    def __init__(self, rows):
        self.rows = rows

    def get(self, lang, lib, alg, op):
        for r in self.rows:
            if (r["lang"], r["lib"], r["alg"], r["op"]) == (lang, lib, alg, op):
                return r.get("ops")
        return None

    def best_idflow(self, lang, alg, op):
        """(ops, lib) of the fastest idflow way (e.g. jwt.verify or a Verifier)."""
        ours = [r for r in self.rows if r["lang"] == lang and r["alg"] == alg and r["op"] == op
                and is_idflow(r) and r.get("ops") is not None and "WARNING" not in (r.get("note") or "")]
        if not ours:
            return None, None
        b = max(ours, key=lambda r: r["ops"])
        return b["ops"], b["lib"]

    def floor(self, alg, op):
        return self.get(*FLOOR, alg, op)

    def best_peer(self, lang, alg, op):
        peers = [r for r in self.rows if r["lang"] == lang and r["alg"] == alg and r["op"] == op and is_peer(r)]
        if not peers:
            return None, None
        b = max(peers, key=lambda r: r["ops"])
        return b["ops"], b["lib"]


def main() -> int:
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parent / "results" / "latest.jsonl"
    rows, versions = load(path)
    rep = Report(rows)
    notes: list[str] = []

    def note_ref(text: str) -> str:
        if not text:
            return ""
        if text not in notes:
            notes.append(text)
        return f"[{notes.index(text) + 1}]"

    out = []
    out.append(f"idflow benchmark: {len(rows)} rows from {path}")
    if versions:
        out.append("versions: " + ", ".join(f"{lang}/{lib} {v}" for (lang, lib), v in sorted(versions.items())))
    out.append("ops/s = operations per second (higher is better); x floor = ops / raw aws-lc-rs primitive;")
    out.append("x best peer = ops / fastest uncached peer in the same language (* marks that peer).")
    keys = ORDER + sorted({(r["alg"], r["op"]) for r in rows} - set(ORDER))
    for alg, op in keys:
        sel = [r for r in rows if r["alg"] == alg and r["op"] == op]
        if not sel:
            continue
        floor = rep.floor(alg, op)
        out.append("")
        out.append(f"== {alg} {op} ==" + (f"   (floor: aws-lc-rs {fmt_ops(floor)} ops/s)" if floor else ""))
        out.append(f"  {'lang':<7} {'library':<24} {'ops/s':>12} {'x floor':>8} {'x best peer':>12}  note")

        def key(r):
            return (LANGS.index(r["lang"]) if r["lang"] in LANGS else 9, r.get("ops") is None, -(r.get("ops") or 0))

        for r in sorted(sel, key=key):
            ops = r.get("ops")
            best, best_lib = rep.best_peer(r["lang"], alg, op)
            xf = ops / floor if ops is not None and floor else None
            xp = ops / best if ops is not None and best and r["lang"] != "rust" else None
            mark = "*" if r["lib"] == best_lib and is_peer(r) else " "
            out.append(
                f"  {r['lang']:<7} {r['lib'] + mark:<24} {fmt_ops(ops):>12} {fmt_ratio(xf):>8} {fmt_ratio(xp):>12}  {note_ref(r.get('note') or '')}"
            )

    # ---- targets
    out.append("")
    out.append("== targets (issue: Benchmark) ==")
    results = []

    def target(label, value, need, detail):
        if value is None:
            status = "MISS (not measured)"
        else:
            status = "PASS" if value >= need else "MISS"
        results.append(status.startswith("PASS"))
        v = "n/a" if value is None else f"{value:.2f}x"
        out.append(f"  {status:<4} {label:<58} {v:>7} (need >= {need:.2f}x)  {detail}")

    for lang, spec in (("python", [("HS256", 1.2), ("RS256", 1.1), ("ES256", 1.1), ("EdDSA", 1.1)]),
                       ("node", [("HS256", 1.3), ("RS256", 1.3), ("ES256", 1.3), ("EdDSA", 1.3)])):
        for alg, need in spec:
            ours, our_lib = rep.best_idflow(lang, alg, "verify")
            best, best_lib = rep.best_peer(lang, alg, "verify")
            ratio = ours / best if ours is not None and best else None
            target(
                f"{lang} idflow {alg} verify vs fastest {lang} peer",
                ratio,
                need,
                f"{our_lib} {fmt_ops(ours)} vs {best_lib} {fmt_ops(best)}",
            )
    for lang in ("python", "node"):
        for op, need in (("verify", 0.85), ("sign", 0.75)):
            for alg in ASYM:
                ours, our_lib = rep.best_idflow(lang, alg, op)
                floor = rep.floor(alg, op)
                ratio = ours / floor if ours is not None and floor else None
                target(
                    f"{lang} idflow {alg} {op} vs raw aws-lc-rs",
                    ratio,
                    need,
                    f"{our_lib} {fmt_ops(ours)} vs raw {fmt_ops(floor)}",
                )
    passed = sum(results)
    out.append(f"  targets: {passed} passed, {len(results) - passed} missed")

    out.append("")
    out.append("== for information (no target) ==")
    for lang in ("rust", "python", "node"):
        for alg in ["HS256"] + ASYM + ["RS256-jwks3"]:
            for op in ("verify", "sign"):
                ours, our_lib = rep.best_idflow(lang, alg, op)
                floor = rep.floor(alg, op)
                if ours is None or not floor:
                    continue
                line = f"  {lang} {our_lib} {alg} {op}: {ours / floor:.2f}x floor"
                if lang != "rust":
                    best, best_lib = rep.best_peer(lang, alg, op)
                    if best:
                        line += f", {ours / best:.2f}x {best_lib}"
                out.append(line)

    if notes:
        out.append("")
        out.append("notes:")
        for i, n in enumerate(notes, 1):
            out.append(f"  [{i}] {n}")
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
