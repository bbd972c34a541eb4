package dev.idflow

import dev.idflow.core.*
import kotlinx.serialization.json.jsonObject
import kotlinx.serialization.json.jsonPrimitive
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertFalse
import org.junit.jupiter.api.Assertions.assertThrows
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test

class JwtTest {
    private fun future() = System.currentTimeMillis() / 1000 + 600

    @Test
    fun roundTripEveryAlgorithm() {
        for (alg in algorithms()) {
            val key = Key.generate(alg)
            assertEquals(alg, key.alg())
            assertEquals(key.thumbprint(), key.kid())
            val claims = """{"sub":"u1","exp":${future()},"n":[1,2.5,null,true]}"""
            val token = jwtSign(claims, key)
            val verifier = if (alg.startsWith("HS")) key else key.publicKey()
            assertEquals(Vectors.json(claims), Vectors.json(jwtVerify(token, verifier, VerifyOptions(algorithms = listOf(alg)))), alg)
            if (!alg.startsWith("HS")) {
                val pub = Key.fromPem(key.toPem())
                assertFalse(pub.hasPrivate())
                jwtVerify(token, pub, VerifyOptions(algorithms = listOf(alg)))
                val priv = Key.fromJwk(key.toJwk(true))
                assertTrue(priv.hasPrivate())
                assertEquals(key.thumbprint(), priv.thumbprint())
            }
        }
    }

    @Test
    fun keySetSelectsByKid() {
        val keys = listOf("a", "b", "c").map { Key.generate("ES256").withKid(it) }
        val ks = KeySet(keys.map { it.publicKey() })
        assertEquals(listOf("a", "b", "c"), ks.kids())
        for (k in keys) {
            val claims = Vectors.json(jwtVerifyWithKeySet(jwtSign("""{"exp":${future()},"k":"${k.kid()}"}""", k), ks, VerifyOptions(algorithms = listOf("ES256"))))
            assertEquals(k.kid(), claims.jsonObject["k"]!!.jsonPrimitive.content)
        }
        val forged = jwtSign("""{"exp":${future()}}""", keys[0], """{"kid":"zz"}""")
        assertThrows(IdflowException.InvalidKey::class.java) { jwtVerifyWithKeySet(forged, ks, VerifyOptions(algorithms = listOf("ES256"))) }
        assertEquals(ks.kids(), KeySet.fromJwks(ks.toJwks()).kids())
    }

    @Test
    fun strictDefaults() {
        val key = Key.generate("HS256")
        val now = System.currentTimeMillis() / 1000
        val opts = VerifyOptions(algorithms = listOf("HS256"))
        assertThrows(IdflowException.InvalidToken::class.java) { jwtVerify(jwtSign("""{"sub":"x"}""", key), key, opts) }
        assertThrows(IdflowException.ExpiredToken::class.java) { jwtVerify(jwtSign("""{"exp":${now - 120}}""", key), key, opts) }
        assertThrows(IdflowException.ImmatureToken::class.java) { jwtVerify(jwtSign("""{"exp":${future()},"nbf":${now + 600}}""", key), key, opts) }
        assertThrows(IdflowException.InvalidIssuer::class.java) {
            jwtVerify(jwtSign("""{"exp":${future()},"iss":"evil"}""", key), key, VerifyOptions(algorithms = listOf("HS256"), issuer = "good"))
        }
        assertThrows(IdflowException.InvalidAudience::class.java) { jwtVerify(jwtSign("""{"exp":${future()},"aud":"me"}""", key), key, opts) }
        assertThrows(IdflowException.Config::class.java) { jwtVerify(jwtSign("""{"exp":${future()}}""", key), key, VerifyOptions(algorithms = listOf())) }
        val rsa = Key.generate("RS256")
        assertThrows(IdflowException.InvalidKey::class.java) { Key.fromSecret(rsa.toPem().toByteArray()) }
        assertThrows(IdflowException.InvalidKey::class.java) {
            jwtVerify(jwtSign("""{"exp":${future()}}""", key), rsa.publicKey(), VerifyOptions(algorithms = listOf("HS256", "RS256")))
        }
        assertThrows(IdflowException.UnsupportedAlgorithm::class.java) {
            jwtVerify("eyJhbGciOiJub25lIn0.e30.", key, opts)
        }
    }
}
