package dev.idflow

import dev.idflow.core.*
import kotlinx.coroutines.runBlocking
import kotlinx.serialization.json.jsonObject
import kotlinx.serialization.json.jsonPrimitive
import org.junit.jupiter.api.Assertions.assertDoesNotThrow
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertFalse
import org.junit.jupiter.api.Assertions.assertNotNull
import org.junit.jupiter.api.Assertions.assertNull
import org.junit.jupiter.api.Assertions.assertThrows
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import dev.idflow.examples.NativeSignIn
import java.io.File
import java.net.URI
import java.util.Collections

// The twins of swift/Tests/IdFlowTests: same class and test names, same
// behaviour, so what Swift proves where it runs is proven here too.

class OidcClientTests {
    @Test
    fun testTypedSettingsAreChecked() {
        val settings = ClientSettings(
            clientId = "app", redirectUri = "com.example.app:/cb", issuer = "https://op.example",
            authorizationEndpoint = "https://op.example/authorize", tokenEndpoint = "https://op.example/token",
        )
        val refused = listOf(
            settings.copy(scopes = listOf("openid email")),
            settings.copy(timeout = 0.0),
            settings.copy(leeway = 301uL),
            settings.copy(clientSecret = ""),
        )
        for (bad in refused) {
            assertThrows(IdflowException.Config::class.java, { OidcClient(bad) }, bad.toString())
        }
        val client = OidcClient(settings.copy(scopes = listOf("openid", "email")))
        val request = client.authorizationRequest(AuthorizationParams(loginHint = "ann@example.com", params = mapOf("b" to "2", "a" to "1")))
        assertTrue(request.url.endsWith("&a=1&b=2"), request.url)
        assertThrows(IdflowException.InvalidRequest::class.java) { client.authorizationRequest(AuthorizationParams(params = mapOf("state" to "x"))) }
    }

    @Test
    fun testAuthorizationRequestAndCallbackChecks() {
        val settings = ClientSettings(
            clientId = "app", redirectUri = "com.example.app:/cb", issuer = "https://op.example",
            authorizationEndpoint = "https://op.example/authorize", tokenEndpoint = "https://op.example/token",
        )
        assertThrows(IdflowException::class.java) { OidcClient(ClientSettings(clientId = "app", redirectUri = "")) }
        val client = OidcClient(settings)
        val request = client.authorizationRequest(AuthorizationParams(prompt = listOf("login")))
        assertTrue(request.url.startsWith("https://op.example/authorize?response_type=code"))
        assertTrue(request.url.contains("code_challenge_method=S256"))
        assertTrue(request.url.contains("redirect_uri=com.example.app%3A%2Fcb"))
        assertNotNull(request.codeVerifier)
        val callback = client.parseCallback("com.example.app:/cb?code=abc&state=${request.state}", request.state)
        assertEquals("abc", callback.code)
        assertNull(callback.idToken)
        assertEquals(request.state, callback.state)
        assertThrows(IdflowException.InvalidRequest::class.java) { client.parseCallback("com.example.app:/cb?code=abc&state=other", request.state) }
        assertThrows(IdflowException.AccessDenied::class.java) { client.parseCallback("?error=access_denied&state=${request.state}", request.state) }
        // RFC 8252 §7: private-use (reverse DNS), claimed https and loopback http;
        // schemes that run something, and bare private schemes, never.
        for (uri in listOf("com.example.app:/cb", "https://app.example.com/cb", "http://127.0.0.1:51004/cb", "http://[::1]:8080/cb")) {
            assertDoesNotThrow({ OidcClient(settings.copy(redirectUri = uri)) }, uri)
        }
        for ((uri, rule) in listOf("javascript:alert(1)//" to "javascript: scheme", "myapp:/cb" to "reverse-DNS", "https://app.example.com/cb#x" to "no fragment")) {
            val e = assertThrows(IdflowException.Config::class.java) { OidcClient(settings.copy(redirectUri = uri)) }
            assertTrue(e.message!!.contains("redirect_uri") && e.message!!.contains(rule), e.message)
        }
        assertThrows(IdflowException.Config::class.java) { client.endSessionUrl(null, "data:text/html,x", null) }
    }
}

