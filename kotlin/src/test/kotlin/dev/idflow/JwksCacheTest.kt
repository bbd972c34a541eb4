package dev.idflow

import dev.idflow.core.*
import com.sun.net.httpserver.HttpServer
import kotlinx.coroutines.async
import kotlinx.coroutines.awaitAll
import kotlinx.coroutines.runBlocking
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertThrows
import org.junit.jupiter.api.Test
import java.net.InetSocketAddress
import java.util.concurrent.atomic.AtomicInteger

class JwksCacheTest {
    private class Server {
        @Volatile var body = "{}"
        @Volatile var status = 200
        val hits = AtomicInteger()
        val http: HttpServer = HttpServer.create(InetSocketAddress("127.0.0.1", 0), 0).apply {
            createContext("/jwks.json") { ex ->
                hits.incrementAndGet()
                val bytes = body.toByteArray()
                ex.responseHeaders.add("Content-Type", "application/json")
                ex.responseHeaders.add("Cache-Control", "max-age=300")
                ex.sendResponseHeaders(status, bytes.size.toLong())
                ex.responseBody.use { it.write(bytes) }
            }
            start()
        }
        val url = "http://127.0.0.1:${http.address.port}/jwks.json"
        fun publish(vararg keys: Key) {
            body = KeySet(keys.map { it.publicKey() }).toJwks()
        }
    }

    private fun tokenFor(key: Key) = jwtSign("""{"sub":"u","exp":${System.currentTimeMillis() / 1000 + 600}}""", key)

    @Test
    fun fetchCacheRotateAndRateLimit(): Unit = runBlocking {
        val s = Server()
        try {
            val k1 = Key.generate("ES256")
            s.publish(k1)
            val opts = VerifyOptions(algorithms = listOf("ES256"))
            JwksCache(s.url, refetchCooldownSecs = 0.0).use { cache ->
                val results = (1..5).map { async { cache.verify(tokenFor(k1), opts) } }.awaitAll()
                assertEquals(5, results.size)
                assertEquals(1, s.hits.get())
                val k2 = Key.generate("ES256")
                s.publish(k1, k2)
                cache.verify(tokenFor(k2), opts)
                assertEquals(2, s.hits.get())
                assertEquals(2u, cache.keySet().size())
            }
            JwksCache(s.url, refetchCooldownSecs = 60.0).use { cache ->
                cache.keySet()
                val stranger = Key.generate("ES256")
                repeat(3) {
                    assertThrows(IdflowException.InvalidKey::class.java) { runBlocking { cache.verify(tokenFor(stranger), opts) } }
                }
                // One refetch for the first unknown kid, none for the rest within the cool-down.
                assertEquals(4, s.hits.get())
                s.status = 500
                assertThrows(IdflowException.Network::class.java) { runBlocking { cache.refresh() } }
                cache.verify(tokenFor(k1), opts)
            }
            assertThrows(IdflowException.Network::class.java) { runBlocking { JwksCache(s.url).keySet() } }
            assertThrows(IdflowException.Config::class.java) { JwksCache("ftp://example.invalid/jwks") }
        } finally {
            s.http.stop(0)
        }
    }
}
