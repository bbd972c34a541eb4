import Foundation
import XCTest
#if canImport(CryptoKit)
import CryptoKit
#endif
@testable import IdFlow

private let vectorsDir = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().appendingPathComponent("tests/vectors")

private func load(_ name: String) throws -> [String: Any] {
    let data = try Data(contentsOf: vectorsDir.appendingPathComponent(name))
    return try JSONSerialization.jsonObject(with: data) as! [String: Any]
}

private func b64u(_ s: String) -> Data {
    var t = s.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
    while t.count % 4 != 0 { t += "=" }
    return Data(base64Encoded: t)!
}

private func jsonText(_ obj: Any) throws -> String {
    String(data: try JSONSerialization.data(withJSONObject: obj), encoding: .utf8)!
}

final class IdFlowTests: XCTestCase {
    func testErrorCodesMatchTheSharedList() throws {
        let codes = (try load("error_codes.json")["codes"] as! [[String: Any]]).map { $0["code"] as! String }
        XCTAssertEqual(codes, errorCodes())
        for code in codes {
            XCTAssertThrowsError(try debugRaise(code: code)) { error in
                let name = String(describing: error).split(separator: "(").first.map(String.init) ?? ""
                let camel = code.split(separator: "_").map { $0.prefix(1).uppercased() + $0.dropFirst() }.joined()
                XCTAssertTrue(name.hasSuffix(camel), "\(code) -> \(name)")
            }
        }
        XCTAssertThrowsError(try debugPanic()) { error in
            guard case IdflowError.Internal = error else { return XCTFail("expected Internal, got \(error)") }
        }
    }

    func testPkceVectors() throws {
        let doc = try load("pkce_rfc7636.json")
        for vec in doc["vectors"] as! [[String: Any]] {
            let method = vec["code_challenge_method"] as! String
            let ok = try pkceVerify(verifier: vec["code_verifier"] as! String, challenge: vec["code_challenge"] as! String,
                                    method: method, allowPlain: method == "plain")
            XCTAssertEqual(ok, (vec["expected"] as! String) == "match", vec["id"] as! String)
        }
        XCTAssertThrowsError(try pkceGenerateVerifier(length: 12))
        XCTAssertEqual(try pkceGenerate().verifier.count, 64)
    }

    func testJwsVectors() throws {
        let anyKey = try Key.fromSecret(secret: Data(repeating: 7, count: 64))
        for file in ["jws_rfc7515.json", "jws_rfc7520.json", "jws_rfc8037.json", "jws_rfc7797.json"] {
            for vec in try load(file)["vectors"] as! [[String: Any]] {
                let alg = vec["alg"] as! String
                let expected = vec["expected"] as! String
                let compact = vec["compact"] as? String
                if expected == "reject" {
                    XCTAssertThrowsError(try jwtVerifyJws(token: compact!, key: anyKey, algorithms: ["HS256"]))
                    continue
                }
                let key = try Key.fromJwk(jwk: try jsonText(vec["key"]!))
                if expected == "reject_unless_b64_supported" {
                    XCTAssertThrowsError(try jwtVerifyJws(token: compact!, key: key, algorithms: [alg]))
                    continue
                }
                let input = (vec["signing_input"] as! String).data(using: .utf8)!
                let sig = b64u(vec["signature_b64u"] as! String)
                try key.verifyBytes(alg: alg, data: input, signature: sig)
                if let c = compact, (vec["detached_payload"] as? Bool) != true {
                    let out = try jwtVerifyJws(token: c, key: key, algorithms: [alg])
                    XCTAssertEqual(String(data: out.payload, encoding: .utf8), vec["payload"] as? String)
                }
                if vec["deterministic"] as! Bool {
                    XCTAssertEqual(try key.signBytes(alg: alg, data: input), sig, vec["id"] as! String)
                }
            }
        }
        for vec in try load("jwk_thumbprint_rfc7638.json")["vectors"] as! [[String: Any]] {
            XCTAssertEqual(try Key.fromJwk(jwk: try jsonText(vec["jwk"]!)).thumbprint(), vec["thumbprint_sha256"] as? String)
        }
    }

