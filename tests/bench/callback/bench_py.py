"""The client-side cost of one OIDC callback, network excluded: state check,
token-response parse, id_token validation (RS256, iss, aud, exp, nonce,
at_hash). idflow's OidcClient.complete_callback vs authlib (authorization
response parse + json + jwt.decode with CodeIDToken + validate). Prints one
JSON line per library: {"lib", "ops"}."""

import base64
import hashlib
import json
import os
import time

import idflow

ISS = "https://op.example"
SECONDS = float(os.environ.get("BENCH_SECONDS", "1"))


def measure(fn):
    for _ in range(200):
        fn()
    n = 0
    end = time.perf_counter() + SECONDS
    while time.perf_counter() < end:
        for _ in range(50):
            fn()
        n += 50
    return n / SECONDS


def main():
    key = idflow.Key.generate("RS256")
    jwks = idflow.KeySet([key.public_key()]).to_jwks()
    client = idflow.OidcClient(
        client_id="rp",
        redirect_uri="https://rp.example/cb",
        client_secret="rp-secret-0123456789abcdef",
        endpoints={"issuer": ISS, "authorization_endpoint": f"{ISS}/authorize", "token_endpoint": f"{ISS}/token", "jwks_uri": f"{ISS}/jwks"},
    )
    request = client.authorization_request()
    access = "at-" + "x" * 40
    at_hash = base64.urlsafe_b64encode(hashlib.sha256(access.encode()).digest()[:16]).rstrip(b"=").decode()
    now = int(time.time())
    id_token = idflow.jwt.sign({"iss": ISS, "sub": "u1", "aud": "rp", "iat": now, "exp": now + 3600, "nonce": request["nonce"], "at_hash": at_hash}, key)
    body = json.dumps({"access_token": access, "token_type": "Bearer", "expires_in": 3600, "id_token": id_token}).encode()
    callback = f"https://rp.example/cb?code=c0de&state={request['state']}&iss=https%3A%2F%2Fop.example"
    keys = idflow.KeySet.from_jwks(jwks)
    print(json.dumps({"lib": "idflow", "ops": measure(lambda: client.complete_callback(callback, request, 200, body, keys))}))

    try:
        from authlib.jose import JsonWebKey, jwt
        from authlib.oauth2.rfc6749.parameters import parse_authorization_code_response
        from authlib.oidc.core import CodeIDToken
    except ImportError:
        print(json.dumps({"lib": "authlib", "ops": None}))
        return
    keyset = JsonWebKey.import_key_set(jwks)
    options = {"iss": {"essential": True, "value": ISS}, "aud": {"essential": True, "value": "rp"}}

    def authlib_once():
        params = parse_authorization_code_response(callback, state=request["state"])
        assert params["code"]
        token = json.loads(body)
        claims = jwt.decode(
            token["id_token"], keyset, claims_cls=CodeIDToken, claims_options=options,
            claims_params={"nonce": request["nonce"], "client_id": "rp", "access_token": token["access_token"]},
        )
        claims.validate()

    print(json.dumps({"lib": "authlib", "ops": measure(authlib_once)}))


if __name__ == "__main__":
    main()
