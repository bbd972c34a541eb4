package dev.idflow

import dev.idflow.core.*
import kotlinx.serialization.json.JsonNull
import kotlinx.serialization.json.JsonObject
import kotlinx.serialization.json.JsonPrimitive
import kotlinx.serialization.json.boolean
import kotlinx.serialization.json.jsonObject
import kotlinx.serialization.json.jsonPrimitive
import kotlinx.serialization.json.long
import org.junit.jupiter.api.Assertions.assertArrayEquals
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertThrows
import org.junit.jupiter.api.DynamicTest
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.TestFactory

class VectorsTest {
    private val anyKey = Key.fromSecret(ByteArray(64) { 7 })

    private fun str(o: JsonObject, k: String): String? = (o[k] as? JsonPrimitive)?.takeIf { it.isString }?.content

    @TestFactory
    fun jwsVectors(): List<DynamicTest> =
        listOf("jws_rfc7515.json", "jws_rfc7520.json", "jws_rfc8037.json", "jws_rfc7797.json").flatMap { file ->
            Vectors.list(file).map { vec -> DynamicTest.dynamicTest(str(vec, "id")!!) { check(vec) } }
        }

    private fun check(vec: JsonObject) {
        val alg = str(vec, "alg")!!
        val expected = str(vec, "expected")!!
        val compact = str(vec, "compact")
        if (expected == "reject") {
            assertThrows(IdflowException.UnsupportedAlgorithm::class.java) { jwtVerifyJws(compact!!, anyKey, listOf("HS256")) }
            return
        }
        val key = Key.fromJwk(vec["key"]!!.toString())
        if (expected == "reject_unless_b64_supported") {
            assertThrows(IdflowException.InvalidToken::class.java) { jwtVerifyJws(compact!!, key, listOf(alg)) }
            return
        }
        val keys = mutableListOf(key)
        val pub = vec["public_key"]
        if (pub != null && pub != JsonNull) keys.add(Key.fromJwk(pub.toString()))
        str(vec, "jwk_thumbprint_sha256")?.let { assertEquals(it, key.thumbprint()) }
        val payload = str(vec, "payload")!!
        val detached = (vec["detached_payload"] as? JsonPrimitive)?.boolean == true
        if (compact != null && !detached) {
            for (k in keys) {
                val out = jwtVerifyJws(compact, k, listOf(alg))
                assertEquals(payload, out.payload.toString(Charsets.UTF_8))
            }
            val claims = Vectors.parseObject(payload)
            val last = keys.last()
            if (claims != null) {
                val exp = (claims["exp"] as? JsonPrimitive)?.long
                val opts = VerifyOptions(
                    algorithms = listOf(alg),
                    requiredClaims = if (exp != null) listOf("exp") else listOf(),
                    now = exp?.let { (it - 10).toULong() },
                )
                assertEquals(claims, Vectors.json(jwtVerify(compact, last, opts)))
                if (exp != null) {
                    assertThrows(IdflowException.ExpiredToken::class.java) { jwtVerify(compact, last, VerifyOptions(algorithms = listOf(alg))) }
                }
            } else {
                assertThrows(IdflowException.InvalidToken::class.java) {
                    jwtVerify(compact, last, VerifyOptions(algorithms = listOf(alg), requiredClaims = listOf()))
                }
            }
        }
        val input = str(vec, "signing_input")!!.toByteArray(Charsets.UTF_8)
        val sig = Vectors.b64u(str(vec, "signature_b64u")!!)
        for (k in keys) k.verifyBytes(alg, input, sig)
        assertThrows(IdflowException.InvalidSignature::class.java) { keys.last().verifyBytes(alg, input + byteArrayOf(1), sig) }
        if ((vec["deterministic"] as JsonPrimitive).boolean) assertArrayEquals(sig, key.signBytes(alg, input))
    }

    @Test
    fun thumbprints() {
        for (vec in Vectors.list("jwk_thumbprint_rfc7638.json")) {
            assertEquals(vec["thumbprint_sha256"]!!.jsonPrimitive.content, Key.fromJwk(vec["jwk"]!!.jsonObject.toString()).thumbprint())
        }
    }
}
