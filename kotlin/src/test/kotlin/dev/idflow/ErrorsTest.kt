package dev.idflow

import kotlinx.serialization.json.jsonArray
import kotlinx.serialization.json.jsonObject
import kotlinx.serialization.json.jsonPrimitive
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertThrows
import org.junit.jupiter.api.Test

fun snakeToCamel(code: String): String =
    code.split('_').joinToString("") { it.replaceFirstChar(Char::uppercase) }

class ErrorsTest {
    @Test
    fun errorCodesMatchTheSharedList() {
        val codes = Vectors.load("error_codes.json")["codes"]!!.jsonArray.map { it.jsonObject["code"]!!.jsonPrimitive.content }
        assertEquals(codes, errorCodes())
    }

    @Test
    fun everyCodeMapsToItsExceptionClass() {
        val codes = Vectors.load("error_codes.json")["codes"]!!.jsonArray.map { it.jsonObject["code"]!!.jsonPrimitive.content }
        for (code in codes) {
            val e = assertThrows(IdflowException::class.java) { debugRaise(code) }
            assertEquals(snakeToCamel(code), e::class.simpleName, code)
            assertEquals("raised by debug_raise", e.message)
        }
    }

    @Test
    fun panicsBecomeInternal() {
        assertThrows(IdflowException.Internal::class.java) { debugPanic() }
    }

    @Test
    fun badInputIsACleanError() {
        assertThrows(IdflowException.InvalidToken::class.java) { jwtDecodeUnverified("nope") }
        assertThrows(IdflowException.InvalidKey::class.java) { Key.fromPem("garbage") }
        assertThrows(IdflowException.UnsupportedAlgorithm::class.java) { Key.generate("none") }
        assertThrows(IdflowException.InvalidRequest::class.java) { jwtSign("[1]", Key.generate("HS256")) }
    }
}
