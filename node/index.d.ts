/** idflow for Node: PKCE, JOSE/JWT, OpenID Connect on one Rust core. */

import { EventEmitter } from 'node:events'

/** Every error thrown or rejected by idflow: a JS `Error` with a stable `code`. */
export interface IdflowError extends Error {
  /** Stable snake_case code, e.g. `invalid_token`; see `ERROR_CODES`. */
  code: string
  /** `oauth` | `token` | `flow` | `config` | `network` | `storage` | `internal` */
  family: string
}

export type Algorithm =
  | 'HS256' | 'HS384' | 'HS512'
  | 'RS256' | 'RS384' | 'RS512'
  | 'PS256' | 'PS384' | 'PS512'
  | 'ES256' | 'ES384' | 'ES512'
  | 'EdDSA'

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json }
export type JsonObject = { [key: string]: Json }

export interface PkcePair {
  verifier: string
  challenge: string
  method: 'S256'
}

export declare const pkce: {
  /** A new verifier (default 64 chars, 43–128) and its S256 challenge. */
  generate(length?: number): PkcePair
  generateVerifier(length?: number): string
  /** `plain` throws `invalid_request` unless `allowPlain` is true. */
  challenge(verifier: string, method?: 'S256' | 'plain', allowPlain?: boolean): string
  /** Constant-time check; malformed verifiers throw `invalid_request`. */
  verify(verifier: string, challenge: string, method?: 'S256' | 'plain', allowPlain?: boolean): boolean
  readonly MIN_VERIFIER_LEN: 43
  readonly MAX_VERIFIER_LEN: 128
}

export declare class Key {
  private constructor()
  /** `rsaBits` (2048, 3072, 4096) applies to RS and PS algorithms; defaults to 2048. */
  static generate(alg: Algorithm, rsaBits?: number): Key
  static fromJwk(jwk: JsonObject | string): Key
  static fromPem(pem: string): Key
  /** An HMAC key; at least 32 bytes. PEM text is refused. */
  static fromSecret(secret: string | Buffer): Key
  readonly kid: string
  readonly alg: Algorithm | null
  readonly kty: 'oct' | 'RSA' | 'EC' | 'OKP'
  readonly curve: string | null
  readonly hasPrivate: boolean
  thumbprint(): string
  withKid(kid: string): Key
  publicKey(): Key
  toJwk(includePrivate?: boolean): JsonObject
  toPem(includePrivate?: boolean): string
  signBytes(alg: Algorithm, data: Buffer): Buffer
  verifyBytes(alg: Algorithm, data: Buffer, signature: Buffer): void
}

export declare class KeySet {
  constructor(keys: Key[])
  static fromJwks(jwks: JsonObject | string): KeySet
  readonly size: number
  readonly kids: string[]
  get(kid: string): Key | null
  toJwks(): JsonObject
}

export interface VerifyOptions {
  /** Required: accepted algorithms. */
  algorithms: Algorithm[]
  issuer?: string
  /** The token's `aud` must contain one of these; a token with `aud` is refused when unset. */
  audience?: string | string[]
  /** Seconds; defaults to 60, at most 300. */
  leeway?: number
  /** Defaults to `['exp']`. */
  requiredClaims?: string[]
  /** Bytes; defaults to 16384. */
  maxTokenSize?: number
  /** Pinned clock in seconds since the epoch (tests). */
  now?: number
}

export interface VerifiedJws {
  header: JsonObject
  payload: Buffer
}

/** A key (or key set) and options bound once; `verify(token)` does the per-token work. */
export declare class Verifier {
  constructor(key: Key | KeySet, options: VerifyOptions)
  verify(token: string): JsonObject
}

export declare const jwt: {
  Verifier: typeof Verifier
  sign(claims: JsonObject, key: Key, header?: JsonObject): string
  verify(token: string, key: Key | KeySet, options: VerifyOptions): JsonObject
  verifyJws(token: string, key: Key | KeySet, options: { algorithms: Algorithm[]; maxTokenSize?: number }): VerifiedJws
  /** Decodes WITHOUT verifying anything: for display and debugging only. */
  decodeUnverified(token: string): { header: JsonObject; claims: JsonObject }
}