    func testSignVerifyEveryAlgorithm() throws {
        let exp = Int(Date().timeIntervalSince1970) + 600
        for alg in algorithms() {
            let key = try Key.generate(alg: alg)
            let token = try jwtSign(claims: "{\"sub\":\"u1\",\"exp\":\(exp)}", key: key)
            let verifier = alg.hasPrefix("HS") ? key : try key.publicKey()
            let claims = try jwtVerify(token: token, key: verifier, options: VerifyOptions(algorithms: [alg]))
            XCTAssertTrue(claims.contains("\"sub\":\"u1\""), alg)
        }
    }
}

final class FlowTests: XCTestCase {
    func testFlowEngineErrors() async throws {
        let key = try Key.generate(alg: "ES256")
        XCTAssertThrowsError(try FlowEngine(project: "{\"projectId\":\"x\"}", key: key))
        let dir = vectorsDir.deletingLastPathComponent().appendingPathComponent("flows").path
        let engine = try FlowEngine(project: "{\"projectId\":\"local\",\"baseUrl\":\"http://127.0.0.1:8080\",\"flows\":[\"sign-up-or-in.json\"]}", key: key, baseDir: dir)
        let waiting = try await engine.start(flowId: "sign-up-or-in")
        XCTAssertTrue(waiting.contains("\"waiting\""))
    }

    func testPasswordSignInFlow() async throws {
        let dir = vectorsDir.deletingLastPathComponent().appendingPathComponent("flows")
        let project = try String(contentsOf: dir.appendingPathComponent("password-project.json"), encoding: .utf8)
        let engine = try FlowEngine(project: project, key: try Key.generate(alg: "ES256"), baseDir: dir.path)
        func answer(_ interaction: String, _ password: String) async throws -> [String: Any] {
            let started = try JSONSerialization.jsonObject(with: Data(try await engine.start(flowId: "password").utf8)) as! [String: Any]
            let input = "{\"email\":\"ann@example.com\",\"password\":\"\(password)\"}"
            let text = try await engine.next(executionId: started["executionId"] as! String, stepId: "welcome", interactionId: interaction, input: input)
            return try JSONSerialization.jsonObject(with: Data(text.utf8)) as! [String: Any]
        }
        let up = try await answer("signUp", "correct horse battery")
        XCTAssertEqual(up["status"] as? String, "completed")
        let wrong = try await answer("signIn", "correct horse batterz")
        XCTAssertEqual((wrong["error"] as? [String: Any])?["code"] as? String, "invalid_credentials")
        let signedIn = try await answer("signIn", "correct horse battery")
        XCTAssertEqual(signedIn["status"] as? String, "completed")
        let users = try JSONSerialization.jsonObject(with: Data(try await engine.searchUsers(text: "ann").utf8)) as! [[String: Any]]
        let userId = users[0]["userId"] as! String
        let hasPassword = try await engine.hasPassword(userId: userId)
        XCTAssertTrue(hasPassword)
        do {
            try await engine.setPassword(userId: userId, password: "short")
            XCTFail("a password shorter than minLength")
        } catch IdflowError.WeakPassword {}
        try await engine.removePassword(userId: userId)
        let removed = try await engine.hasPassword(userId: userId)
        XCTAssertFalse(removed)
        try await engine.signOutEverywhere(userId: userId)
        do {
            try await engine.signOutEverywhere(userId: "U-nobody")
            XCTFail("an unknown user")
        } catch IdflowError.UserNotFound {}
    }