/** Keeps what a `SessionManager` tells its listener. */
class Heard : SessionListener {
    val all: MutableList<SessionEvent> = Collections.synchronizedList(mutableListOf())

    override fun onEvent(event: SessionEvent) {
        all.add(event)
    }
}

class SessionManagerTests {
    /** A client whose token endpoint refuses connections (nothing listens on port 9). */
    private fun client(): OidcClient =
        OidcClient(
            ClientSettings(
                clientId = "app", redirectUri = "com.example.app:/cb", issuer = "https://op.example",
                authorizationEndpoint = "https://op.example/authorize", tokenEndpoint = "http://127.0.0.1:9/token",
            ),
        )

    @Test
    fun testSignedOutJunkAndBadOptions(): Unit = runBlocking {
        val manager = SessionManager(client(), MemorySessionStorage())
        assertEquals(SessionStatus.SIGNED_OUT, manager.status())
        assertThrows(IdflowException.LoginRequired::class.java) { runBlocking { manager.accessToken() } }
        val junk = SessionManager(client(), MemorySessionStorage("not json"))
        assertThrows(IdflowException.Storage::class.java) { runBlocking { junk.accessToken() } }
        // A session stored by a newer idflow is refused and left as it is.
        val newer = """{"v":99,"session":{"access_token":"at"}}"""
        val storage = MemorySessionStorage(newer)
        val e = assertThrows(IdflowException.Storage::class.java) { runBlocking { SessionManager(client(), storage).session() } }
        assertTrue(e.message!!.contains("newer version"), e.message)
        assertEquals(newer, storage.value)
        assertThrows(IdflowException.Config::class.java) { SessionManager(client(), MemorySessionStorage(), SessionSettings(refreshMargin = -1.0)) }
        assertThrows(IdflowException.Config::class.java) { SessionManager(client(), MemorySessionStorage(), SessionSettings(pendingTtl = 0.0)) }
        assertThrows(IdflowException.Config::class.java) { SessionManager(client(), MemorySessionStorage(), SessionSettings(lockPath = "")) }
    }

    @Test
    fun testBeginKeepsThePendingRequestForAnotherManager(): Unit = runBlocking {
        val storage = MemorySessionStorage()
        val first = SessionManager(client(), storage)
        val url = first.begin(AuthorizationParams(scopes = listOf("openid", "offline_access")))
        assertTrue(url.contains("redirect_uri=com.example.app%3A%2Fcb"), url)
        val state = URI(url).rawQuery.split('&').first { it.startsWith("state=") }.removePrefix("state=")
        assertTrue(storage.value!!.contains(state))
        // The app was killed while the browser was open: a new manager completes.
        val second = SessionManager(client(), storage)
        assertThrows(IdflowException.InvalidRequest::class.java) { runBlocking { second.complete("com.example.app:/cb?code=c1&state=forged") } }
        assertTrue(storage.value!!.contains(state), "a callback for another state leaves the pending request")
        assertThrows(IdflowException.Network::class.java) { runBlocking { second.complete("com.example.app:/cb?code=c1&state=$state") } }
        assertThrows(IdflowException.InvalidRequest::class.java, { runBlocking { second.complete("com.example.app:/cb?code=c1&state=$state") } }, "single use")
        assertThrows(IdflowException.Config::class.java, { runBlocking { first.begin(AuthorizationParams(responseType = ResponseType.ID_TOKEN)) } }, "code flow only")
    }

    @Test
    fun testReadmeNativeSignInSnippet(): Unit = runBlocking {
        val storage = MemorySessionStorage()
        val signIn = NativeSignIn(SessionManager(client(), storage))
        val url = signIn.start()
        assertTrue(url.contains("redirect_uri=com.example.app%3A%2Fcb"), url)
        assertNotNull(storage.value)
        assertThrows(IdflowException.InvalidRequest::class.java) { runBlocking { signIn.finish("com.example.app:/cb?code=c1&state=forged") } }
        assertThrows(IdflowException.LoginRequired::class.java) { runBlocking { signIn.authorization() } }
        // The README shows both snippets as they are in the repository.
        val readme = File("../README.md").readText()
        for (file in listOf("src/test/kotlin/dev/idflow/examples/NativeSignIn.kt", "../swift/Tests/IdFlowTests/NativeSignIn.swift")) {
            val lang = if (file.endsWith(".kt")) "kotlin" else "swift"
            assertTrue(readme.contains("```$lang\n${File(file).readText()}```"), "README shows $file as it is")
        }
    }

