package dev.idflow

import kotlinx.serialization.json.boolean
import kotlinx.serialization.json.jsonArray
import kotlinx.serialization.json.jsonObject
import kotlinx.serialization.json.jsonPrimitive
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertNotEquals
import org.junit.jupiter.api.Assertions.assertThrows
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test

class PkceTest {
    @Test
    fun generateAndVerify() {
        val pair = pkceGenerate()
        assertEquals(64, pair.verifier.length)
        assertEquals("S256", pair.method)
        assertTrue(pkceVerify(pair.verifier, pair.challenge))
        assertEquals(43, pkceGenerateVerifier(43u).length)
        assertNotEquals(pkceGenerateVerifier(), pkceGenerateVerifier())
        for (n in listOf(0u, 42u, 129u)) {
            assertThrows(IdflowException.InvalidRequest::class.java) { pkceGenerateVerifier(n) }
        }
        val v = "a".repeat(43)
        assertThrows(IdflowException.InvalidRequest::class.java) { pkceVerify(v, v, "plain") }
        assertTrue(pkceVerify(v, v, "plain", true))
    }

    @Test
    fun rfc7636Vectors() {
        val doc = Vectors.load("pkce_rfc7636.json")
        for (el in doc["vectors"]!!.jsonArray) {
            val vec = el.jsonObject
            val method = vec["code_challenge_method"]!!.jsonPrimitive.content
            val verifier = vec["code_verifier"]!!.jsonPrimitive.content
            val challenge = vec["code_challenge"]!!.jsonPrimitive.content
            val expected = vec["expected"]!!.jsonPrimitive.content == "match"
            assertEquals(expected, pkceVerify(verifier, challenge, method, method == "plain"), vec["id"].toString())
            if (method == "S256" && expected) assertEquals(challenge, pkceChallenge(verifier))
        }
        for (el in doc["verifier_syntax"]!!.jsonArray) {
            val s = el.jsonObject
            val verifier = s["code_verifier"]!!.jsonPrimitive.content
            if (s["valid"]!!.jsonPrimitive.boolean) pkceChallenge(verifier)
            else assertThrows(IdflowException.InvalidRequest::class.java) { pkceChallenge(verifier) }
        }
    }
}
