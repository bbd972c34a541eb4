// The Android library module of idflow (an AAR): the Kotlin bindings of
// kotlin/src/main/kotlin plus the core built by the NDK for each ABI.
// A recipe: it has not been built where idflow is developed (no Android SDK
// or NDK there). See android/README.md.
pluginManagement {
    repositories {
        google()
        mavenCentral()
        gradlePluginPortal()
    }
}
dependencyResolutionManagement {
    repositories {
        google()
        mavenCentral()
    }
}
rootProject.name = "idflow-android"