    @Test
    fun testStorageTroubleIsHeardAndEndsNothing(): Unit = runBlocking {
        val stored = """{"v":2,"session":{"access_token":"at-1","token_type":"Bearer","claims":{"sub":"u1"}}}"""
        val storage = MemorySessionStorage(stored)
        storage.failing = true
        val manager = SessionManager(client(), storage)
        val heard = Heard()
        manager.setListener(heard)
        assertThrows(IdflowException.Storage::class.java) { runBlocking { manager.accessToken() } }
        val failed = heard.all.last()
        assertTrue(failed is SessionEvent.StorageFailed && failed.code == "storage", "$failed")
        assertEquals(stored, storage.value, "a failed load clears nothing")
        storage.failing = false
        assertEquals("at-1", manager.accessToken())
        manager.signOut()
        val out = heard.all.last()
        assertTrue(out is SessionEvent.SignedOut && out.reason == SignOutReason.USER, "$out")
        assertNull(storage.value)
    }
}

class ProviderTests {
    @Test
    fun testThePeerAddressFeedsThePerAddressRateLimits(): Unit = runBlocking {
        val project = """{"projectId":"limits","baseUrl":"http://127.0.0.1:7003","flows":["sign-up-or-in.json"],"rateLimits":{"flowStartsPerIp":2}}"""
        providerOpen(project, File("../tests/flows").path).use { provider ->
            val headers = listOf(HttpHeader("Content-Type", "application/json"))
            val start = """{"flowId":"sign-up-or-in"}""".toByteArray()
            repeat(2) { assertEquals(200, provider.handle("POST", "/v1/flow/start", headers, start, "203.0.113.7").status.toInt()) }
            val limited = provider.handle("POST", "/v1/flow/start", headers, start, "203.0.113.7")
            assertEquals(429, limited.status.toInt())
            assertTrue(limited.headers.any { it.name.equals("retry-after", ignoreCase = true) })
            assertTrue(String(limited.body).contains("\"rate_limited\""), String(limited.body))
            assertEquals(200, provider.handle("POST", "/v1/flow/start", headers, start, "203.0.113.8").status.toInt())
            // Without a peer nothing is counted per address.
            assertEquals(200, provider.handle("POST", "/v1/flow/start", headers, start).status.toInt())
            assertThrows(IdflowException.InvalidRequest::class.java) {
                runBlocking { provider.handle("GET", "/health", emptyList(), ByteArray(0), "not-an-address") }
            }
            // The metrics count each answer by route and status.
            val metrics = provider.metrics().lines()
            assertTrue(metrics.contains("idflow_http_requests_total{route=\"flow_start\",status=\"200\"} 4"), metrics.joinToString("\n"))
            assertTrue(metrics.contains("idflow_http_requests_total{route=\"flow_start\",status=\"429\"} 1"), metrics.joinToString("\n"))
            // Every store call is timed, by operation (the rate limits' counters).
            assertTrue(metrics.any { it.startsWith("idflow_store_operation_duration_seconds_count{op=\"hit\"} ") }, metrics.joinToString("\n"))
        }
    }

    @Test
    fun testKeysRotateWithoutARestart(): Unit = runBlocking {
        val project = """{"projectId":"keys","baseUrl":"http://127.0.0.1:7004","flows":["sign-up-or-in.json"]}"""
        providerOpen(project, File("../tests/flows").path).use { provider ->
            val jwks = suspend { String(provider.handle("GET", "/keys/.well-known/jwks.json", emptyList(), ByteArray(0)).body) }
            val before = jwks()
            val rotated = Vectors.json(provider.rotateKeys("ES256", 0uL)).jsonObject
            assertEquals("ES256", rotated["alg"]!!.jsonPrimitive.content)
            val kid = rotated["kid"]!!.jsonPrimitive.content
            val after = jwks()
            // The new key first, and the old one still published.
            assertTrue(after.indexOf(kid) in 0 until after.indexOf("\"RS256\""), after)
            assertTrue(before.contains("\"RS256\"") && !before.contains(kid), before)
            assertThrows(IdflowException.InvalidRequest::class.java) { provider.rotateKeys("HS256") }
        }
    }
}

