package dev.idflow

import dev.idflow.core.*
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.async
import kotlinx.coroutines.awaitAll
import kotlinx.coroutines.coroutineScope
import kotlinx.coroutines.runBlocking
import kotlinx.serialization.json.jsonObject
import kotlinx.serialization.json.jsonPrimitive
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertNotEquals
import org.junit.jupiter.api.Assertions.assertNotNull
import org.junit.jupiter.api.Assertions.assertThrows
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import dev.idflow.examples.nativeSignIn
import java.io.File
import java.net.ServerSocket
import java.net.URI
import java.net.http.HttpClient
import java.net.http.HttpRequest
import java.net.http.HttpResponse
import java.nio.file.Files

/**
 * The app's storage double (a Keychain / Keystore wrapper on a device):
 * `failing` makes `load` throw (a keystore before first unlock), `broken`
 * makes `save` throw.
 */
class MemorySessionStorage(initial: String? = null) : SessionStorage {
    @Volatile var value: String? = initial
    @Volatile var broken = false
    @Volatile var failing = false

    override fun load(): String? {
        if (failing) throw IdflowException.Storage("keystore locked")
        return value
    }

    override fun save(session: String) {
        if (broken) throw IllegalStateException("keystore locked")
        value = session
    }

    override fun clear() {
        value = null
    }
}

/** OidcClient against a real OP: `idflow serve` on 127.0.0.1 (the e2e project). */
class OidcClientTest {
    private val http: HttpClient = HttpClient.newBuilder().followRedirects(HttpClient.Redirect.NEVER).build()

    private fun startServer(): Pair<Process, String> {
        val bin = File(System.getProperty("jna.library.path"), "idflow")
        assertTrue(bin.canExecute(), "build the idflow binary first: $bin")
        val port = ServerSocket(0).use { it.localPort }
        val db = Files.createTempDirectory("idflow-kt").resolve("idflow.db").toString()
        val base = "http://127.0.0.1:$port"
        val process = ProcessBuilder(bin.path, "serve", "--config", "../tests/e2e/project.json", "--db", db, "--addr", "127.0.0.1:$port", "--base-url", base)
            .redirectErrorStream(true)
            .start()
        val reader = process.inputStream.bufferedReader()
        while (true) {
            val line = reader.readLine() ?: error("idflow serve exited")
            if (line.startsWith("database:")) break
        }
        Thread { runCatching { reader.forEachLine { } } }.apply { isDaemon = true }.start()
        return process to base
    }

    /** Runs `block` with `idflow serve` up at its base URL, and stops it after. */
    private fun withServer(block: suspend (String) -> Unit): Unit = runBlocking {
        val (server, base) = startServer()
        try {
            block(base)
        } finally {
            server.destroy()
            server.waitFor()
        }
    }

    private fun post(url: String, json: String, cookie: String): String =
        http.send(
            HttpRequest.newBuilder(URI(url)).header("Content-Type", "application/json").header("Cookie", cookie)
                .POST(HttpRequest.BodyPublishers.ofString(json)).build(),
            HttpResponse.BodyHandlers.ofString(),
        ).body()

    /**
     * The user's browser: authorize → flow API → the delivery of the answer
     * (only to the browser that authorized, by its cookie) → the callback URL.
     */
    private fun browse(base: String, authorizeUrl: String, email: String): String {
        val r = http.send(HttpRequest.newBuilder(URI(authorizeUrl)).GET().build(), HttpResponse.BodyHandlers.discarding())
        val location = r.headers().firstValue("location").get()
        if (!location.contains("/login/")) return location
        val cookie = r.headers().allValues("set-cookie").first { it.startsWith("idflow_browser=") }.substringBefore(';')
        val request = location.substringAfter("request=")
        val s = Vectors.json(post("$base/v1/flow/start", """{"request":"$request"}""", cookie)).jsonObject
        val d = Vectors.json(
            post(
                "$base/v1/flow/next",
                """{"executionId":"${s["executionId"]!!.jsonPrimitive.content}","executionSecret":"${s["executionSecret"]!!.jsonPrimitive.content}",""" +
                    """"stepId":"welcome","interactionId":"submit","input":{"email":"$email"}}""",
                cookie,
            ),
        ).jsonObject
        val complete = d["redirect"]!!.jsonObject["url"]!!.jsonPrimitive.content
        val done = http.send(HttpRequest.newBuilder(URI(complete)).header("Cookie", cookie).GET().build(), HttpResponse.BodyHandlers.discarding())
        assertEquals(302, done.statusCode(), complete)
        return done.headers().firstValue("location").get()
    }

