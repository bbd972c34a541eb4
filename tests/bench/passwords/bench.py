"""Password hashing and sign-in cost: idflow against argon2-cffi at the same
Argon2id parameters (OWASP's: 19456 KiB, 2 passes, 1 lane, unless
BENCH_ARGON2 = "memory_kib,iterations,parallelism"), password sign-ins
through a FlowEngine (latency, and throughput with BENCH_THREADS threads),
and password sign-ins per second through `idflow serve` over HTTP (the
binary at IDFLOW_BIN, default target/x86_64-unknown-linux-gnu/release/idflow;
skipped when it is missing).

Run with release builds (tests/bench/run.sh makes .venv-bench; `cargo build
--release -p idflow-cli` the binary), on an otherwise idle machine:
    .venv-bench/bin/python tests/bench/passwords/bench.py
Prints one table; the target is idflow's hash rate ≥ 0.9× argon2-cffi's.
"""

import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import argon2

import idflow

SECONDS = float(os.environ.get("BENCH_SECONDS", "2"))
THREADS = int(os.environ.get("BENCH_THREADS", str(os.cpu_count() or 2)))
M, T, P = (int(x) for x in os.environ.get("BENCH_ARGON2", "19456,2,1").split(","))
PASSWORD = "correct horse battery staple"


def rate(fn):
    """Best of three windows, in operations per second."""
    best = 0.0
    for _ in range(3):
        n, start = 0, time.perf_counter()
        while (elapsed := time.perf_counter() - start) < SECONDS / 3:
            fn()
            n += 1
        best = max(best, n / elapsed)
    return best


def main():
    ph = argon2.PasswordHasher(time_cost=T, memory_cost=M, parallelism=P)
    ours = idflow.password.hash(PASSWORD, memory_kib=M, iterations=T, parallelism=P)
    theirs = ph.hash(PASSWORD)
    assert ph.verify(ours, PASSWORD) and idflow.password.verify(PASSWORD, theirs), "each checks the other's hash"
    rows = {
        "hash idflow": rate(lambda: idflow.password.hash(PASSWORD, memory_kib=M, iterations=T, parallelism=P)),
        "hash argon2-cffi": rate(lambda: ph.hash(PASSWORD)),
        "verify idflow": rate(lambda: idflow.password.verify(PASSWORD, ours)),
        "verify argon2-cffi": rate(lambda: ph.verify(theirs, PASSWORD)),
    }

    flows = os.path.join(os.path.dirname(__file__), "..", "..", "flows")
    project = json.load(open(os.path.join(flows, "password-project.json")))
    project["passwords"]["hashing"] = {"memoryKiB": M, "iterations": T, "parallelism": P}
    project["passwords"]["lockout"] = {"maxFailures": 1000}
    engine = idflow.FlowEngine(json.dumps(project), key=idflow.Key.generate("ES256"), base_dir=flows)
    engine.set_password(engine.create_user("bench@example.com")["userId"], PASSWORD)

    def sign_in():
        s = engine.start("password")
        r = engine.next(s["executionId"], "welcome", "signIn", {"email": "bench@example.com", "password": PASSWORD})
        assert r["status"] == "completed", r

    latencies = []
    end = time.perf_counter() + SECONDS
    while time.perf_counter() < end:
        t0 = time.perf_counter()
        sign_in()
        latencies.append(time.perf_counter() - t0)
    done = [0]
    lock = threading.Lock()
    stop = time.perf_counter() + SECONDS

    def worker():
        while time.perf_counter() < stop:
            sign_in()
            with lock:
                done[0] += 1

    threads = [threading.Thread(target=worker) for _ in range(THREADS)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    throughput = done[0] / (time.perf_counter() - t0)

    served = serve_rate(project, flows)

    ratio = rows["hash idflow"] / rows["hash argon2-cffi"]
    print(f"Argon2id m={M} KiB, t={T}, p={P}; {os.cpu_count()} CPUs; Python {sys.version.split()[0]}")
    print("| operation | ops/s |")
    print("|---|---|")
    for k, v in rows.items():
        print(f"| {k} | {v:,.1f} |")
    print(f"| password sign-in (FlowEngine start + next), p50 latency | {statistics.median(latencies) * 1000:.1f} ms |")
    print(f"| password sign-ins/s, {THREADS} threads | {throughput:,.1f} |")
    if served is not None:
        print(f"| password sign-ins/s through idflow serve (HTTP flow API), {THREADS} clients | {served:,.1f} |")
    print(f"hash rate idflow / argon2-cffi: {ratio:.2f}× (target ≥ 0.9×): {'PASS' if ratio >= 0.9 else 'MISS'}")


def serve_rate(project, flows):
    """Sign-ins/s through `idflow serve`: POST /v1/flow/start, then /v1/flow/next."""
    root = os.path.join(os.path.dirname(__file__), "..", "..", "..")
    binary = os.environ.get("IDFLOW_BIN", os.path.join(root, "target", "x86_64-unknown-linux-gnu", "release", "idflow"))
    if not os.path.exists(binary):
        print(f"# {binary} is missing: no idflow serve row", file=sys.stderr)
        return None
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    work = tempfile.mkdtemp(prefix="idflow-bench-")
    doc = dict(project, baseUrl=f"http://127.0.0.1:{port}", rateLimits={"enabled": False})
    doc["flows"] = [os.path.abspath(os.path.join(flows, f)) for f in project["flows"]]
    config = os.path.join(work, "project.json")
    with open(config, "w") as f:
        json.dump(doc, f)
    server = subprocess.Popen([binary, "serve", "--config", config, "--db", os.path.join(work, "idflow.db"), "--addr", f"127.0.0.1:{port}"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)

        def post(conn, path, body):
            conn.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
            return json.loads(conn.getresponse().read())

        def answer(conn, interaction):
            s = post(conn, "/v1/flow/start", {"flowId": "password"})
            r = post(conn, "/v1/flow/next", {"executionId": s["executionId"], "executionSecret": s["executionSecret"], "stepId": "welcome",
                                             "interactionId": interaction, "input": {"email": "bench@example.com", "password": PASSWORD}})
            assert r["status"] == "completed", r

        answer(http.client.HTTPConnection("127.0.0.1", port), "signUp")
        done = [0]
        lock = threading.Lock()
        stop = time.perf_counter() + SECONDS

        def worker():
            conn = http.client.HTTPConnection("127.0.0.1", port)
            while time.perf_counter() < stop:
                answer(conn, "signIn")
                with lock:
                    done[0] += 1

        threads = [threading.Thread(target=worker) for _ in range(THREADS)]
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return done[0] / (time.perf_counter() - t0)
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
