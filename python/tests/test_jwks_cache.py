"""JwksCache against a real HTTP server on 127.0.0.1, sync and asyncio."""

import asyncio
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import idflow
import pytest


class JwksServer:
    def __init__(self):
        self.body = b"{}"
        self.status = 200
        self.headers = {"Cache-Control": "max-age=300"}
        self.hits = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                server.hits += 1
                self.send_response(server.status)
                self.send_header("Content-Type", "application/json")
                for k, v in server.headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(server.body)))
                self.end_headers()
                self.wfile.write(server.body)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/jwks.json"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def publish(self, *keys):
        self.body = json.dumps(idflow.KeySet([k.public_key() for k in keys]).to_jwks()).encode()


@pytest.fixture
def server():
    s = JwksServer()
    yield s
    s.httpd.shutdown()


def token_for(key):
    return idflow.jwt.sign({"sub": "u", "exp": int(time.time()) + 600}, key)


def test_fetch_cache_and_rotation(server):
    k1 = idflow.Key.generate("ES256")
    server.publish(k1)
    cache = idflow.JwksCache(server.url, refetch_cooldown=0)
    assert cache.verify(token_for(k1), algorithms=["ES256"])["sub"] == "u"
    cache.verify(token_for(k1), algorithms=["ES256"])
    assert server.hits == 1
    k2 = idflow.Key.generate("ES256")
    server.publish(k1, k2)
    assert cache.verify(token_for(k2), algorithms=["ES256"])["sub"] == "u"
    assert server.hits == 2
    assert len(cache.key_set()) == 2


def test_unknown_kid_refetch_is_rate_limited(server):
    k1 = idflow.Key.generate("ES256")
    server.publish(k1)
    cache = idflow.JwksCache(server.url, refetch_cooldown=60)
    cache.key_set()
    stranger = idflow.Key.generate("ES256")
    for _ in range(3):
        with pytest.raises(idflow.TokenError) as info:
            cache.verify(token_for(stranger), algorithms=["ES256"])
        assert info.value.code == "invalid_key"
    # One refetch for the first unknown kid, none for the rest within the cool-down.
    assert server.hits == 2


def test_serves_last_good_set_when_the_server_fails(server):
    k1 = idflow.Key.generate("EdDSA")
    server.publish(k1)
    server.headers = {"Cache-Control": "max-age=0"}
    cache = idflow.JwksCache(server.url, min_ttl=0.05)
    cache.key_set()
    server.status = 500
    time.sleep(0.1)
    assert cache.verify(token_for(k1), algorithms=["EdDSA"])["sub"] == "u"
    assert server.hits >= 2
    with pytest.raises(idflow.NetworkError) as info:
        cache.refresh()
    assert info.value.code == "network"


def test_errors_without_a_good_set(server):
    server.status = 503
    with pytest.raises(idflow.NetworkError):
        idflow.JwksCache(server.url).key_set()
    server.status = 200
    server.body = b"not json"
    with pytest.raises(idflow.TokenError) as info:
        idflow.JwksCache(server.url).key_set()
    assert info.value.code == "invalid_key"
    server.body = b"{" + b" " * 5000 + b"}"
    with pytest.raises(idflow.NetworkError):
        idflow.JwksCache(server.url, max_response_bytes=1000).key_set()
    with pytest.raises(idflow.ConfigError):
        idflow.JwksCache("ftp://example.invalid/jwks")


def test_asyncio_methods(server):
    k1 = idflow.Key.generate("RS256")
    server.publish(k1)
    cache = idflow.JwksCache(server.url)

    async def main():
        ks = await cache.key_set_async()
        assert ks.kids == [k1.kid]
        results = await asyncio.gather(*[cache.verify_async(token_for(k1), algorithms=["RS256"]) for _ in range(5)])
        assert all(r["sub"] == "u" for r in results)
        with pytest.raises(idflow.TokenError):
            await cache.verify_async("garbage", algorithms=["RS256"])
        await cache.refresh_async()

    asyncio.run(main())
    assert server.hits == 2
