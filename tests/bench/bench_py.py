"""Python JWT benchmark: idflow against the Python peers.

    python bench_py.py --gen-keys DIR   # keys (PEM + JWK) and the shared token set, made with idflow
    python bench_py.py --keys DIR       # the benchmark: one JSON object per line on stdout

Each row is ``{"lang":"python","lib":..,"alg":..,"op":"sign"|"verify","ops":float|null,"note":..}``.
Every verifier checks the signature, ``exp``, ``iss`` and ``aud`` (each library is
first shown to refuse a token with a bad signature, a wrong ``iss``, a wrong ``aud``
and a past ``exp``); keys are parsed once outside the timed loop wherever the
library allows it; the timed loop cycles over the same distinct tokens (distinct
``jti``) for every library, so no result cache can serve a repeated token; the
rate is the best of five equal windows of the ~1 s measurement. A peer
that is missing, or does not support an algorithm, gets a row with ``"ops": null``
and the reason in ``note``. Run by ``tests/bench/run.sh``.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import http.server
import io
import json
import os
import sys
import threading
import time
import traceback
import warnings
from pathlib import Path
from time import perf_counter

warnings.simplefilter("ignore")

ISS = "https://issuer.idflow.test/Pbench"
AUD = "idflow-bench"
PROJECT_ID = "Pbench"  # Descope checks iss against its project id (last path segment)
ALGS = ["HS256", "RS256", "ES256", "EdDSA"]
JWKS3 = "RS256-jwks3"
SECONDS = float(os.environ.get("BENCH_SECONDS", "1.0"))
N_TOKENS = int(os.environ.get("BENCH_TOKENS", "2000"))
BATCH = 50
WINDOWS = 5  # timed windows per measurement; the best is reported


def b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def make_claims(i: int, now: int, **over) -> dict:
    c = {
        "iss": ISS,
        "sub": f"user-{i % 97}",
        "aud": AUD,
        "iat": now,
        "exp": now + 3600,
        "jti": f"jti-{i:08d}",
    }
    c.update(over)
    return c


# ---------------------------------------------------------------- key + token generation


def gen_keys(out: Path) -> None:
    """Keys and the token set for every language, all made by idflow."""
    import idflow

    out.mkdir(parents=True, exist_ok=True)
    now = int(time.time())
    meta: dict = {"iss": ISS, "aud": AUD, "project_id": PROJECT_ID, "now": now, "algs": {}}
    tokens: dict = {}
    bad: dict = {}

    def write(name: str, text: str) -> None:
        (out / name).write_text(text)

    signers = {}
    for alg in ALGS:
        if alg == "HS256":
            secret = os.urandom(32)
            key = idflow.Key.from_secret(secret)
            jwk = {"kty": "oct", "k": b64u(secret), "kid": key.kid, "alg": "HS256"}
            key = idflow.Key.from_jwk(jwk)
            write("HS256.secret.b64u", b64u(secret))
            write("HS256.jwk.json", json.dumps(jwk))
            meta["algs"][alg] = {"kid": key.kid, "secret": "HS256.secret.b64u", "jwk": "HS256.jwk.json"}
        else:
            key = idflow.Key.generate(alg)
            pub = key.public_key()
            write(f"{alg}.private.pem", key.to_pem(True))
            write(f"{alg}.public.pem", pub.to_pem(False))
            write(f"{alg}.private.jwk.json", json.dumps(key.to_jwk(True)))
            write(f"{alg}.public.jwk.json", json.dumps(pub.to_jwk(False)))
            meta["algs"][alg] = {
                "kid": key.kid,
                "private_pem": f"{alg}.private.pem",
                "public_pem": f"{alg}.public.pem",
                "private_jwk": f"{alg}.private.jwk.json",
                "public_jwk": f"{alg}.public.jwk.json",
            }
        signers[alg] = key
        tokens[alg] = [idflow.jwt.sign(make_claims(i, now), key) for i in range(N_TOKENS)]
        good = tokens[alg][0]
        head, _, sig = good.rpartition(".")
        flipped = ("A" if sig[0] != "A" else "B") + sig[1:]
        bad[alg] = {
            "sig": f"{head}.{flipped}",
            "iss": idflow.jwt.sign(make_claims(0, now, iss="https://issuer.idflow.test/Pother"), key),
            "aud": idflow.jwt.sign(make_claims(0, now, aud="someone-else"), key),
            "exp": idflow.jwt.sign(make_claims(0, now, iat=now - 7200, exp=now - 3600), key),
        }

    # RS256 against a 3-key JWKS: token i is signed by key i % 3 (distinct kids).
    keys3 = [idflow.Key.generate("RS256") for _ in range(3)]
    for n, k in enumerate(keys3):
        write(f"jwks3-{n}.private.pem", k.to_pem(True))
        write(f"jwks3-{n}.public.pem", k.public_key().to_pem(False))
    jwks = idflow.KeySet([k.public_key() for k in keys3]).to_jwks()
    write("jwks3.public.json", json.dumps(jwks))
    meta["jwks3"] = {
        "kids": [k.kid for k in keys3],
        "jwks": "jwks3.public.json",
        "public_pems": [f"jwks3-{n}.public.pem" for n in range(3)],
        "private_pems": [f"jwks3-{n}.private.pem" for n in range(3)],
    }
    tokens[JWKS3] = [idflow.jwt.sign(make_claims(i, now), keys3[i % 3]) for i in range(N_TOKENS)]
    k0 = keys3[0]
    t0 = tokens[JWKS3][0]
    head, _, sig = t0.rpartition(".")
    bad[JWKS3] = {
        "sig": f"{head}.{('A' if sig[0] != 'A' else 'B') + sig[1:]}",
        "iss": idflow.jwt.sign(make_claims(0, now, iss="https://issuer.idflow.test/Pother"), k0),
        "aud": idflow.jwt.sign(make_claims(0, now, aud="someone-else"), k0),
        "exp": idflow.jwt.sign(make_claims(0, now, iat=now - 7200, exp=now - 3600), k0),
    }
    write("meta.json", json.dumps(meta, indent=1))
    write("tokens.json", json.dumps({"tokens": tokens, "bad": bad}))


# ---------------------------------------------------------------- harness


def emit(lib: str, alg: str, op: str, ops, note: str = "") -> None:
    row = {"lang": "python", "lib": lib, "alg": alg, "op": op, "ops": None if ops is None else round(ops, 1), "note": note}
    print(json.dumps(row), flush=True)


def measure(fn, items: list) -> float:
    """ops/s of fn(item) cycling over items for ~SECONDS of wall clock after a
    warm-up: the best of WINDOWS equal windows (a burst of load from another
    process costs one window, not the result)."""
    n = len(items)
    batches = [items[j : j + BATCH] for j in range(0, n - n % BATCH or n, BATCH)]
    nb = len(batches)
    warm_end = perf_counter() + max(0.05, SECONDS * 0.15)
    b = 0
    while perf_counter() < warm_end:
        for it in batches[b]:
            fn(it)
        b = (b + 1) % nb
    best = 0.0
    for _ in range(WINDOWS):
        count = 0
        start = perf_counter()
        end = start + SECONDS / WINDOWS
        while True:
            batch = batches[b]
            for it in batch:
                fn(it)
            count += len(batch)
            b = (b + 1) % nb
            now = perf_counter()
            if now >= end:
                best = max(best, count / (now - start))
                break
    return best


class Ctx:
    def __init__(self, keydir: Path):
        self.dir = keydir
        self.meta = json.loads((keydir / "meta.json").read_text())
        t = json.loads((keydir / "tokens.json").read_text())
        self.tokens: dict = t["tokens"]
        self.bad: dict = t["bad"]
        now = int(time.time())
        self.claims = [make_claims(i, now) for i in range(N_TOKENS)]

    def text(self, name: str) -> str:
        return (self.dir / name).read_text()

    def a(self, alg: str) -> dict:
        return self.meta["algs"][alg]

    def secret(self) -> bytes:
        s = self.text(self.a("HS256")["secret"])
        return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))

    def jwk(self, alg: str, private: bool = False) -> dict:
        a = self.a(alg)
        if alg == "HS256":
            return json.loads(self.text(a["jwk"]))
        return json.loads(self.text(a["private_jwk" if private else "public_jwk"]))

    def pem(self, alg: str, private: bool = False) -> str:
        return self.text(self.a(alg)["private_pem" if private else "public_pem"])

    def kid(self, alg: str) -> str:
        return self.a(alg)["kid"]

    def jwks3(self) -> dict:
        return json.loads(self.text(self.meta["jwks3"]["jwks"]))

    def jwks3_pems(self) -> dict:
        m = self.meta["jwks3"]
        return {kid: self.text(p) for kid, p in zip(m["kids"], m["public_pems"])}


def check_strict(verify, bad: dict) -> str:
    """'' when verify refuses every bad token, else a warning for the note."""
    accepted = []
    for what, tok in bad.items():
        try:
            verify(tok)
        except Exception:
            continue
        accepted.append(what)
    return f"WARNING: accepted a token with a bad {'/'.join(accepted)}" if accepted else ""


def run_verify(ctx: Ctx, lib: str, alg: str, verify, note: str = "") -> None:
    tokens = ctx.tokens[alg]
    try:
        for t in tokens:  # every token must verify (and warms caches of parsed keys)
            verify(t)
        warn = check_strict(verify, ctx.bad[alg])
        ops = measure(verify, tokens)
        emit(lib, alg, "verify", ops, "; ".join(x for x in (note, warn) if x))
    except Exception as e:  # never crash the run
        emit(lib, alg, "verify", None, f"failed: {type(e).__name__}: {str(e)[:160]}")


def run_sign(ctx: Ctx, lib: str, alg: str, sign, check, note: str = "") -> None:
    try:
        tok = sign(ctx.claims[0])
        check(tok if isinstance(tok, str) else tok.decode())  # the output must verify with idflow
        ops = measure(sign, ctx.claims)
        emit(lib, alg, "sign", ops, note)
    except Exception as e:
        emit(lib, alg, "sign", None, f"failed: {type(e).__name__}: {str(e)[:160]}")


def unsupported(lib: str, alg: str, op: str, why: str) -> None:
    emit(lib, alg, op, None, why)


# ---------------------------------------------------------------- libraries
# Each bench_<lib>(ctx, checker) emits its rows. `checker(alg)` returns an
# idflow verifier used to check that a peer's signed tokens are valid.


def bench_idflow(ctx: Ctx, checker) -> None:
    import idflow

    # jwt.Verifier (key and options bound once) is measured too where this idflow has it.
    Verifier = getattr(idflow.jwt, "Verifier", None)

    for alg in ALGS:
        priv = idflow.Key.from_jwk(ctx.jwk(alg, private=True))
        pub = priv if alg == "HS256" else idflow.Key.from_jwk(ctx.jwk(alg))
        algs = [alg]
        run_sign(ctx, "idflow", alg, lambda c, k=priv: idflow.jwt.sign(c, k), checker(alg))
        run_verify(
            ctx, "idflow", alg, lambda t, k=pub, a=algs: idflow.jwt.verify(t, k, algorithms=a, issuer=ISS, audience=AUD),
            "jwt.verify(token, key, ...)",
        )
        if Verifier is not None:
            v = Verifier(pub, algorithms=algs, issuer=ISS, audience=AUD)
            run_verify(ctx, "idflow (Verifier)", alg, v.verify, "jwt.Verifier(key, ...).verify(token)")
    ks = idflow.KeySet.from_jwks(ctx.jwks3())
    run_verify(
        ctx, "idflow", JWKS3, lambda t: idflow.jwt.verify(t, ks, algorithms=["RS256"], issuer=ISS, audience=AUD),
        "jwt.verify with a KeySet",
    )
    if Verifier is not None:
        v = Verifier(ks, algorithms=["RS256"], issuer=ISS, audience=AUD)
        run_verify(ctx, "idflow (Verifier)", JWKS3, v.verify, "jwt.Verifier(KeySet, ...).verify(token)")


def bench_pyjwt(ctx: Ctx, checker) -> None:
    import jwt

    for alg in ALGS:
        if alg == "HS256":
            sk = vk = ctx.secret()
        else:
            sk = jwt.PyJWK(ctx.jwk(alg, private=True)).key  # cryptography key objects, parsed once
            vk = jwt.PyJWK(ctx.jwk(alg)).key
        kid = ctx.kid(alg)
        algs = [alg]
        run_sign(ctx, "pyjwt", alg, lambda c, k=sk, a=alg: jwt.encode(c, k, algorithm=a, headers={"kid": kid}), checker(alg))
        run_verify(ctx, "pyjwt", alg, lambda t, k=vk, a=algs: jwt.decode(t, k, algorithms=a, issuer=ISS, audience=AUD))
    jwks = jwt.PyJWKSet.from_dict(ctx.jwks3())

    def v3(t):
        key = jwks[jwt.get_unverified_header(t)["kid"]].key
        return jwt.decode(t, key, algorithms=["RS256"], issuer=ISS, audience=AUD)

    run_verify(ctx, "pyjwt", JWKS3, v3, "PyJWKSet[kid] from get_unverified_header")


def bench_joserfc(ctx: Ctx, checker) -> None:
    from joserfc import jwt
    from joserfc.jwk import KeySet, OctKey, import_key

    registry = jwt.JWTClaimsRegistry(
        iss={"essential": True, "value": ISS}, aud={"essential": True, "value": AUD}, exp={"essential": True}
    )
    for alg in ALGS:
        if alg == "HS256":
            sk = vk = OctKey.import_key(ctx.secret())
        else:
            sk = import_key(ctx.jwk(alg, private=True))
            vk = import_key(ctx.jwk(alg))
        header = {"alg": alg, "kid": ctx.kid(alg)}
        algs = [alg]

        def verify(t, k=vk, a=algs):
            tok = jwt.decode(t, k, algorithms=a)
            registry.validate(tok.claims)
            return tok.claims

        run_sign(ctx, "joserfc", alg, lambda c, k=sk, h=header, a=algs: jwt.encode(h, c, k, algorithms=a), checker(alg))
        run_verify(ctx, "joserfc", alg, verify)
    ks = KeySet.import_key_set(ctx.jwks3())

    def v3(t):
        tok = jwt.decode(t, ks, algorithms=["RS256"])
        registry.validate(tok.claims)
        return tok.claims

    run_verify(ctx, "joserfc", JWKS3, v3, "KeySet (kid lookup)")


def bench_authlib(ctx: Ctx, checker) -> None:
    from authlib.jose import JsonWebKey, JsonWebToken

    opts = {
        "iss": {"essential": True, "value": ISS},
        "aud": {"essential": True, "value": AUD},
        "exp": {"essential": True},
    }
    for alg in ALGS:
        jwt = JsonWebToken([alg])
        sk = JsonWebKey.import_key(ctx.jwk(alg, private=True))
        vk = sk if alg == "HS256" else JsonWebKey.import_key(ctx.jwk(alg))
        header = {"alg": alg, "kid": ctx.kid(alg)}

        def verify(t, k=vk, j=jwt):
            claims = j.decode(t, k, claims_options=opts)
            claims.validate()
            return claims

        run_sign(ctx, "authlib", alg, lambda c, k=sk, h=header, j=jwt: j.encode(h, c, k), checker(alg))
        run_verify(ctx, "authlib", alg, verify)
    jwt = JsonWebToken(["RS256"])
    ks = JsonWebKey.import_key_set(ctx.jwks3())

    def v3(t):
        claims = jwt.decode(t, ks, claims_options=opts)
        claims.validate()
        return claims

    run_verify(ctx, "authlib", JWKS3, v3, "KeySet (kid lookup)")


class _JwksServer:
    """A loopback JWKS endpoint (for SDKs whose key set comes only by HTTP)."""

    def __init__(self, body: bytes):
        class H(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()


def bench_descope(ctx: Ctx, checker) -> None:
    from descope import DescopeClient

    why_sign = "the SDK does not sign JWTs (the hosted platform signs session tokens)"
    note = "validate_session, public key given locally; SDK checks sig+exp+aud, iss compared by the bench (SDK skips it)"
    for alg in ALGS:
        unsupported("descope", alg, "sign", why_sign)
        if alg == "HS256":
            unsupported("descope", alg, "verify", "session tokens are asymmetric: the SDK validates with a public key only")
            continue
        client = DescopeClient(project_id=PROJECT_ID, public_key=ctx.jwk(alg))

        def verify(t, c=client):
            res = c.validate_session(t, audience=AUD)
            if res["iss"] != ISS:
                raise ValueError("iss")
            return res

        run_verify(ctx, "descope", alg, verify, note)
    srv = _JwksServer(json.dumps(ctx.jwks3()).encode())
    try:
        client = DescopeClient(project_id=PROJECT_ID, base_url=srv.url)

        def v3(t):
            res = client.validate_session(t, audience=AUD)
            if res["iss"] != ISS:
                raise ValueError("iss")
            return res

        run_verify(ctx, "descope", JWKS3, v3, "key set fetched once from a loopback JWKS, then cached by kid; " + note)
    finally:
        srv.close()


def bench_oxyjwt(ctx: Ctx, checker) -> None:
    import oxyjwt

    loaders = {"RS256": "rsa", "ES256": "ec", "EdDSA": "ed"}
    for alg in ALGS:
        if alg == "HS256":
            sk = oxyjwt.EncodingKey.from_secret(ctx.secret())
            vk = oxyjwt.DecodingKey.from_secret(ctx.secret())
        else:
            kind = loaders[alg]
            sk = getattr(oxyjwt.EncodingKey, f"from_{kind}_pem")(ctx.pem(alg, private=True))
            vk = getattr(oxyjwt.DecodingKey, f"from_{kind}_pem")(ctx.pem(alg))
        headers = {"kid": ctx.kid(alg)}
        algs = [alg]
        run_sign(ctx, "oxyjwt", alg, lambda c, k=sk, a=alg: oxyjwt.encode(c, k, algorithm=a, headers=headers), checker(alg))
        run_verify(ctx, "oxyjwt", alg, lambda t, k=vk, a=algs: oxyjwt.decode(t, k, algorithms=a, issuer=ISS, audience=AUD))
    keys = {kid: oxyjwt.DecodingKey.from_rsa_pem(pem) for kid, pem in ctx.jwks3_pems().items()}

    def v3(t):
        key = keys[oxyjwt.get_unverified_header(t)["kid"]]
        return oxyjwt.decode(t, key, algorithms=["RS256"], issuer=ISS, audience=AUD)

    run_verify(ctx, "oxyjwt", JWKS3, v3, "DecodingKey by kid from get_unverified_header")


def bench_pyjwt_rs(ctx: Ctx, checker) -> None:
    import jwt_rs

    note = "PEM bytes, parsed once into its cached Rust key handle"
    for alg in ALGS:
        if alg == "HS256":
            sk = vk = ctx.secret()
        else:
            sk = ctx.pem(alg, private=True).encode()
            vk = ctx.pem(alg).encode()
        kid = ctx.kid(alg)
        algs = [alg]
        run_sign(
            ctx, "pyjwt-rs", alg, lambda c, k=sk, a=alg: jwt_rs.encode(c, k, algorithm=a, headers={"kid": kid}), checker(alg), note
        )
        run_verify(ctx, "pyjwt-rs", alg, lambda t, k=vk, a=algs: jwt_rs.decode(t, k, algorithms=a, issuer=ISS, audience=AUD), note)
    pems = {kid: pem.encode() for kid, pem in ctx.jwks3_pems().items()}

    def v3(t):
        key = pems[jwt_rs.get_unverified_header(t)["kid"]]
        return jwt_rs.decode(t, key, algorithms=["RS256"], issuer=ISS, audience=AUD)

    run_verify(ctx, "pyjwt-rs", JWKS3, v3, "PEM by kid from get_unverified_header; " + note)


def bench_webtoken(ctx: Ctx, checker) -> None:
    with contextlib.redirect_stdout(io.StringIO()):
        import webtoken
        import webtoken.webtoken as wt
    rust = wt.rust_lib
    PyJWK = rust.api_jwk.PyJWK
    sign_note = "rust encode() called directly: webtoken.encode() prints 'fpoo' on every call (0.5.0 bug)"
    for alg in ALGS:
        if alg == "HS256":
            sk = vk = ctx.secret()
            vnote = ""
        else:
            sk = PyJWK(ctx.jwk(alg, private=True), alg)
            vk = PyJWK(ctx.jwk(alg), alg)
            vnote = "PyJWK parsed once"
        headers = {"kid": ctx.kid(alg)}
        algs = [alg]
        run_sign(ctx, "webtoken", alg, lambda c, k=sk, a=alg: rust.encode(c, k, a, headers), checker(alg), sign_note)
        run_verify(ctx, "webtoken", alg, lambda t, k=vk, a=algs: webtoken.decode(t, k, algorithms=a, issuer=ISS, audience=AUD), vnote)
    keys = {k["kid"]: PyJWK(k, "RS256") for k in ctx.jwks3()["keys"]}

    def v3(t):
        key = keys[rust.get_unverified_header(t)["kid"]]
        return webtoken.decode(t, key, algorithms=["RS256"], issuer=ISS, audience=AUD)

    run_verify(ctx, "webtoken", JWKS3, v3, "PyJWK by kid from get_unverified_header")


LIBS = [
    ("idflow", "idflow", bench_idflow),
    ("pyjwt", "jwt", bench_pyjwt),
    ("joserfc", "joserfc", bench_joserfc),
    ("authlib", "authlib", bench_authlib),
    ("descope", "descope", bench_descope),
    ("oxyjwt", "oxyjwt", bench_oxyjwt),
    ("pyjwt-rs", "jwt_rs", bench_pyjwt_rs),
    ("webtoken", "webtoken", bench_webtoken),
]


def version_of(dist: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return "?"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--gen-keys", type=Path)
    ap.add_argument("--keys", type=Path)
    ap.add_argument("--only", help="comma-separated library names")
    args = ap.parse_args()
    if args.gen_keys:
        gen_keys(args.gen_keys)
        return 0
    if not args.keys:
        ap.error("--keys DIR (or --gen-keys DIR) is required")
    ctx = Ctx(args.keys)
    import idflow

    def checker(alg):
        key = idflow.KeySet.from_jwks(ctx.jwks3()) if alg == JWKS3 else idflow.Key.from_jwk(ctx.jwk(alg))
        a = ["RS256"] if alg == JWKS3 else [alg]
        return lambda t: idflow.jwt.verify(t, key, algorithms=a, issuer=ISS, audience=AUD)

    only = set(args.only.split(",")) if args.only else None
    dists = {"idflow": "idflow", "pyjwt": "PyJWT", "joserfc": "joserfc", "authlib": "Authlib", "descope": "descope",
             "oxyjwt": "oxyjwt", "pyjwt-rs": "pyjwt-rs", "webtoken": "webtoken"}
    for name, module, fn in LIBS:
        if only and name not in only:
            continue
        print(json.dumps({"lang": "python", "lib": name, "version": version_of(dists[name])}), flush=True)
        try:
            with contextlib.redirect_stdout(sys.stderr):
                __import__(module)
        except Exception as e:
            for alg in ALGS + [JWKS3]:
                for op in ("sign", "verify") if alg != JWKS3 else ("verify",):
                    emit(name, alg, op, None, f"not installed: {type(e).__name__}: {str(e)[:120]}")
            continue
        try:
            fn(ctx, checker)
        except Exception as e:
            traceback.print_exc(file=sys.stderr)
            emit(name, "?", "?", None, f"bench crashed: {type(e).__name__}: {str(e)[:160]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
