package dev.idflow

import dev.idflow.core.*
import com.sun.net.httpserver.HttpServer
import kotlinx.coroutines.runBlocking
import kotlinx.serialization.json.jsonObject
import kotlinx.serialization.json.jsonPrimitive
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertThrows
import org.junit.jupiter.api.Test
import java.io.File
import java.net.InetSocketAddress

class FlowEngineTest {
    @Test
    fun documentedConnectorFlow(): Unit = runBlocking {
        val api = HttpServer.create(InetSocketAddress("127.0.0.1", 0), 0).apply {
            createContext("/api/users") { ex ->
                val bytes = """{"email":"kotlin@example.com","date_of_birth":"1979-10-03"}""".toByteArray()
                ex.responseHeaders.add("Content-Type", "application/json")
                ex.sendResponseHeaders(200, bytes.size.toLong())
                ex.responseBody.use { it.write(bytes) }
            }
            start()
        }
        try {
            val project = """{"projectId":"local","baseUrl":"http://127.0.0.1:8080",
                "connectors":[{"id":"random","type":"http","baseUrl":"http://127.0.0.1:${api.address.port}/api"}],
                "flows":["random-user.json","sign-up-or-in.json"]}"""
            val key = Key.generate("ES256")
            FlowEngine(project, key, File("../tests/flows").path).use { engine ->
                val r = Vectors.json(engine.start("random-user")).jsonObject
                assertEquals("completed", r["status"]!!.jsonPrimitive.content)
                val jwt = r["authInfo"]!!.jsonObject["sessionJwt"]!!.jsonPrimitive.content
                val claims = Vectors.json(jwtVerify(jwt, key.publicKey(), VerifyOptions(algorithms = listOf("ES256"), audience = listOf("local")))).jsonObject
                assertEquals("1979-10-03", claims["dob"]!!.jsonPrimitive.content)
                assertEquals("local", claims["aud"]!!.jsonPrimitive.content)
                val w = Vectors.json(engine.start("sign-up-or-in")).jsonObject
                assertEquals("waiting", w["status"]!!.jsonPrimitive.content)
                val done = Vectors.json(engine.next(w["executionId"]!!.jsonPrimitive.content, "welcome", "submit", """{"email":"k@example.com"}""")).jsonObject
                assertEquals("completed", done["status"]!!.jsonPrimitive.content)
                val t = Vectors.json(engine.testConnector("random", "GET", "/users")).jsonObject
                assertEquals(200, t["status"]!!.jsonPrimitive.content.toInt())
                assertThrows(IdflowException.FlowNotFound::class.java) { runBlocking { engine.start("nope") } }
                val user = Vectors.json(engine.createUser("Kay@Example.com", """{"name":"Kay"}""")).jsonObject
                val userId = user["userId"]!!.jsonPrimitive.content
                assertEquals("Kay", Vectors.json(engine.getUser(userId)).jsonObject["name"]!!.jsonPrimitive.content)
                assertThrows(IdflowException.UserExists::class.java) { runBlocking { engine.createUser("kay@example.com") } }
                engine.updateUser(userId, """{"status":"disabled"}""")
                assertEquals(1, Vectors.json(engine.searchUsers(status = "disabled")).let { it as kotlinx.serialization.json.JsonArray }.size)
                engine.deleteUser(userId)
                assertThrows(IdflowException.UserNotFound::class.java) { runBlocking { engine.getUser(userId) } }
            }
            assertThrows(IdflowException.Config::class.java) { FlowEngine("""{"projectId":"x"}""", key) }
        } finally {
            api.stop(0)
        }
    }
}