    /// RFC 6238 with CryptoKit's HMAC-SHA1: what an authenticator app computes.
    private func totp(_ base32: String, _ time: UInt64) throws -> String {
        #if canImport(CryptoKit)
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")
        var bits: UInt64 = 0, n = 0
        var key = [UInt8]()
        for c in base32 where c != "=" {
            bits = (bits << 5) | UInt64(alphabet.firstIndex(of: c)!)
            n += 5
            if n >= 8 { n -= 8; key.append(UInt8((bits >> UInt64(n)) & 0xFF)) }
        }
        var counter = (time / 30).bigEndian
        let message = Data(bytes: &counter, count: 8)
        let h = Array(HMAC<Insecure.SHA1>.authenticationCode(for: message, using: SymmetricKey(data: key)))
        let o = Int(h[h.count - 1] & 0x0F)
        let v = (UInt32(h[o] & 0x7F) << 24) | (UInt32(h[o + 1]) << 16) | (UInt32(h[o + 2]) << 8) | UInt32(h[o + 3])
        return String(format: "%06u", v % 1_000_000)
        #else
        throw XCTSkip("CryptoKit is needed to compute TOTP codes")
        #endif
    }

    func testTotpFlow() async throws {
        // RFC 6238 Appendix B first, so the helper is known right.
        XCTAssertEqual(try totp("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ", 59), "287082")
        let dir = vectorsDir.deletingLastPathComponent().appendingPathComponent("flows")
        var project = try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("password-project.json"))) as! [String: Any]
        project["flows"] = ["totp.json"]
        let engine = try FlowEngine(project: try jsonText(project), key: try Key.generate(alg: "ES256"), baseDir: dir.path)
        func object(_ text: String) throws -> [String: Any] {
            try JSONSerialization.jsonObject(with: Data(text.utf8)) as! [String: Any]
        }
        let userId = try object(try await engine.createUser(loginId: "ann@example.com", fields: nil))["userId"] as! String
        try await engine.setPassword(userId: userId, password: "a long enough secret")
        func signIn() async throws -> (String, [String: Any]) {
            let started = try object(try await engine.start(flowId: "totp", input: nil))
            let executionId = started["executionId"] as! String
            let r = try object(try await engine.next(executionId: executionId, stepId: "welcome", interactionId: "submit", input: "{\"email\":\"ann@example.com\",\"password\":\"a long enough secret\"}"))
            return (executionId, r)
        }
        let (execution, scan) = try await signIn()
        XCTAssertEqual(scan["stepId"] as? String, "scan")
        let shown = (scan["screen"] as! [String: Any])["totp"] as! [String: Any]
        let secret = shown["secret"] as! String
        XCTAssertTrue((shown["uri"] as! String).hasPrefix("otpauth://totp/local:ann%40example.com?secret=\(secret)"))
        let now = UInt64(Date().timeIntervalSince1970)
        let first = try totp(secret, now), second = try totp(secret, now + 30)
        let recovery = try object(try await engine.next(executionId: execution, stepId: "scan", interactionId: "submit", input: "{\"code\":\"\(first)\"}"))
        XCTAssertEqual(((recovery["screen"] as! [String: Any])["recoveryCodes"] as! [String]).count, 10)
        let done = try object(try await engine.next(executionId: execution, stepId: "recovery", interactionId: "continue", input: "{}"))
        XCTAssertEqual(done["status"] as? String, "completed")
        let enrolled = try await engine.hasTotp(userId: userId)
        XCTAssertTrue(enrolled)
        let left = try await engine.recoveryCodesLeft(userId: userId)
        XCTAssertEqual(left, 10)
        let (again, ask) = try await signIn()
        XCTAssertEqual(ask["stepId"] as? String, "ask-code")
        let replay = try object(try await engine.next(executionId: again, stepId: "ask-code", interactionId: "submit", input: "{\"code\":\"\(first)\"}"))
        XCTAssertEqual((replay["error"] as? [String: Any])?["code"] as? String, "invalid_code")
        let later = try object(try await engine.next(executionId: again, stepId: "ask-code", interactionId: "submit", input: "{\"code\":\"\(second)\"}"))
        XCTAssertEqual(later["status"] as? String, "completed")
        try await engine.removeTotp(userId: userId)
        let removed = try await engine.hasTotp(userId: userId)
        XCTAssertFalse(removed)
    }

    func testPasskeyCeremonyOptions() async throws {
        // The JSON an app hands to ASAuthorization (Swift) or Credential Manager (Kotlin).
        let dir = vectorsDir.deletingLastPathComponent().appendingPathComponent("flows")
        var project = try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("password-project.json"))) as! [String: Any]
        project["flows"] = ["passkey.json"]
        project["baseUrl"] = "https://id.example.com"
        let engine = try FlowEngine(project: try jsonText(project), key: try Key.generate(alg: "ES256"), baseDir: dir.path)
        func object(_ text: String) throws -> [String: Any] {
            try JSONSerialization.jsonObject(with: Data(text.utf8)) as! [String: Any]
        }
        let started = try object(try await engine.start(flowId: "passkey", input: nil))
        let executionId = started["executionId"] as! String
        let get = try object(try await engine.next(executionId: executionId, stepId: "welcome", interactionId: "usePasskey", input: "{}"))
        let passkey = (get["screen"] as! [String: Any])["passkey"] as! [String: Any]
        XCTAssertEqual(passkey["ceremony"] as? String, "get")
        XCTAssertEqual((passkey["publicKey"] as! [String: Any])["rpId"] as? String, "id.example.com")
        let refused = try object(try await engine.next(executionId: executionId, stepId: "get", interactionId: "use", input: "{\"credential\":\"{}\"}"))
        XCTAssertEqual((refused["error"] as? [String: Any])?["code"] as? String, "invalid_credentials")
    }

    func testValidateFlow() throws {
        let dir = vectorsDir.deletingLastPathComponent().appendingPathComponent("flows")
        let valid = try String(contentsOf: dir.appendingPathComponent("random-user.json"), encoding: .utf8)
        XCTAssertEqual(validateFlow(text: valid).count, 0)
        let invalid = try String(contentsOf: dir.appendingPathComponent("invalid.json"), encoding: .utf8)
        let expected = try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("invalid.expected.json"))) as! [String: Any]
        XCTAssertEqual(validateFlow(text: invalid).count, (expected["problems"] as! [Any]).count)
    }
}

