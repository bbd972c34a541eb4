import dev.idflow.IdflowException
import dev.idflow.Key
import dev.idflow.core.ClientSettings
import dev.idflow.core.VerifyOptions
import dev.idflow.jwtSign
import dev.idflow.jwtVerify
import dev.idflow.oidcDiscover
import kotlinx.coroutines.runBlocking
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertNotNull
import org.junit.jupiter.api.Assertions.assertNull
import org.junit.jupiter.api.Assertions.assertThrows
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import java.net.URI
import java.net.http.HttpClient
import java.net.http.HttpRequest
import java.net.http.HttpResponse

/** An app that has idflow from Maven by its coordinates, and nothing else. */
class ConsumerTest {
    @Test
    fun theJarCarriesTheNativeLibrary() {
        assertNull(System.getProperty("jna.library.path"), "no library path: JNA loads the library from the jar")
        assertNull(System.getenv("LD_LIBRARY_PATH"))
        assertNotNull(javaClass.classLoader.getResource("linux-x86-64/libidflow_uniffi.so"), "the library is in the jar")
        val key = Key.generate("ES256")
        val token = jwtSign("""{"sub":"jvm","exp":${System.currentTimeMillis() / 1000 + 600}}""", key)
        val claims = jwtVerify(token, key.publicKey(), VerifyOptions(algorithms = listOf("ES256")))
        assertTrue(claims.contains("\"sub\":\"jvm\""), claims)
        assertThrows(IdflowException.UnsupportedAlgorithm::class.java) {
            jwtVerify(token, key.publicKey(), VerifyOptions(algorithms = listOf("RS256")))
        }
    }

    @Test
    fun discoveryAndAnAuthorizationRequestAgainstIdflowServe(): Unit = runBlocking {
        val base = System.getenv("IDFLOW_BASE") ?: error("dist/check.sh sets IDFLOW_BASE to its idflow serve")
        val settings = ClientSettings(clientId = "local", redirectUri = "http://127.0.0.1/callback")
        oidcDiscover("$base/local/.well-known/openid-configuration", settings).use { client ->
            val request = client.authorizationRequest()
            assertTrue(request.url.startsWith("$base/oauth2/v1/authorize?"), request.url)
            val http = HttpClient.newBuilder().followRedirects(HttpClient.Redirect.NEVER).build()
            val r = http.send(HttpRequest.newBuilder(URI(request.url)).GET().build(), HttpResponse.BodyHandlers.discarding())
            assertEquals(302, r.statusCode())
            assertTrue(r.headers().firstValue("location").get().contains("/login/"), "to the hosted sign-in page")
        }
    }
}
