#!/usr/bin/env bash
# Installs what dist/build.sh built, the way a user would, with no Rust
# toolchain on PATH, and runs it:
#   - auditwheel: the wheel is manylinux_2_28 x86_64 and needs nothing else;
#   - a fresh venv pip-installs the wheel from dist/out (not the source
#     folder), checks that the stubs and py.typed came along, and runs the
#     README's Python quickstart and a provider round trip;
#   - npm: an empty app installs the packed `idflow` and
#     `idflow-linux-x64-gnu` tarballs (with no install scripts) and runs the
#     README's Node quickstart from CommonJS, ESM and TypeScript (tsc
#     --strict, then node), loading the module from the platform package;
#   - the static idflow binary: statically linked for x86-64, `idflow serve`
#     in an empty folder answers discovery and /health, and stops on SIGTERM;
#   - JVM: an app's Maven project (dist/consumer/jvm) that depends on
#     dev.idflow:idflow by its coordinates (from Maven's local repository,
#     where dist/build.sh installed it) runs a Kotlin test with no library
#     path set: sign and verify, then discovery and an authorization request
#     against the static binary's `idflow serve`.
# Usage: bash dist/check.sh
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="$ROOT/dist/out"
VENV="$ROOT/.venv-dist"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
VERSION=$(sed -n 's/^version = "\(.*\)"$/\1/p' "$ROOT/Cargo.toml" | head -n1)

wheel=$(ls "$OUT"/idflow-*-cp310-abi3-manylinux_2_28_x86_64.whl 2>/dev/null | head -n1 || true)
[ -n "$wheel" ] || { echo "no cp310-abi3 manylinux_2_28 x86_64 wheel in $OUT: run bash dist/build.sh"; exit 1; }
ls "$OUT"/idflow-*.tar.gz >/dev/null || { echo "no sdist in $OUT"; exit 1; }

echo "== auditwheel show $(basename "$wheel")"
"$VENV/bin/auditwheel" show "$wheel" | tee "$WORK/audit.txt"
tr -s ' \n' ' ' < "$WORK/audit.txt" | grep -q 'is consistent with the following platform tag: "manylinux_2_28_x86_64"' \
  || { echo "the wheel is not consistent with manylinux_2_28_x86_64"; exit 1; }

# A PATH without cargo or rustc: what a user of the wheel has.
CLEAN_PATH=""
for d in /usr/local/sbin /usr/local/bin /usr/sbin /usr/bin /sbin /bin; do
  [ -x "$d/cargo" ] || [ -x "$d/rustc" ] && continue
  CLEAN_PATH="${CLEAN_PATH:+$CLEAN_PATH:}$d"
done
PY=$(command -v python3)
env -i HOME="$WORK" PATH="$CLEAN_PATH" "$PY" -m venv "$WORK/venv"
run() { env -i HOME="$WORK" PATH="$WORK/venv/bin:$CLEAN_PATH" "$@"; }
if run sh -c 'command -v cargo || command -v rustc' >/dev/null; then
  echo "cargo or rustc is still on PATH"; exit 1
fi
echo "== pip install $(basename "$wheel") into a fresh venv (no Rust on PATH)"
run "$WORK/venv/bin/pip" install -q --disable-pip-version-check --no-index "$wheel"
cd "$WORK"
run "$WORK/venv/bin/python" - "$ROOT/README.md" <<'PY'
import importlib.util, json, pathlib, re, sys
import idflow

pkg = pathlib.Path(idflow.__file__).parent
assert (pkg / "py.typed").exists() and list(pkg.glob("*.pyi")), "stubs and py.typed are in the wheel"
assert "site-packages" in str(pkg), f"idflow comes from the installed wheel, not a checkout: {pkg}"

# The README's Python blocks, as written.
blocks = re.findall(r"```python\n(.*?)```", pathlib.Path(sys.argv[1]).read_text(encoding="utf-8"), re.S)
assert blocks
for block in blocks:
    exec(compile(block, "README.md", "exec"), {})

# A provider round trip: authorize -> hosted page -> flow API -> code -> tokens.
project = json.dumps({
    "projectId": "dist", "baseUrl": "http://127.0.0.1:9",
    "applications": [{"clientId": "app", "public": True, "redirectUris": ["http://127.0.0.1/cb"]}],
    "flows": [{"id": "in", "name": "In", "start": "ask", "steps": {
        "ask": {"type": "screen", "title": "Sign in", "inputs": [{"name": "email", "type": "email", "label": "Email", "required": True}],
                "interactions": [{"id": "go", "label": "Go", "next": "jwt"}]},
        "jwt": {"type": "generateJwt", "mode": "signUpOrIn", "next": "done"},
        "done": {"type": "end"}}}],
})
p = idflow.Provider(project)
pair = idflow.pkce.generate()
r = p.handle("GET", "/oauth2/v1/authorize?client_id=app&response_type=code&scope=openid&nonce=n&state=s"
             f"&redirect_uri=http%3A%2F%2F127.0.0.1%2Fcb&code_challenge={pair.challenge}&code_challenge_method=S256")
assert r.status == 302, r.body
browser = [c.split(";")[0] for k, c in r.headers if k.lower() == "set-cookie"][0]
request = r.header("location").split("request=")[1].split("&")[0]
j = lambda resp: json.loads(resp.body)
s = j(p.handle("POST", "/v1/flow/start", [("Content-Type", "application/json")], json.dumps({"request": request}).encode()))
d = j(p.handle("POST", "/v1/flow/next", [("Content-Type", "application/json")], json.dumps({
    "executionId": s["executionId"], "executionSecret": s["executionSecret"], "stepId": s["stepId"],
    "interactionId": "go", "input": {"email": "dist@example.com"}}).encode()))