final class ProviderTests: XCTestCase {
    func testThePeerAddressFeedsThePerAddressRateLimits() async throws {
        let dir = vectorsDir.deletingLastPathComponent().appendingPathComponent("flows").path
        let project = "{\"projectId\":\"limits\",\"baseUrl\":\"http://127.0.0.1:7003\",\"flows\":[\"sign-up-or-in.json\"],\"rateLimits\":{\"flowStartsPerIp\":2}}"
        let provider = try await providerOpen(project: project, baseDir: dir)
        let headers = [HttpHeader(name: "Content-Type", value: "application/json")]
        let start = Data("{\"flowId\":\"sign-up-or-in\"}".utf8)
        for _ in 0..<2 {
            let ok = try await provider.handle(method: "POST", url: "/v1/flow/start", headers: headers, body: start, peer: "203.0.113.7")
            XCTAssertEqual(ok.status, 200)
        }
        let limited = try await provider.handle(method: "POST", url: "/v1/flow/start", headers: headers, body: start, peer: "203.0.113.7")
        XCTAssertEqual(limited.status, 429)
        XCTAssertTrue(limited.headers.contains { $0.name.lowercased() == "retry-after" })
        XCTAssertTrue(String(decoding: limited.body, as: UTF8.self).contains("\"rate_limited\""))
        let other = try await provider.handle(method: "POST", url: "/v1/flow/start", headers: headers, body: start, peer: "203.0.113.8")
        XCTAssertEqual(other.status, 200)
        // Without a peer nothing is counted per address.
        let anonymous = try await provider.handle(method: "POST", url: "/v1/flow/start", headers: headers, body: start)
        XCTAssertEqual(anonymous.status, 200)
        do {
            _ = try await provider.handle(method: "GET", url: "/health", headers: [], body: Data(), peer: "not-an-address")
            XCTFail("not an IP address")
        } catch IdflowError.InvalidRequest {}
        // The metrics count each answer by route and status.
        let metrics = provider.metrics().split(separator: "\n").map(String.init)
        XCTAssertTrue(metrics.contains("idflow_http_requests_total{route=\"flow_start\",status=\"200\"} 4"), metrics.joined(separator: "\n"))
        XCTAssertTrue(metrics.contains("idflow_http_requests_total{route=\"flow_start\",status=\"429\"} 1"), metrics.joined(separator: "\n"))
        // Every store call is timed, by operation (the rate limits' counters).
        XCTAssertTrue(metrics.contains { $0.hasPrefix("idflow_store_operation_duration_seconds_count{op=\"hit\"} ") }, metrics.joined(separator: "\n"))
    }