export interface JwksCacheConfig {
  /** Seconds; defaults to 5. */
  timeout?: number
  /** Seconds; defaults to 60. */
  minTtl?: number
  /** Seconds; defaults to 86400. */
  maxTtl?: number
  /** Seconds; defaults to 600. */
  defaultTtl?: number
  /** Seconds; defaults to 30. */
  refetchCooldown?: number
  /** Defaults to 262144. */
  maxResponseBytes?: number
}

export declare class JwksCache {
  constructor(url: string, config?: JwksCacheConfig)
  readonly url: string
  keySet(): Promise<KeySet>
  refresh(): Promise<KeySet>
  verify(token: string, options: VerifyOptions): Promise<JsonObject>
}

export declare const ERROR_CODES: readonly string[]
export declare const ALGORITHMS: readonly Algorithm[]

export interface FlowProblem {
  /** The step concerned; null for the flow's own fields. */
  step: string | null
  /** Dotted field path inside the step, e.g. `inputs.0.type`; empty for the step itself. */
  field: string
  message: string
}

/** Every problem in a flow's JSON text, all at once (empty when valid). */
export declare function validateFlow(text: string): FlowProblem[]

export declare const password: {
  /** An Argon2id PHC string (OWASP's cost by default: 19456 KiB, 2 passes, 1 lane). */
  hash(password: string, options?: { memoryKib?: number; iterations?: number; parallelism?: number }): string
  /** Constant-time check against an Argon2, bcrypt, PBKDF2 (PHC) or Django pbkdf2_sha256 hash; a malformed hash throws `invalid_request`. */
  verify(password: string, hash: string): boolean
}

export interface FlowEngineOptions {
  /** Folder that relative flow paths in the project resolve against. Defaults to ".". */
  baseDir?: string
  /** A SQLite database file; in memory when absent. */
  database?: string
}

/** The flow API's answer: `{executionId, stepId?, status, screen?, redirect?, authInfo?, error?}`. */
export type FlowResponse = Record<string, unknown> & {
  executionId: string
  stepId?: string
  status: 'waiting' | 'completed' | 'failed'
}

/** Runs a project's flows; every method returns a Promise. */
export declare class FlowEngine {
  /** `project` is the project file's JSON text; `key` signs session JWTs. */
  constructor(project: string, key: Key, options?: FlowEngineOptions)
  start(flowId: string, input?: JsonObject, request?: JsonObject): Promise<FlowResponse>
  next(executionId: string, stepId: string, interactionId: string, input?: JsonObject): Promise<FlowResponse>
  /** The connector test panel: status, headers, body, durationMs, or the error. */
  testConnector(connectorId: string, method?: string, endpoint?: string, body?: Json): Promise<JsonObject>
  /** Users management (fields use the `/v1` names: name, email, customAttributes, status, ...). */
  createUser(loginId: string, fields?: JsonObject): Promise<JsonObject>
  getUser(userId: string): Promise<JsonObject>
  updateUser(userId: string, fields: JsonObject): Promise<JsonObject>
  deleteUser(userId: string): Promise<null>
  searchUsers(query?: { text?: string; status?: 'enabled' | 'disabled'; limit?: number; offset?: number }): Promise<JsonObject[]>
  /** Sets a user's password; the project's `passwords` policy applies (`weak_password`). */
  setPassword(userId: string, password: string): Promise<null>
  /** Stores a hash made elsewhere (Argon2, bcrypt, PBKDF2); the next sign-in upgrades it to Argon2id. */
  importPasswordHash(userId: string, hash: string): Promise<null>
  removePassword(userId: string): Promise<null>
  hasPassword(userId: string): Promise<boolean>
  /** Approves, from another device, the sign-in that mailed a `crossDevice` link (its `execution` and `link` query parameters). */
  approveLink(executionId: string, token: string): Promise<null>
  /** Ends every sign-in of the user made until now: provider sessions, codes, refresh tokens, and access tokens at userinfo. */
  signOutEverywhere(userId: string): Promise<null>
  /** Whether the user has an authenticator app (TOTP). */
  hasTotp(userId: string): Promise<boolean>
  /** Removes the user's authenticator app and its recovery codes. */
  removeTotp(userId: string): Promise<null>
  /** How many unused recovery codes the user has. */
  recoveryCodesLeft(userId: string): Promise<number>
  /** The user's passkeys: `[{id, createdAt, lastUsedAt}]`. */
  listPasskeys(userId: string): Promise<Record<string, unknown>[]>
  /** Removes one of the user's passkeys by its id. */
  removePasskey(userId: string, passkeyId: string): Promise<null>
  /** Clears the failed sign-ins counted against a login id (its lockout). */
  unlockLoginId(loginId: string): Promise<null>
}

