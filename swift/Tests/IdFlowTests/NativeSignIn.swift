import IdFlow

// Sign-in in an iOS app through its own redirect (RFC 8252): register
// com.example.app:/oauth2redirect with the provider and give its scheme to
// ASWebAuthenticationSession. The storage is the app's (the Keychain).
final class NativeSignIn: Sendable {
    let manager: SessionManager

    init(client: OidcClient, storage: SessionStorage, onSignedOut: @escaping @Sendable (String) -> Void) throws {
        manager = try SessionManager(client: client, storage: storage)
        manager.setListener(listener: SignedOutListener(onSignedOut))
    }

    // Step 1: the URL to open. The pending request (state, nonce, PKCE
    // verifier) is kept in the storage, not in this object.
    func start() async throws -> String { try await manager.begin() }

    // Step 2: the callback URL ASWebAuthenticationSession hands back, or the
    // one the app is opened with after iOS ended it. A redirect with no
    // sign-in pending, or for another one, is refused: InvalidRequest.
    func finish(redirect: String) async throws -> Session { try await manager.complete(callback: redirect) }

    // For API calls: refreshed first when due, one refresh at a time for
    // every manager of this client. IdflowError.InvalidGrant: signed out.
    func authorization() async throws -> String {
        let token = try await manager.accessToken()
        return "Bearer \(token)"
    }
}

private final class SignedOutListener: SessionListener {
    let handler: @Sendable (String) -> Void
    init(_ handler: @escaping @Sendable (String) -> Void) { self.handler = handler }

    func onEvent(event: SessionEvent) {
        if case .signedOut(_, let message) = event { handler(message) }
    }
}