    func testKeysRotateWithoutARestart() async throws {
        let dir = vectorsDir.deletingLastPathComponent().appendingPathComponent("flows").path
        let project = "{\"projectId\":\"keys\",\"baseUrl\":\"http://127.0.0.1:7004\",\"flows\":[\"sign-up-or-in.json\"]}"
        let provider = try await providerOpen(project: project, baseDir: dir)
        func jwks() async throws -> String {
            let response = try await provider.handle(method: "GET", url: "/keys/.well-known/jwks.json", headers: [], body: Data())
            return String(decoding: response.body, as: UTF8.self)
        }
        let before = try await jwks()
        let text = try provider.rotateKeys(alg: "ES256", prepublish: 0)
        let rotated = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any]
        XCTAssertEqual(rotated?["alg"] as? String, "ES256")
        let kid = try XCTUnwrap(rotated?["kid"] as? String)
        let after = try await jwks()
        // The new key first, and the old one still published.
        let newAt = try XCTUnwrap(after.range(of: kid)).lowerBound
        let oldAt = try XCTUnwrap(after.range(of: "\"RS256\"")).lowerBound
        XCTAssertTrue(newAt < oldAt, after)
        XCTAssertTrue(before.contains("\"RS256\"") && !before.contains(kid), before)
        do {
            _ = try provider.rotateKeys(alg: "HS256")
            XCTFail("a symmetric signing key")
        } catch IdflowError.InvalidRequest {}
    }
}

final class OidcClientTests: XCTestCase {
    func testTypedSettingsAreChecked() throws {
        let settings = ClientSettings(
            clientId: "app", redirectUri: "com.example.app:/cb", issuer: "https://op.example",
            authorizationEndpoint: "https://op.example/authorize", tokenEndpoint: "https://op.example/token"
        )
        var spaced = settings
        spaced.scopes = ["openid email"]
        var instant = settings
        instant.timeout = 0
        var lenient = settings
        lenient.leeway = 301
        var blank = settings
        blank.clientSecret = ""
        for bad in [spaced, instant, lenient, blank] {
            XCTAssertThrowsError(try OidcClient(settings: bad)) { error in
                guard case IdflowError.Config = error else { return XCTFail("\(error)") }
            }
        }
        var scoped = settings
        scoped.scopes = ["openid", "email"]
        let client = try OidcClient(settings: scoped)
        let request = try client.authorizationRequest(options: AuthorizationParams(loginHint: "ann@example.com", params: ["b": "2", "a": "1"]))
        XCTAssertTrue(request.url.hasSuffix("&a=1&b=2"), request.url)
        XCTAssertThrowsError(try client.authorizationRequest(options: AuthorizationParams(params: ["state": "x"]))) { error in
            guard case IdflowError.InvalidRequest = error else { return XCTFail("\(error)") }
        }
    }