export interface ProviderOptions {
  /** Folder that relative flow paths resolve against (JSON text only). Defaults to ".". */
  baseDir?: string
  /** A SQLite database file, or a `postgres://` URL (several app servers on one database are one provider); `{project}` in it is replaced by the project id. In memory when absent. */
  database?: string
  /** Overrides the project's baseUrl (the issuer is `${baseUrl}/${projectId}`). */
  baseUrl?: string
}

/** The provider's answer to one request. */
export interface ProviderResponse {
  status: number
  /** `[name, value]` pairs in order; a name may repeat (e.g. Set-Cookie). */
  headers: [string, string][]
  body: Buffer
}

export type ProviderHeaders =
  | Record<string, string | string[] | undefined>
  | Iterable<[string, string]>
  | { entries(): Iterable<[string, string]> }

/** The start of a social login by API (`Provider.oauthAuthorize`). */
export interface OAuthStart {
  /** Where to send the browser. */
  url: string
  /** The PKCE verifier `oauthExchange` needs; keep it server-side, never in a URL. */
  codeVerifier: string
}

/** The OpenID Connect provider for one project (README, "OpenID Connect provider"). */
export declare class Provider {
  /** `project` is the project file's JSON text. */
  constructor(project: string, options?: ProviderOptions)
  /** Reads a project file (JSON, or TOML by its name). */
  static fromFile(path: string, options?: Omit<ProviderOptions, 'baseDir'>): Provider
  readonly issuer: string
  /** The provider's metrics in the Prometheus (OpenMetrics) text format: serve them where only your monitoring reaches. */
  metrics(): string
  /**
   * Adds a signing key that every provider on this database publishes within seconds and
   * signs with after `prepublish` seconds (defaults: the project's `signing.alg` and
   * `signing.prepublish`).
   */
  rotateKeys(alg?: string, prepublish?: number): { kid: string, alg: string, signsFrom: number }
  /** The provider's flow engine: flows and users management on the same store. */
  readonly engine: FlowEngine
  /**
   * Handles one request; `url` is the path with its query, or an absolute URL.
   * `options.peer` is the client's IP address (`req.socket.remoteAddress`), which the
   * per-address rate limits count; without it nothing is counted per address.
   */
  handle(method: string, url: string, headers?: ProviderHeaders, body?: Buffer | Uint8Array | string, options?: { peer?: string }): Promise<ProviderResponse>
  discovery(): JsonObject
  /**
   * Social login by API, step 1: the upstream authorization URL of custom OAuth provider `provider`
   * and a fresh PKCE verifier to keep in the user's own session. `redirectUrl` must be approved
   * (the project's `redirectUrls`, or the provider's own `redirectUrl`).
   */
  oauthAuthorize(provider: string, options?: { redirectUrl?: string; prompt?: string | string[]; loginHint?: string }): Promise<OAuthStart>
  /** Social login by API, step 2: the one-time code from `redirectUrl?code=` and the kept verifier → `{sessionJwt, refreshJwt, user}`. */
  oauthExchange(code: string, codeVerifier: string): JsonObject
  /** The upstream access token kept for a user (`manageProviderTokens`), refreshed when expired. */
  providerToken(userId: string, provider: string): Promise<{ provider: string; accessToken: string; expiresAt: number | null; scope: string | null }>
  /** The configured applications (OIDC clients), without secrets. */
  applications(): JsonObject[]
  /** The configured access keys (client_credentials), without secrets. */
  accessKeys(): JsonObject[]
}