    @Test
    fun codeFlowRefreshRevokeAndErrors(): Unit = withServer { base ->
        val settings = ClientSettings(clientId = "e2e", redirectUri = "http://127.0.0.1:5555/callback", scopes = listOf("openid", "email", "offline_access"))
        oidcDiscover("$base/e2e/.well-known/openid-configuration", settings).use { client ->
            val request = client.authorizationRequest()
            assertNotNull(request.codeVerifier)
            val callback = browse(base, request.url, "kotlin-rp@example.com")
            val tokens = client.handleCallback(callback, request)
            val claims = Vectors.json(tokens.claimsJson!!).jsonObject
            assertEquals("kotlin-rp@example.com", claims["email"]!!.jsonPrimitive.content)
            assertEquals(request.nonce, claims["nonce"]!!.jsonPrimitive.content)
            val info = Vectors.json(client.userinfo(tokens.accessToken)).jsonObject
            assertEquals(claims["sub"], info["sub"])
            val refreshed = client.refresh(tokens.refreshToken!!)
            assertNotEquals(tokens.refreshToken, refreshed.refreshToken)
            client.revoke(refreshed.refreshToken!!, "refresh_token")
            assertThrows(IdflowException.InvalidGrant::class.java) { runBlocking { client.refresh(refreshed.refreshToken!!) } }
            assertThrows(IdflowException.InvalidRequest::class.java) { client.parseCallback("$callback&x=1".replace("state=", "state=x"), request.state) }
            val silent = client.authorizationRequest(AuthorizationParams(prompt = listOf("none")))
            assertThrows(IdflowException.LoginRequired::class.java) {
                runBlocking { client.handleCallback(browse(base, silent.url, "k@example.com"), silent) }
            }
            assertTrue(client.endSessionUrl(tokens.idToken, "http://127.0.0.1/logged-out", "bye").startsWith("$base/oauth2/v1/logout?"))
        }
        assertThrows(IdflowException.InvalidIssuer::class.java) {
            runBlocking {
                oidcDiscover("$base/e2e/.well-known/openid-configuration", ClientSettings(clientId = "e2e", redirectUri = "http://127.0.0.1/cb", issuer = "https://other.example"))
            }
        }
        assertThrows(IdflowException.Config::class.java) { OidcClient(ClientSettings(clientId = "e2e", redirectUri = "http://127.0.0.1/cb")) }
    }

    @Test
    fun nativeSignInThroughAPrivateUseRedirectSurvivesProcessDeath(): Unit = withServer { base ->
        val discovery = "$base/e2e/.well-known/openid-configuration"
        val storage = MemorySessionStorage()
        val signedOut = mutableListOf<String>()
        // The process that starts the sign-in opens the URL, then dies.
        val url = nativeSignIn(discovery, storage) { signedOut.add(it) }.start()
        assertTrue(url.contains("redirect_uri=com.example.app%3A%2Foauth2redirect"), url)
        val redirect = browse(base, url, "kotlin-native@example.com")
        assertTrue(redirect.startsWith("com.example.app:/oauth2redirect?code="), redirect)
        // The OS hands the redirect to a new process: new client, new manager.
        val app = nativeSignIn(discovery, storage) { signedOut.add(it) }
        val session = app.finish(redirect)
        assertEquals("kotlin-native@example.com", Vectors.json(session.claimsJson).jsonObject["email"]!!.jsonPrimitive.content)
        assertThrows(IdflowException.InvalidRequest::class.java, { runBlocking { app.finish(redirect) } }, "the pending request is spent")
        oidcDiscover(discovery, ClientSettings(clientId = "native", redirectUri = "com.example.app:/oauth2redirect")).use { client ->
            val bearer = app.authorization()
            assertEquals(session.accessToken, bearer.removePrefix("Bearer "))
            val info = Vectors.json(client.userinfo(session.accessToken)).jsonObject
            assertEquals("kotlin-native@example.com", info["email"]!!.jsonPrimitive.content)
            val manager = SessionManager(client, storage)
            val refreshed = manager.refresh()
            assertNotEquals(session.refreshToken, refreshed.refreshToken)
            // The provider accepts the app's private-use post-logout redirect.
            val logout = client.endSessionUrl(refreshed.idToken, "com.example.app:/signed-out", "s1")
            val answer = http.send(HttpRequest.newBuilder(URI(logout)).GET().build(), HttpResponse.BodyHandlers.ofString())
            assertTrue(
                answer.statusCode() == 200 || answer.headers().firstValue("location").orElse("").startsWith("com.example.app:/signed-out"),
                "${answer.statusCode()} ${answer.body()}",
            )
            manager.signOut()
            assertEquals(null, storage.value)
            assertThrows(IdflowException.InvalidGrant::class.java, { runBlocking { client.refresh(refreshed.refreshToken!!) } }, "signOut revoked")
        }
        assertEquals(emptyList<String>(), signedOut, "another manager's sign-out is heard at its next refresh, not before")
    }

