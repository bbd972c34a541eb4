package dev.idflow

import dev.idflow.core.FlowProblem
import kotlinx.serialization.json.jsonArray
import kotlinx.serialization.json.jsonPrimitive
import kotlinx.serialization.json.contentOrNull
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import java.io.File

class FlowTest {
    private fun read(name: String) = File("../tests/flows/$name").readText()

    @Test
    fun validFlowsHaveNoProblems() {
        assertEquals(emptyList<FlowProblem>(), validateFlow(read("random-user.json")))
        assertEquals(emptyList<FlowProblem>(), validateFlow(read("sign-up-or-in.json")))
    }

    @Test
    fun everyProblemIsReported() {
        val problems = validateFlow(read("invalid.json"))
        val expected = Vectors.json(read("invalid.expected.json")).let { it as kotlinx.serialization.json.JsonObject }["problems"]!!.jsonArray
            .map { pair -> (pair.jsonArray[0].jsonPrimitive.contentOrNull ?: "") + "|" + pair.jsonArray[1].jsonPrimitive.content }
            .sorted()
        assertEquals(expected, problems.map { (it.step ?: "") + "|" + it.field }.sorted())
        assertTrue(problems.all { it.message.isNotEmpty() })
        assertTrue(validateFlow("{not json")[0].message.startsWith("the flow is not valid JSON"))
    }
}