/**
 * Several projects in one app (docs/several-servers.md, "Several projects in one
 * process"): each at its own issuer `{baseUrl}/{projectId}` with every endpoint under
 * it and a store of its own; one project is served as `Provider` serves it.
 */
export declare class Providers {
  /** `projects` are project files' JSON texts. With several, `database` holds `{project}` (`data/{project}.db`). */
  constructor(projects: string[], options?: ProviderOptions)
  /** Reads project files (JSON, or TOML by the name); a folder stands for every `.json` and `.toml` file in it. */
  static fromFiles(paths: string[], options?: Omit<ProviderOptions, 'baseDir'>): Providers
  /** Each project's issuer, in the order the projects were given. */
  readonly issuers: string[]
  /** The provider of project `projectId` (its engine, keys, applications), or null. */
  provider(projectId: string): Provider | null
  /** Handles one request, as `Provider.handle`: the project whose issuer the path is under answers it. */
  handle(method: string, url: string, headers?: ProviderHeaders, body?: Buffer | Uint8Array | string, options?: { peer?: string }): Promise<ProviderResponse>
  /** Every project's metrics (Prometheus text), each series labelled with its `project`. */
  metrics(): string
}

export interface OidcClientSettings {
  clientId: string
  redirectUri: string
  /** Without it: client_secret_basic. `clientAuth: 'client_secret_post'` sends it in the body. */
  clientSecret?: string
  clientAuth?: 'client_secret_basic' | 'client_secret_post' | 'private_key_jwt' | 'none'
  /** Defaults to ['openid']. */
  scopes?: string[]
  /** Seconds; every outbound call. Defaults to 10. */
  timeout?: number
  leeway?: number
  idTokenAlgorithms?: Algorithm[]
  /** Expected issuer (discovery), or the issuer of hand-given endpoints. */
  issuer?: string
  authorizationEndpoint?: string
  tokenEndpoint?: string
  userinfoEndpoint?: string
  jwksUri?: string
  endSessionEndpoint?: string
  revocationEndpoint?: string
}

/** What to keep (server side) between the redirect and the callback. */
/** What an authorization request asks for (`authorizationRequest`, `SessionManager.begin`). */
export interface AuthorizationOptions {
  scopes?: string[]
  prompt?: string | string[]
  loginHint?: string
  maxAge?: number
  params?: Record<string, string>
  responseType?: 'code' | 'id_token'
  redirectUri?: string
}

export interface AuthorizationRequest {
  url: string
  state: string
  nonce: string
  codeVerifier: string | null
  redirectUri: string
}

/** The token response's own fields, plus the validated id_token's `claims`. */
export interface TokenResponse {
  access_token: string
  token_type: string
  expires_in?: number
  refresh_token?: string
  id_token?: string
  scope?: string
  claims?: JsonObject
}

/** An OpenID Connect client for one provider; network methods return Promises. */
export declare class OidcClient {
  /** Endpoints by hand (`authorizationEndpoint`, `tokenEndpoint`, ... in `settings`). */
  constructor(settings: OidcClientSettings, privateKey?: Key)
  /** Discovery; the document's issuer must equal `settings.issuer` or the URL's prefix. */
  static discover(discoveryUrl: string, settings: Omit<OidcClientSettings, 'authorizationEndpoint' | 'tokenEndpoint'>, privateKey?: Key): Promise<OidcClient>
  readonly endpoints: Record<string, string>
  authorizationRequest(options?: AuthorizationOptions): AuthorizationRequest
  parseCallback(callback: string, expectedState: string): { code: string | null; id_token: string | null; state: string }
  handleCallback(callback: string, request: AuthorizationRequest): Promise<TokenResponse>
  /** The callback's client-side work without network: state, token response, id_token against `keys`. */
  completeCallback(callback: string, request: AuthorizationRequest, tokenStatus: number, tokenBody: Buffer, keys: KeySet): TokenResponse
  exchangeCode(code: string, options?: { codeVerifier?: string; nonce?: string; redirectUri?: string; params?: Record<string, string> }): Promise<TokenResponse>
  validateIdToken(idToken: string, options?: { nonce?: string; accessToken?: string }): Promise<JsonObject>
  userinfo(accessToken: string): Promise<JsonObject>
  refresh(refreshToken: string, options?: { scopes?: string[] }): Promise<TokenResponse>
  revoke(token: string, tokenTypeHint?: string): Promise<null>
  endSessionUrl(options?: { idTokenHint?: string; postLogoutRedirectUri?: string; state?: string }): string
}

