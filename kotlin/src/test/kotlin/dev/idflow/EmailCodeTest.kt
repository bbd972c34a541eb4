package dev.idflow

import kotlinx.coroutines.runBlocking
import kotlinx.serialization.json.jsonObject
import kotlinx.serialization.json.jsonPrimitive
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertThrows
import org.junit.jupiter.api.Test
import java.io.File
import java.io.IOException
import java.net.InetAddress
import java.net.ServerSocket
import java.util.Collections
import kotlin.concurrent.thread

/** A small SMTP server on 127.0.0.1 (no TLS) that keeps each message's text. */
class SmtpInbox : AutoCloseable {
    private val server = ServerSocket(0, 50, InetAddress.getLoopbackAddress())
    val port: Int get() = server.localPort
    val messages: MutableList<String> = Collections.synchronizedList(mutableListOf())

    init {
        thread(isDaemon = true) {
            while (!server.isClosed) {
                val socket = try { server.accept() } catch (e: IOException) { break }
                thread(isDaemon = true) {
                    socket.use { s ->
                        val reader = s.getInputStream().bufferedReader()
                        val writer = s.getOutputStream().bufferedWriter()
                        fun reply(line: String) {
                            writer.write(line + "\r\n")
                            writer.flush()
                        }
                        reply("220 127.0.0.1 ESMTP test")
                        while (true) {
                            val line = reader.readLine() ?: break
                            when (line.substringBefore(' ').uppercase()) {
                                "DATA" -> {
                                    reply("354 end with .")
                                    val text = StringBuilder()
                                    while (true) {
                                        val l = reader.readLine() ?: break
                                        if (l == ".") break
                                        text.append(l).append('\n')
                                    }
                                    messages.add(text.toString())
                                    reply("250 queued")
                                }
                                "QUIT" -> {
                                    reply("221 bye")
                                    break
                                }
                                else -> reply("250 ok")
                            }
                        }
                    }
                }
            }
        }
    }

    fun lastCode(): String = Regex("Subject: .*?(\\d{6})").find(messages.last())!!.groupValues[1]

    /** The link in the newest message (quoted-printable decoded). */
    fun lastLink(): java.net.URI {
        val text = messages.last().replace(Regex("=\r?\n"), "")
            .replace(Regex("=([0-9A-F]{2})")) { it.groupValues[1].toInt(16).toChar().toString() }
        return java.net.URI(Regex("https?://\\S+").find(text)!!.value)
    }

    override fun close() = server.close()
}

/** Email one-time codes through tests/flows/email-code.json, as Rust, Python and Node run it. */
class EmailCodeTest {
    /** tests/flows/password-project.json with `flow` alone, mailing through `inbox`. */
    private fun engine(inbox: SmtpInbox, flow: String): FlowEngine {
        val dir = File("../tests/flows")
        val project = File(dir, "password-project.json").readText().replace(
            "\"flows\": [\"password.json\", \"change-password.json\"],",
            "\"flows\": [\"$flow\"], \"email\": {\"transport\": \"smtp\", \"from\": \"no-reply@example.com\", " +
                "\"smtp\": {\"host\": \"127.0.0.1\", \"port\": ${inbox.port}, \"tls\": \"none\"}},",
        )
        return FlowEngine(project, Key.generate("ES256"), dir.path)
    }

    private fun field(json: String, vararg path: String): String {
        var e = Vectors.json(json)
        for (p in path) e = e.jsonObject[p]!!
        return e.jsonPrimitive.content
    }

    @Test
    fun aMailedCodeSignsInOnceAndWrongCodesAreRefused(): Unit = runBlocking {
        SmtpInbox().use { inbox ->
            engine(inbox, "email-code.json").use { engine ->
                val started = engine.start("email-code")
                val execution = field(started, "executionId")
                val asked = engine.next(execution, "ask", "send", """{"email":"kim@example.com"}""")
                assertEquals("enter", field(asked, "stepId"))
                val code = inbox.lastCode()
                val wrong = if (code == "000000") "000001" else "000000"
                val refused = engine.next(execution, "enter", "signIn", """{"code":"$wrong"}""")
                assertEquals("invalid_code", field(refused, "error", "code"))
                val done = engine.next(execution, "enter", "signIn", """{"code":"$code"}""")
                assertEquals("completed", field(done, "status"))
                val user = Vectors.json(engine.searchUsers("kim@example.com")) as kotlinx.serialization.json.JsonArray
                assertEquals("true", user[0].jsonObject["verifiedEmail"]!!.jsonPrimitive.content)
            }
        }
    }

    @Test
    fun aMailedLinkSignsInOnlyWhereItWasAskedOrIsApprovedFromAnotherDevice(): Unit = runBlocking {
        SmtpInbox().use { inbox ->
            engine(inbox, "magic-link.json").use { engine ->
                suspend fun ask(email: String, how: String): Pair<String, String> {
                    val execution = field(engine.start("magic-link"), "executionId")
                    assertEquals("wait", field(engine.next(execution, "ask", how, """{"email":"$email"}"""), "stepId"))
                    val query = inbox.lastLink().rawQuery.split('&').associate { it.substringBefore('=') to it.substringAfter('=') }
                    assertEquals(execution, query["execution"])
                    return execution to query["link"]!!
                }
                // Same browser only: another device is refused, and the asking side signs in.
                val (one, token) = ask("lin@example.com", "send")
                assertThrows(IdflowException.AccessDenied::class.java) { runBlocking { engine.approveLink(one, token) } }
                assertEquals("completed", field(engine.next(one, "wait", "continue", """{"token":"$token"}"""), "status"))
                // Cross-device: approved once from elsewhere, then the asking side continues.
                val (two, token2) = ask("dee@example.com", "sendAnyDevice")
                engine.approveLink(two, token2)
                assertThrows(IdflowException.InvalidCode::class.java) { runBlocking { engine.approveLink(two, token2) } }
                assertEquals("completed", field(engine.next(two, "wait", "continue", "{}"), "status"))
            }
        }
    }
}