class IdFlowTests {
    private fun text(o: kotlinx.serialization.json.JsonObject, k: String): String? =
        (o[k] as? kotlinx.serialization.json.JsonPrimitive)?.takeIf { it.isString }?.content

    @Test
    fun testErrorCodesMatchTheSharedList() {
        val codes = (Vectors.load("error_codes.json")["codes"] as kotlinx.serialization.json.JsonArray)
            .map { text(it as kotlinx.serialization.json.JsonObject, "code")!! }
        assertEquals(codes, errorCodes())
        for (code in codes) {
            val e = assertThrows(IdflowException::class.java) { debugRaise(code) }
            assertTrue(e::class.simpleName!!.endsWith(snakeToCamel(code)), "$code -> ${e::class.simpleName}")
        }
        assertThrows(IdflowException.Internal::class.java) { debugPanic() }
    }

    @Test
    fun testPkceVectors() {
        for (vec in Vectors.list("pkce_rfc7636.json")) {
            val method = text(vec, "code_challenge_method")!!
            val ok = pkceVerify(text(vec, "code_verifier")!!, text(vec, "code_challenge")!!, method, method == "plain")
            assertEquals(text(vec, "expected") == "match", ok, text(vec, "id"))
        }
        assertThrows(IdflowException::class.java) { pkceGenerateVerifier(12u) }
        assertEquals(64, pkceGenerate().verifier.length)
    }

    @Test
    fun testJwsVectors() {
        val anyKey = Key.fromSecret(ByteArray(64) { 7 })
        for (file in listOf("jws_rfc7515.json", "jws_rfc7520.json", "jws_rfc8037.json", "jws_rfc7797.json")) {
            for (vec in Vectors.list(file)) {
                val alg = text(vec, "alg")!!
                val expected = text(vec, "expected")!!
                val compact = text(vec, "compact")
                if (expected == "reject") {
                    assertThrows(IdflowException::class.java) { jwtVerifyJws(compact!!, anyKey, listOf("HS256")) }
                    continue
                }
                val key = Key.fromJwk(vec["key"]!!.toString())
                if (expected == "reject_unless_b64_supported") {
                    assertThrows(IdflowException::class.java) { jwtVerifyJws(compact!!, key, listOf(alg)) }
                    continue
                }
                val input = text(vec, "signing_input")!!.toByteArray()
                val sig = Vectors.b64u(text(vec, "signature_b64u")!!)
                key.verifyBytes(alg, input, sig)
                val detached = (vec["detached_payload"] as? kotlinx.serialization.json.JsonPrimitive)?.content == "true"
                if (compact != null && !detached) {
                    assertEquals(text(vec, "payload"), jwtVerifyJws(compact, key, listOf(alg)).payload.toString(Charsets.UTF_8))
                }
                if ((vec["deterministic"] as kotlinx.serialization.json.JsonPrimitive).content == "true") {
                    assertTrue(sig.contentEquals(key.signBytes(alg, input)), text(vec, "id"))
                }
            }
        }
        for (vec in Vectors.list("jwk_thumbprint_rfc7638.json")) {
            assertEquals(text(vec, "thumbprint_sha256"), Key.fromJwk(vec["jwk"]!!.toString()).thumbprint())
        }
    }

    @Test
    fun testSignVerifyEveryAlgorithm() {
        val exp = System.currentTimeMillis() / 1000 + 600
        for (alg in algorithms()) {
            val key = Key.generate(alg)
            val token = jwtSign("""{"sub":"u1","exp":$exp}""", key)
            val verifier = if (alg.startsWith("HS")) key else key.publicKey()
            val claims = jwtVerify(token, verifier, VerifyOptions(algorithms = listOf(alg)))
            assertTrue(claims.contains("\"sub\":\"u1\""), alg)
        }
    }
}