/** Keeps the session text between runs (Keychain, Keystore, an encrypted file...). It holds the refresh token: treat it as a secret. */
export interface SessionStorage {
  load(): string | null | undefined | Promise<string | null | undefined>
  save(session: string): void | Promise<void>
  clear(): void | Promise<void>
}

/** A SessionStorage in memory. */
export declare class MemoryStorage implements SessionStorage {
  constructor(value?: string | null)
  value: string | null
  load(): string | null
  save(session: string): void
  clear(): void
}

/** A signed-in user's tokens; `claims` are the verified id_token's. */
export interface Session {
  access_token: string
  token_type: string
  refresh_token?: string
  id_token?: string
  scope?: string
  /** Seconds since the epoch. */
  expires_at?: number
  claims: JsonObject
}

export type SessionStatus = 'signed_out' | 'valid' | 'expired' | 'invalid'

export interface SessionOptions {
  /** Refresh when the access token expires within this many seconds (default 60). */
  refreshMargin?: number
  /** Revoke the refresh token at the provider on sign-out (default true). */
  revokeOnSignOut?: boolean
  /** Seconds a sign-in started by `begin` can be completed (default 600, 1 to 3600). */
  pendingTtl?: number
  /** A file whose advisory lock serialises refreshes across processes sharing the storage. */
  lockPath?: string
  /** Seconds to wait for another process's lock before failing with `storage` (default 30). */
  lockTimeout?: number
}

/** Why a session ended. */
export type SignOutReason = 'user' | 'refresh_refused' | 'elsewhere'

export interface RefreshedEvent { type: 'refreshed'; session: Session }
export interface SignedOutEvent { type: 'signedOut'; reason: SignOutReason; message: string }
export interface StorageFailedEvent { type: 'storageFailed'; code: string; message: string }
export type SessionEvent = RefreshedEvent | SignedOutEvent | StorageFailedEvent

/**
 * Holds a signed-in user's session: validity checked against the provider's
 * JWKS, refresh before expiry (one refresh at a time across managers of the
 * same client, and across processes with `lockPath`), `invalid_grant` signs
 * out, persisted through `storage`. Emits `refreshed`, `signedOut` and
 * `storageFailed`.
 */
export declare class SessionManager extends EventEmitter {
  constructor(client: OidcClient, storage: SessionStorage, options?: SessionOptions)
  /** Starts a sign-in: the URL to open. The pending request (state, nonce, PKCE verifier, redirect URI, expiry) is kept in the storage, so `complete` works in another process. */
  begin(options?: Omit<AuthorizationOptions, 'responseType'>): Promise<string>
  /** Checks the callback, exchanges the code and signs in. Without `request`, the pending request `begin` stored is used once (none pending, another state or too late: `invalid_request`). */
  complete(callback: string, request?: AuthorizationRequest): Promise<Session>
  on(event: 'refreshed', listener: (event: RefreshedEvent) => void): this
  on(event: 'signedOut', listener: (event: SignedOutEvent) => void): this
  on(event: 'storageFailed', listener: (event: StorageFailedEvent) => void): this
  once(event: 'refreshed', listener: (event: RefreshedEvent) => void): this
  once(event: 'signedOut', listener: (event: SignedOutEvent) => void): this
  once(event: 'storageFailed', listener: (event: StorageFailedEvent) => void): this
  /** Signs in with a token response (the id_token is verified). */
  signIn(tokens: TokenResponse): Promise<Session>
  session(): Promise<Session | null>
  status(): Promise<SessionStatus>
  isValid(): Promise<boolean>
  /** A fresh access token, refreshed first when due. Rejects with code `invalid_grant` when the provider ended the session (signed out). */
  accessToken(): Promise<string>
  refresh(): Promise<Session>
  /** Revokes the refresh token (best effort) and clears the storage. */
  signOut(): Promise<null>
}
