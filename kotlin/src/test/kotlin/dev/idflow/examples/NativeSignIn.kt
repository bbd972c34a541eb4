package dev.idflow.examples

import dev.idflow.OidcClient
import dev.idflow.core.ClientSettings
import dev.idflow.core.Session
import dev.idflow.SessionEvent
import dev.idflow.SessionListener
import dev.idflow.SessionManager
import dev.idflow.SessionStorage
import dev.idflow.oidcDiscover

// Sign-in in an Android app through its own redirect (RFC 8252): register
// com.example.app:/oauth2redirect with the provider and as the app's intent
// filter. The storage is the app's (Keystore-encrypted preferences).
class NativeSignIn(private val manager: SessionManager) {
    // Step 1: the URL to open in a Custom Tab. The pending request (state,
    // nonce, PKCE verifier) is kept in the storage, not in this object.
    suspend fun start(): String = manager.begin()

    // Step 2: the redirect the OS hands the app, in whichever process runs
    // now (Android may have killed the one that started). A redirect with no
    // sign-in pending, or for another one, is refused: InvalidRequest.
    suspend fun finish(redirect: String): Session = manager.complete(redirect)

    // For API calls: refreshed first when due, one refresh at a time for
    // every manager of this client. IdflowException.InvalidGrant: signed out.
    suspend fun authorization(): String = "Bearer ${manager.accessToken()}"
}

suspend fun nativeSignIn(discoveryUrl: String, storage: SessionStorage, onSignedOut: (String) -> Unit): NativeSignIn {
    val client: OidcClient = oidcDiscover(
        discoveryUrl,
        ClientSettings(clientId = "native", redirectUri = "com.example.app:/oauth2redirect", scopes = listOf("openid", "email", "offline_access")),
    )
    val manager = SessionManager(client, storage)
    manager.setListener(object : SessionListener {
        override fun onEvent(event: SessionEvent) {
            if (event is SessionEvent.SignedOut) onSignedOut(event.message)
        }
    })
    return NativeSignIn(manager)
}
