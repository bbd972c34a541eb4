package dev.idflow

import kotlinx.serialization.json.Json
import kotlinx.serialization.json.JsonElement
import kotlinx.serialization.json.JsonObject
import kotlinx.serialization.json.jsonArray
import kotlinx.serialization.json.jsonObject
import java.io.File
import java.util.Base64

object Vectors {
    private val dir: File = File(System.getProperty("idflow.vectors.dir") ?: "../tests/vectors")

    fun load(name: String): JsonObject = Json.parseToJsonElement(File(dir, name).readText()).jsonObject

    fun list(name: String): List<JsonObject> = load(name)["vectors"]!!.jsonArray.map { it.jsonObject }

    fun b64u(text: String): ByteArray = Base64.getUrlDecoder().decode(text)

    fun parseObject(text: String): JsonObject? =
        try { Json.parseToJsonElement(text) as? JsonObject } catch (e: Exception) { null }

    fun json(text: String): JsonElement = Json.parseToJsonElement(text)
}