done = p.handle("GET", d["redirect"]["url"], [("Cookie", browser)])
code = done.header("location").split("code=")[1].split("&")[0]
t = j(p.handle("POST", "/oauth2/v1/token", [("Content-Type", "application/x-www-form-urlencoded")],
      f"grant_type=authorization_code&code={code}&client_id=app&redirect_uri=http%3A%2F%2F127.0.0.1%2Fcb&code_verifier={pair.verifier}".encode()))
keys = idflow.KeySet.from_jwks(j(p.handle("GET", "/dist/.well-known/jwks.json")))
claims = idflow.jwt.verify(t["id_token"], keys, algorithms=["RS256"], issuer=p.issuer, audience=["app"])
assert claims["nonce"] == "n", claims
print("wheel ok:", pathlib.Path(idflow.__file__).parent)
PY
bin="$OUT/idflow-x86_64-unknown-linux-musl"
[ -x "$bin" ] || { echo "no static idflow binary in $OUT: run bash dist/build.sh"; exit 1; }
echo "== $(basename "$bin"): $(du -h "$bin" | cut -f1)"
run "$WORK/venv/bin/python" - "$bin" <<'PY'
import json, os, signal, socket, subprocess, sys, tempfile, time, urllib.request

binary = sys.argv[1]
with open(binary, "rb") as f:
    elf = f.read(64)
assert elf[:4] == b"\x7fELF" and elf[4] == 2 and int.from_bytes(elf[18:20], "little") == 62, "an x86-64 ELF"
out = subprocess.run(["ldd", binary], capture_output=True, text=True)
assert "not a dynamic executable" in out.stdout + out.stderr or "statically linked" in out.stdout + out.stderr, out
with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
empty = tempfile.mkdtemp()
base = f"http://127.0.0.1:{port}"
server = subprocess.Popen([binary, "serve", "--addr", f"127.0.0.1:{port}", "--base-url", base], cwd=empty,
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
try:
    for _ in range(100):
        try:
            health = json.load(urllib.request.urlopen(f"{base}/health", timeout=2))
            break
        except OSError:
            time.sleep(0.1)
    else:
        raise SystemExit("idflow serve did not answer /health")
    assert health == {"status": "ok"}, health
    meta = json.load(urllib.request.urlopen(f"{base}/local/.well-known/openid-configuration", timeout=5))
    assert meta["issuer"] == f"{base}/local", meta["issuer"]
    assert os.path.exists(os.path.join(empty, "idflow.db")), "the demo project's SQLite database is in the folder"
finally:
    server.send_signal(signal.SIGTERM)
    code = server.wait(timeout=10)
assert code == 0, f"idflow serve exited with {code} on SIGTERM"
print("static binary ok")
PY
# npm and Maven keep the user's HOME (their caches and registry settings);
# PATH still has no cargo or rustc.
runh() { env -i HOME="$HOME" PATH="$CLEAN_PATH" "$@"; }

echo "== npm: idflow-$VERSION.tgz and idflow-linux-x64-gnu-$VERSION.tgz into an empty app"
for f in "idflow-$VERSION.tgz" "idflow-linux-x64-gnu-$VERSION.tgz"; do
  [ -f "$OUT/$f" ] || { echo "no $f in $OUT: run bash dist/build.sh"; exit 1; }
done
app="$WORK/node-app"
mkdir "$app" && cd "$app"
printf '{ "name": "consumer", "version": "1.0.0", "private": true }\n' > package.json
# The other platforms' packages are optional dependencies that are not
# published from here: npm skips what it cannot find or cannot run.
runh npm install --no-audit --no-fund --loglevel=error --ignore-scripts \
  "$OUT/idflow-linux-x64-gnu-$VERSION.tgz" "$OUT/idflow-$VERSION.tgz" typescript@6.0.3 @types/node@20.19.9
if ls node_modules/idflow/*.node >/dev/null 2>&1; then echo "the idflow package carries a native module"; exit 1; fi
runh node "$ROOT/dist/consumer/node/quickstart.js" "$ROOT/README.md"
runh node quickstart.cjs && echo "CommonJS: ok"
runh node quickstart.mjs && echo "ESM: ok"
runh node_modules/.bin/tsc --strict --module nodenext --moduleResolution nodenext --target es2022 \
  --types node --outDir ts-out quickstart.mts
runh node ts-out/quickstart.mjs && echo "TypeScript: ok"

echo "== JVM: an app's Maven project that depends on dev.idflow:idflow:$VERSION"
port=$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
base="http://127.0.0.1:$port"
mkdir "$WORK/serve"
(cd "$WORK/serve" && exec "$bin" serve --addr "127.0.0.1:$port" --base-url "$base" >"$WORK/serve.log" 2>&1) &
server=$!
trap 'kill $server 2>/dev/null; rm -rf "$WORK"' EXIT
for _ in $(seq 100); do
  "$PY" -c "import urllib.request; urllib.request.urlopen('$base/health', timeout=1)" 2>/dev/null && break
  sleep 0.1
done
cp -r "$ROOT/dist/consumer/jvm" "$WORK/jvm-app"
(cd "$WORK/jvm-app" && runh IDFLOW_BASE="$base" mvn -B -ntp -q test -Didflow.version="$VERSION") \
  || { echo "the JVM consumer failed; idflow serve said:"; cat "$WORK/serve.log"; exit 1; }
echo "JVM consumer: ok"

echo "dist/check.sh: ok"
