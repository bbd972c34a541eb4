"""`idflow serve` of a built binary, in an empty folder, for dist/check.sh.

    python3 dist/consumer/serve_smoke.py BINARY [RUNNER...]

RUNNER runs a foreign binary (e.g. qemu-aarch64). The server must answer
/health and the demo project's discovery, keep its SQLite database in the
folder, and exit 0 on SIGTERM.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

binary, runner = os.path.abspath(sys.argv[1]), sys.argv[2:]
with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
empty = tempfile.mkdtemp()
base = f"http://127.0.0.1:{port}"
server = subprocess.Popen([*runner, binary, "serve", "--addr", f"127.0.0.1:{port}", "--base-url", base], cwd=empty,
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
try:
    for _ in range(300):
        try:
            health = json.load(urllib.request.urlopen(f"{base}/health", timeout=2))
            break
        except OSError:
            time.sleep(0.1)
    else:
        raise SystemExit("idflow serve did not answer /health")
    assert health == {"status": "ok"}, health
    meta = json.load(urllib.request.urlopen(f"{base}/local/.well-known/openid-configuration", timeout=10))
    assert meta["issuer"] == f"{base}/local", meta["issuer"]
    assert os.path.exists(os.path.join(empty, "idflow.db")), "the demo project's SQLite database is in the folder"
finally:
    server.send_signal(signal.SIGTERM)
    code = server.wait(timeout=20)
assert code == 0, f"idflow serve exited with {code} on SIGTERM"
print(f"{os.path.basename(binary)}: idflow serve ok" + (f" (under {' '.join(runner)})" if runner else ""))