class FlowTests {
    @Test
    fun testFlowEngineErrors(): Unit = runBlocking {
        val key = Key.generate("ES256")
        assertThrows(IdflowException::class.java) { FlowEngine("""{"projectId":"x"}""", key) }
        val project = """{"projectId":"local","baseUrl":"http://127.0.0.1:8080","flows":["sign-up-or-in.json"]}"""
        FlowEngine(project, key, File("../tests/flows").path).use { engine ->
            assertTrue(engine.start("sign-up-or-in").contains("\"waiting\""))
        }
    }

    @Test
    fun testPasswordSignInFlow(): Unit = runBlocking {
        val dir = File("../tests/flows")
        val project = File(dir, "password-project.json").readText()
        FlowEngine(project, Key.generate("ES256"), dir.path).use { engine ->
            suspend fun answer(interaction: String, password: String): kotlinx.serialization.json.JsonObject {
                val started = Vectors.json(engine.start("password")) as kotlinx.serialization.json.JsonObject
                val input = """{"email":"ann@example.com","password":"$password"}"""
                val executionId = (started["executionId"] as kotlinx.serialization.json.JsonPrimitive).content
                return Vectors.json(engine.next(executionId, "welcome", interaction, input)) as kotlinx.serialization.json.JsonObject
            }
            val status = { r: kotlinx.serialization.json.JsonObject -> (r["status"] as kotlinx.serialization.json.JsonPrimitive).content }
            assertEquals("completed", status(answer("signUp", "correct horse battery")))
            val wrong = answer("signIn", "correct horse batterz")
            assertEquals("invalid_credentials", ((wrong["error"] as kotlinx.serialization.json.JsonObject)["code"] as kotlinx.serialization.json.JsonPrimitive).content)
            assertEquals("completed", status(answer("signIn", "correct horse battery")))
            val users = Vectors.json(engine.searchUsers("ann")) as kotlinx.serialization.json.JsonArray
            val userId = ((users[0] as kotlinx.serialization.json.JsonObject)["userId"] as kotlinx.serialization.json.JsonPrimitive).content
            assertTrue(engine.hasPassword(userId))
            assertThrows(IdflowException.WeakPassword::class.java) { runBlocking { engine.setPassword(userId, "short") } }
            engine.removePassword(userId)
            assertFalse(engine.hasPassword(userId))
            engine.signOutEverywhere(userId)
            assertThrows(IdflowException.UserNotFound::class.java) { runBlocking { engine.signOutEverywhere("U-nobody") } }
        }
    }

    /** RFC 6238 with the JDK's HMAC-SHA1: what an authenticator app computes. */
    private fun totp(base32: String, time: Long): String {
        val alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
        var bits = 0L
        var n = 0
        val key = java.io.ByteArrayOutputStream()
        for (c in base32.trimEnd('=')) {
            bits = (bits shl 5) or alphabet.indexOf(c).toLong()
            n += 5
            if (n >= 8) { n -= 8; key.write(((bits shr n) and 0xFF).toInt()) }
        }
        val mac = javax.crypto.Mac.getInstance("HmacSHA1")
        mac.init(javax.crypto.spec.SecretKeySpec(key.toByteArray(), "HmacSHA1"))
        val h = mac.doFinal(java.nio.ByteBuffer.allocate(8).putLong(time / 30).array())
        val o = h[h.size - 1].toInt() and 0xF
        val v = ((h[o].toInt() and 0x7F) shl 24) or ((h[o + 1].toInt() and 0xFF) shl 16) or ((h[o + 2].toInt() and 0xFF) shl 8) or (h[o + 3].toInt() and 0xFF)
        return String.format("%06d", v % 1_000_000)
    }