    func testAuthorizationRequestAndCallbackChecks() throws {
        let settings = ClientSettings(
            clientId: "app", redirectUri: "com.example.app:/cb", issuer: "https://op.example",
            authorizationEndpoint: "https://op.example/authorize", tokenEndpoint: "https://op.example/token"
        )
        func redirectingTo(_ uri: String) -> ClientSettings {
            var other = settings
            other.redirectUri = uri
            return other
        }
        XCTAssertThrowsError(try OidcClient(settings: ClientSettings(clientId: "app", redirectUri: "")))
        let client = try OidcClient(settings: settings)
        let request = try client.authorizationRequest(options: AuthorizationParams(prompt: ["login"]))
        XCTAssertTrue(request.url.hasPrefix("https://op.example/authorize?response_type=code"))
        XCTAssertTrue(request.url.contains("code_challenge_method=S256"))
        XCTAssertTrue(request.url.contains("redirect_uri=com.example.app%3A%2Fcb"))
        XCTAssertNotNil(request.codeVerifier)
        let callback = try client.parseCallback(callback: "com.example.app:/cb?code=abc&state=\(request.state)", expectedState: request.state)
        XCTAssertEqual(callback.code, "abc")
        XCTAssertNil(callback.idToken)
        XCTAssertEqual(callback.state, request.state)
        XCTAssertThrowsError(try client.parseCallback(callback: "com.example.app:/cb?code=abc&state=other", expectedState: request.state))
        XCTAssertThrowsError(try client.parseCallback(callback: "?error=access_denied&state=\(request.state)", expectedState: request.state)) { error in
            guard case IdflowError.AccessDenied = error else { return XCTFail("\(error)") }
        }
        // RFC 8252 §7: private-use (reverse DNS), claimed https and loopback http;
        // schemes that run something, and bare private schemes, never.
        for uri in ["com.example.app:/cb", "https://app.example.com/cb", "http://127.0.0.1:51004/cb", "http://[::1]:8080/cb"] {
            XCTAssertNoThrow(try OidcClient(settings: redirectingTo(uri)), uri)
        }
        for (uri, rule) in [("javascript:alert(1)//", "javascript: scheme"), ("myapp:/cb", "reverse-DNS"), ("https://app.example.com/cb#x", "no fragment")] {
            XCTAssertThrowsError(try OidcClient(settings: redirectingTo(uri))) { error in
                guard case IdflowError.Config(let message) = error else { return XCTFail("\(uri): \(error)") }
                XCTAssertTrue(message.contains("redirect_uri") && message.contains(rule), message)
            }
        }
        XCTAssertThrowsError(try client.endSessionUrl(idTokenHint: nil, postLogoutRedirectUri: "data:text/html,x", state: nil))
    }
}

/// The app's storage double (a Keychain wrapper on a device); `failing`
/// makes `load` throw, as a locked keychain before first unlock does.
final class MemorySessionStorage: SessionStorage, @unchecked Sendable {
    var value: String?
    var failing = false
    init(_ value: String? = nil) { self.value = value }
    func load() throws -> String? {
        if failing { throw IdflowError.Storage(message: "keychain locked") }
        return value
    }
    func save(session: String) throws { value = session }
    func clear() throws { value = nil }
}

/// Keeps what a `SessionManager` tells its listener.
final class Heard: SessionListener, @unchecked Sendable {
    private let lock = NSLock()
    private var events: [SessionEvent] = []
    func onEvent(event: SessionEvent) { lock.lock(); events.append(event); lock.unlock() }
    var all: [SessionEvent] { lock.lock(); defer { lock.unlock() }; return events }
}

final class SessionManagerTests: XCTestCase {
    /// A client whose token endpoint refuses connections (nothing listens on port 9).
    private func client() throws -> OidcClient {
        try OidcClient(settings: ClientSettings(
            clientId: "app", redirectUri: "com.example.app:/cb", issuer: "https://op.example",
            authorizationEndpoint: "https://op.example/authorize", tokenEndpoint: "http://127.0.0.1:9/token"
        ))
    }

    func testSignedOutJunkAndBadOptions() async throws {
        let manager = try SessionManager(client: try client(), storage: MemorySessionStorage())
        let status = try await manager.status()
        XCTAssertEqual(status, .signedOut)
        do {
            _ = try await manager.accessToken()
            XCTFail("no session")
        } catch IdflowError.LoginRequired {}
        let junk = try SessionManager(client: try client(), storage: MemorySessionStorage("not json"))
        do {
            _ = try await junk.accessToken()
            XCTFail("unreadable storage")
        } catch IdflowError.Storage {}
        // A session stored by a newer idflow is refused and left as it is.
        let newer = "{\"v\":99,\"session\":{\"access_token\":\"at\"}}"
        let storage = MemorySessionStorage(newer)
        do {
            _ = try await SessionManager(client: try client(), storage: storage).session()
            XCTFail("newer format")
        } catch IdflowError.Storage(let message) {
            XCTAssertTrue(message.contains("newer version"), message)
        }
        XCTAssertEqual(storage.value, newer)
        XCTAssertThrowsError(try SessionManager(client: try client(), storage: MemorySessionStorage(), options: SessionSettings(refreshMargin: -1)))
        XCTAssertThrowsError(try SessionManager(client: try client(), storage: MemorySessionStorage(), options: SessionSettings(pendingTtl: 0)))
        XCTAssertThrowsError(try SessionManager(client: try client(), storage: MemorySessionStorage(), options: SessionSettings(lockPath: "")))
    }

