package dev.idflow

import dev.idflow.core.*
import kotlinx.serialization.json.jsonArray
import kotlinx.serialization.json.jsonPrimitive
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Test
import java.lang.reflect.Modifier

/**
 * The callback, the token set and the session carry the same fields here as
 * in every other binding (tests/vectors/result_shapes.json): Kotlin spells
 * them in camelCase, and a JSON object field is text named `<name>Json`.
 */
class ResultShapesTest {
    private val shapes = Vectors.load("result_shapes.json")

    private fun expected(concept: String): List<String> = shapes[concept]!!.jsonArray.map { it.jsonPrimitive.content }.sorted()

    /** The fields of `type` in the shapes file's spelling. */
    private fun fields(type: Class<*>): List<String> =
        type.declaredFields
            .filter { !Modifier.isStatic(it.modifiers) && !it.isSynthetic }
            .map { it.name.removeSuffix("Json").replace(Regex("[A-Z]")) { m -> "_" + m.value.lowercase() } }
            .sorted()

    @Test
    fun callbackTokenSetAndSessionHaveTheSharedFields() {
        assertEquals(expected("callback"), fields(CallbackParams::class.java))
        assertEquals(expected("token_set"), fields(TokenResponse::class.java))
        assertEquals(expected("session"), fields(Session::class.java))
    }

    @Test
    fun parsedCallbackIsTheSharedCallback() {
        val client = OidcClient(
            ClientSettings(
                clientId = "rp", redirectUri = "https://rp.example/cb", issuer = "https://op.example",
                authorizationEndpoint = "https://op.example/a", tokenEndpoint = "https://op.example/t",
            ),
        )
        val request = client.authorizationRequest()
        val callback = client.parseCallback("https://rp.example/cb?code=c&state=${request.state}", request.state)
        assertEquals(CallbackParams("c", null, request.state), callback)
    }
}