    @Test
    fun testTotpFlow(): Unit = runBlocking {
        // RFC 6238 Appendix B first, so the helper is known right.
        assertEquals("287082", totp("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ", 59))
        val dir = File("../tests/flows")
        val project = File(dir, "password-project.json").readText().replace(Regex("\"flows\": \\[[^]]*]"), "\"flows\": [\"totp.json\"]")
        FlowEngine(project, Key.generate("ES256"), dir.path).use { engine ->
            val field = { o: kotlinx.serialization.json.JsonElement?, k: String -> ((o as kotlinx.serialization.json.JsonObject)[k] as kotlinx.serialization.json.JsonPrimitive).content }
            val userId = field(Vectors.json(engine.createUser("ann@example.com")), "userId")
            engine.setPassword(userId, "a long enough secret")
            suspend fun signIn(): Pair<String, kotlinx.serialization.json.JsonObject> {
                val started = Vectors.json(engine.start("totp"))
                val executionId = field(started, "executionId")
                val r = Vectors.json(engine.next(executionId, "welcome", "submit", """{"email":"ann@example.com","password":"a long enough secret"}""")) as kotlinx.serialization.json.JsonObject
                return executionId to r
            }
            val (execution, scan) = signIn()
            assertEquals("scan", field(scan, "stepId"))
            val shown = (scan["screen"] as kotlinx.serialization.json.JsonObject)["totp"]
            val secret = field(shown, "secret")
            assertTrue(field(shown, "uri").startsWith("otpauth://totp/local:ann%40example.com?secret=$secret"))
            val now = System.currentTimeMillis() / 1000
            val recovery = Vectors.json(engine.next(execution, "scan", "submit", """{"code":"${totp(secret, now)}"}""")) as kotlinx.serialization.json.JsonObject
            assertEquals(10, ((recovery["screen"] as kotlinx.serialization.json.JsonObject)["recoveryCodes"] as kotlinx.serialization.json.JsonArray).size)
            assertEquals("completed", field(Vectors.json(engine.next(execution, "recovery", "continue", "{}")), "status"))
            assertTrue(engine.hasTotp(userId))
            assertEquals(10u, engine.recoveryCodesLeft(userId))
            val (again, ask) = signIn()
            assertEquals("ask-code", field(ask, "stepId"))
            val replay = Vectors.json(engine.next(again, "ask-code", "submit", """{"code":"${totp(secret, now)}"}""")) as kotlinx.serialization.json.JsonObject
            assertEquals("invalid_code", field(replay["error"], "code"))
            assertEquals("completed", field(Vectors.json(engine.next(again, "ask-code", "submit", """{"code":"${totp(secret, now + 30)}"}""")), "status"))
            engine.removeTotp(userId)
            assertFalse(engine.hasTotp(userId))
        }
    }

    @Test
    fun testPasskeyCeremonyOptions(): Unit = runBlocking {
        // The JSON an app hands to Credential Manager (Kotlin) or ASAuthorization (Swift).
        val dir = File("../tests/flows")
        val project = File(dir, "password-project.json").readText()
            .replace(Regex("\"flows\": \\[[^]]*]"), "\"flows\": [\"passkey.json\"]")
            .replace("http://127.0.0.1:8080", "https://id.example.com")
        FlowEngine(project, Key.generate("ES256"), dir.path).use { engine ->
            val obj = { e: kotlinx.serialization.json.JsonElement? -> e as kotlinx.serialization.json.JsonObject }
            val text = { e: kotlinx.serialization.json.JsonElement? -> (e as kotlinx.serialization.json.JsonPrimitive).content }
            val started = obj(Vectors.json(engine.start("passkey")))
            val executionId = text(started["executionId"])
            val get = obj(Vectors.json(engine.next(executionId, "welcome", "usePasskey", "{}")))
            val passkey = obj(obj(get["screen"])["passkey"])
            assertEquals("get", text(passkey["ceremony"]))
            assertEquals("id.example.com", text(obj(passkey["publicKey"])["rpId"]))
            val refused = obj(Vectors.json(engine.next(executionId, "get", "use", """{"credential":"{}"}""")))
            assertEquals("invalid_credentials", text(obj(refused["error"])["code"]))
        }
    }

    @Test
    fun testValidateFlow() {
        val dir = File("../tests/flows")
        assertEquals(0, validateFlow(File(dir, "random-user.json").readText()).size)
        val expected = Vectors.json(File(dir, "invalid.expected.json").readText()) as kotlinx.serialization.json.JsonObject
        assertEquals(
            (expected["problems"] as kotlinx.serialization.json.JsonArray).size,
            validateFlow(File(dir, "invalid.json").readText()).size,
        )
    }
}