    func testBeginKeepsThePendingRequestForAnotherManager() async throws {
        let storage = MemorySessionStorage()
        let first = try SessionManager(client: try client(), storage: storage)
        let url = try await first.begin(options: AuthorizationParams(scopes: ["openid", "offline_access"]))
        XCTAssertTrue(url.contains("redirect_uri=com.example.app%3A%2Fcb"), url)
        let state = URLComponents(string: url)!.queryItems!.first(where: { $0.name == "state" })!.value!
        XCTAssertTrue(storage.value!.contains(state))
        // The app was killed while the browser was open: a new manager completes.
        let second = try SessionManager(client: try client(), storage: storage)
        do {
            _ = try await second.complete(callback: "com.example.app:/cb?code=c1&state=forged")
            XCTFail("another state")
        } catch IdflowError.InvalidRequest {}
        XCTAssertTrue(storage.value!.contains(state), "a callback for another state leaves the pending request")
        do {
            _ = try await second.complete(callback: "com.example.app:/cb?code=c1&state=\(state)")
            XCTFail("the token endpoint refuses connections")
        } catch IdflowError.Network {}
        do {
            _ = try await second.complete(callback: "com.example.app:/cb?code=c1&state=\(state)")
            XCTFail("a pending request is single-use")
        } catch IdflowError.InvalidRequest {}
        do {
            _ = try await first.begin(options: AuthorizationParams(responseType: .idToken))
            XCTFail("the session manager starts code flows only")
        } catch IdflowError.Config {}
    }

    func testReadmeNativeSignInSnippet() async throws {
        let storage = MemorySessionStorage()
        let signIn = try NativeSignIn(client: try client(), storage: storage, onSignedOut: { _ in })
        let url = try await signIn.start()
        XCTAssertTrue(url.contains("redirect_uri=com.example.app%3A%2Fcb"), url)
        XCTAssertNotNil(storage.value)
        do {
            _ = try await signIn.finish(redirect: "com.example.app:/cb?code=c1&state=forged")
            XCTFail("another sign-in's redirect")
        } catch IdflowError.InvalidRequest {}
        do {
            _ = try await signIn.authorization()
            XCTFail("nobody signed in yet")
        } catch IdflowError.LoginRequired {}
    }

    func testStorageTroubleIsHeardAndEndsNothing() async throws {
        let stored = "{\"v\":2,\"session\":{\"access_token\":\"at-1\",\"token_type\":\"Bearer\",\"claims\":{\"sub\":\"u1\"}}}"
        let storage = MemorySessionStorage(stored)
        storage.failing = true
        let manager = try SessionManager(client: try client(), storage: storage)
        let heard = Heard()
        manager.setListener(listener: heard)
        do {
            _ = try await manager.accessToken()
            XCTFail("the keychain is locked")
        } catch IdflowError.Storage {}
        guard case .storageFailed(let code, _)? = heard.all.last else { return XCTFail("\(heard.all)") }
        XCTAssertEqual(code, "storage")
        XCTAssertEqual(storage.value, stored, "a failed load clears nothing")
        storage.failing = false
        let token = try await manager.accessToken()
        XCTAssertEqual(token, "at-1")
        try await manager.signOut()
        guard case .signedOut(let reason, _)? = heard.all.last else { return XCTFail("\(heard.all)") }
        XCTAssertEqual(reason, .user)
        XCTAssertNil(storage.value)
    }
}