    @Test
    fun twoManagersRefreshingAtOnceNeverSignOut(): Unit = withServer { base ->
        val discovery = "$base/e2e/.well-known/openid-configuration"
        val settings = ClientSettings(clientId = "native", redirectUri = "com.example.app:/oauth2redirect", scopes = listOf("openid", "email", "offline_access"))
        val storage = MemorySessionStorage()
        // An app and its extension: two clients, two managers, one storage.
        oidcDiscover(discovery, settings).use { appClient ->
            oidcDiscover(discovery, settings).use { extensionClient ->
                val app = SessionManager(appClient, storage)
                val extension = SessionManager(extensionClient, storage)
                val heard = Heard()
                extension.setListener(heard)
                app.complete(browse(base, app.begin(), "kotlin-race@example.com"))
                var last = app.session()!!
                repeat(50) { round ->
                    val (a, b) = coroutineScope {
                        listOf(async(Dispatchers.IO) { app.refresh() }, async(Dispatchers.IO) { extension.refresh() }).awaitAll()
                    }
                    assertEquals(a, b, "round $round: both hold the same renewed session")
                    assertNotEquals(last.refreshToken, a.refreshToken, "round $round: rotated")
                    appClient.userinfo(a.accessToken)
                    last = a
                }
                assertTrue(heard.all.none { it is SessionEvent.SignedOut }, "${heard.all}")
                assertEquals(app.session(), extension.session())
            }
        }
    }

    @Test
    fun sessionManagerSignsInRefreshesOnceAndSignsOutOnInvalidGrant(): Unit = withServer { base ->
        val settings = ClientSettings(clientId = "e2e", redirectUri = "http://127.0.0.1:5555/callback", scopes = listOf("openid", "email", "offline_access"))
        val discovery = "$base/e2e/.well-known/openid-configuration"
        oidcDiscover(discovery, settings).use { client ->
            val storage = MemorySessionStorage()
            val manager = SessionManager(client, storage, SessionSettings(refreshMargin = 3600.0))
            assertEquals(SessionStatus.SIGNED_OUT, manager.status())
            assertThrows(IdflowException.LoginRequired::class.java) { runBlocking { manager.accessToken() } }
            val request = client.authorizationRequest()
            val session = manager.complete(browse(base, request.url, "kotlin-session@example.com"), request)
            assertEquals("kotlin-session@example.com", Vectors.json(session.claimsJson).jsonObject["email"]!!.jsonPrimitive.content)
            assertEquals(SessionStatus.VALID, manager.status())
            assertTrue(storage.value!!.contains(session.refreshToken!!))
            // Eight concurrent callers: they share a refresh (or a late one refreshes
            // again), and no refresh token is used twice, or the provider would end
            // the session (the single-flight count itself is checked in Rust, Python
            // and Node, where the provider can be slowed down).
            val tokens = coroutineScope { (1..8).map { async(Dispatchers.IO) { manager.accessToken() } }.awaitAll() }
            assertTrue(session.accessToken !in tokens)
            assertEquals(SessionStatus.VALID, manager.status())
            val rotated = manager.session()!!
            assertTrue(rotated.accessToken in tokens)
            assertNotEquals(session.refreshToken, rotated.refreshToken)
            // The app restarts: a new manager over the same storage.
            val again = SessionManager(client, storage)
            assertTrue(again.isValid())
            assertEquals(rotated.accessToken, again.accessToken())
            // A failing Keystore is a Storage error; nothing is lost.
            storage.broken = true
            assertThrows(IdflowException.Storage::class.java) { runBlocking { manager.refresh() } }
            storage.broken = false
            val held = manager.session()!!
            assertTrue(storage.value!!.contains(held.refreshToken!!))
            // The provider ends the session: the next refresh signs out.
            client.revoke(held.refreshToken!!, "refresh_token")
            assertThrows(IdflowException.InvalidGrant::class.java) { runBlocking { manager.accessToken() } }
            assertEquals(null, storage.value)
            assertEquals(SessionStatus.SIGNED_OUT, manager.status())
        }
    }

    @Test
    fun socialLoginByApiAndKeptProviderTokens(): Unit = withServer { base ->
        val project = """{"projectId":"down","baseUrl":"http://127.0.0.1:7002","redirectUrls":["http://127.0.0.1:7002/after"],""" +
            """"oauthProviders":[{"name":"acme",""" +
            """"clientId":"social-rp","clientSecret":"social-rp-secret-0123456789",""" +
            """"discoveryUrl":"$base/e2e/.well-known/openid-configuration","scopes":["openid","email"],"manageProviderTokens":true}]}"""
        providerOpen(project).use { down ->
            assertEquals("http://127.0.0.1:7002/down", down.issuer())
            val start = down.oauthAuthorize("acme", "http://127.0.0.1:7002/after")
            assertTrue(start.url.startsWith("$base/oauth2/v1/authorize?"), start.url)
            assertTrue(start.codeVerifier.length >= 43 && !start.url.contains(start.codeVerifier))
            val callback = browse(base, start.url, "kotlin-social@example.com")
            assertTrue(callback.startsWith("http://127.0.0.1:7002/v1/oauth/callback?"), callback)
            val back = down.handle("GET", callback, emptyList(), ByteArray(0), "127.0.0.1")
            assertEquals(302.toUShort(), back.status)
            val location = back.headers.first { it.name.equals("location", ignoreCase = true) }.value
            assertTrue(location.startsWith("http://127.0.0.1:7002/after?code="), location)
            val code = location.substringAfter("code=")
            // Another login's verifier (a stolen code) gets nothing, and spends the code.
            val other = down.oauthAuthorize("acme", "http://127.0.0.1:7002/after")
            val otherBack = down.handle("GET", browse(base, other.url, "kotlin-social@example.com"), emptyList(), ByteArray(0))
            val stolen = otherBack.headers.first { it.name.equals("location", ignoreCase = true) }.value.substringAfter("code=")
            assertThrows(IdflowException.InvalidGrant::class.java) { down.oauthExchange(stolen, start.codeVerifier) }
            assertThrows(IdflowException.InvalidGrant::class.java) { down.oauthExchange(stolen, other.codeVerifier) }
            val auth = Vectors.json(down.oauthExchange(code, start.codeVerifier)).jsonObject
            val user = auth["user"]!!.jsonObject
            assertEquals("kotlin-social@example.com", user["email"]!!.jsonPrimitive.content)
            assertThrows(IdflowException.InvalidGrant::class.java) { down.oauthExchange(code, start.codeVerifier) }
            val kept = Vectors.json(down.providerToken(user["userId"]!!.jsonPrimitive.content, "acme")).jsonObject
            val info = http.send(
                HttpRequest.newBuilder(URI("$base/oauth2/v1/userinfo"))
                    .header("Authorization", "Bearer ${kept["accessToken"]!!.jsonPrimitive.content}").GET().build(),
                HttpResponse.BodyHandlers.ofString(),
            )
            assertEquals(200, info.statusCode(), info.body())
            assertThrows(IdflowException.UserNotFound::class.java) { runBlocking { down.providerToken("U-nobody", "acme") } }
            assertThrows(IdflowException.InvalidRequest::class.java) { runBlocking { down.oauthAuthorize("nobody", "http://127.0.0.1:7002/after") } }
            // Only approved redirect URLs.
            val unapproved = assertThrows(IdflowException.InvalidRequest::class.java) {
                runBlocking { down.oauthAuthorize("acme", "https://attacker.example/after") }
            }
            assertTrue(unapproved.message!!.contains("redirectUrls"), unapproved.message)
        }
    }
}
