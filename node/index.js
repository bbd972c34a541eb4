'use strict'
// idflow for Node: loads the native module and arranges it into the public
// API (pkce, jwt, Key, KeySet, JwksCache, FlowEngine, Provider, Providers, OidcClient,
// SessionManager). Only
// argument normalisation lives here; behaviour is in the Rust core.

const { existsSync } = require('node:fs')
const { join } = require('node:path')
const { EventEmitter } = require('node:events')

// The platforms with a prebuilt native module, each in its own npm package
// (`idflow-<platform>`, an optional dependency of this one: npm installs the
// one whose os/cpu/libc match). A source build (`npm run build`) puts the
// module beside this file instead, and that one wins.
const PLATFORMS = Object.freeze(['linux-x64-gnu', 'linux-arm64-gnu', 'linux-x64-musl'])

function currentPlatform() {
  if (process.platform !== 'linux') return `${process.platform}-${process.arch}`
  const glibc = process.report?.getReport?.().header?.glibcVersionRuntime
  return `linux-${process.arch}-${glibc ? 'gnu' : 'musl'}`
}

function loadNative() {
  const platform = currentPlatform()
  const local = join(__dirname, `idflow.${platform}.node`)
  if (existsSync(local)) return require(local)
  const pkg = `idflow-${platform}`
  let error
  if (PLATFORMS.includes(platform)) {
    try {
      return require(pkg)
    } catch (e) {
      // Only "that package is not installed" is explained below; a module
      // that is there but fails to load (a wrong libc, a broken file) keeps its own error.
      if (e.code !== 'MODULE_NOT_FOUND' || !String(e.message).includes(pkg)) throw e
    }
    error = new Error(
      `idflow: the native module for ${platform} is missing: install the package "${pkg}" ` +
        '(npm installs it with idflow as an optional dependency; it is left out by --omit=optional ' +
        'or --no-optional, or by a lockfile made on another platform), or build from source with "npm run build" in node/',
    )
  } else {
    error = new Error(
      `idflow: there is no prebuilt native module for ${platform} (there are for ${PLATFORMS.join(', ')}); ` +
        'build from source with "npm run build" in node/',
    )
  }
  error.code = 'ERR_IDFLOW_NATIVE_MISSING'
  error.platform = platform
  error.package = pkg
  throw error
}

const native = loadNative()

const pkce = Object.freeze({
  generate: native.pkceGenerate,
  generateVerifier: native.pkceGenerateVerifier,
  challenge: native.pkceChallenge,
  verify: native.pkceVerify,
  MIN_VERIFIER_LEN: 43,
  MAX_VERIFIER_LEN: 128,
})

// Verified payloads come back as JSON text; JSON.parse builds the claims
// object straight from it, faster than constructing it through N-API.
class Verifier {
  constructor(key, options) {
    this._native = new native.Verifier(key, options)
  }

  verify(token) {
    return JSON.parse(this._native.verify(token))
  }
}

// jwt.verify(token, key, options) converts its options once: the native
// Verifier for a key and an options value is kept (per key, at most
// VERIFIERS_PER_KEY options values) and found again by the options' text.
// Only plain options whose fields are strings, finite numbers or arrays of
// strings are kept, so the text names exactly what the native side reads;
// anything else is converted on every call as before. The options object
// last used with a key is remembered with a copy of its fields: the same
// object, unchanged, skips even the text. Keys and key sets are immutable,
// so a kept Verifier never verifies with stale keys.
const VERIFY_FIELDS = ['algorithms', 'issuer', 'audience', 'leeway', 'requiredClaims', 'maxTokenSize', 'now']
const VERIFIERS_PER_KEY = 32
const verifiers = new WeakMap()

function plainValue(v) {
  if (v === undefined || v === null || typeof v === 'string') return true
  if (typeof v === 'number') return Number.isFinite(v)
  return Array.isArray(v) && Object.getPrototypeOf(v) === Array.prototype && v.every((x) => typeof x === 'string')
}

function isPlainObject(o) {
  return o !== null && typeof o === 'object' && Object.getPrototypeOf(o) === Object.prototype
}

// The fields of `options` as kept: arrays copied, so a later change to
// them is seen.
function snapshot(options) {
  return VERIFY_FIELDS.map((f) => (Array.isArray(options[f]) ? options[f].slice() : options[f]))
}

function unchanged(options, snap) {
  if (!isPlainObject(options)) return false
  for (let i = 0; i < VERIFY_FIELDS.length; i++) {
    const v = options[VERIFY_FIELDS[i]]
    const s = snap[i]
    if (Array.isArray(s)) {
      if (!Array.isArray(v) || v.length !== s.length) return false
      for (let j = 0; j < s.length; j++) if (v[j] !== s[j]) return false
    } else if (v !== s) {
      return false
    }
  }
  return true
}

function cachedVerifier(key, options) {
  if (key === null || typeof key !== 'object') return null
  let kept = verifiers.get(key)
  if (kept !== undefined && kept.lastOptions === options && unchanged(options, kept.lastSnapshot)) return kept.last
  if (!isPlainObject(options)) return null
  const snap = snapshot(options)
  if (!snap.every(plainValue)) return null
  const text = JSON.stringify(snap)
  if (kept === undefined) {
    kept = { byText: new Map(), lastOptions: null, lastSnapshot: null, last: null }
    verifiers.set(key, kept)
  }
  let verifier = kept.byText.get(text)
  if (verifier === undefined) {
    verifier = new native.Verifier(key, options)
    if (kept.byText.size >= VERIFIERS_PER_KEY) kept.byText.delete(kept.byText.keys().next().value)
    kept.byText.set(text, verifier)
  }
  kept.lastOptions = options
  kept.lastSnapshot = snap
  kept.last = verifier
  return verifier
}

function verify(token, key, options) {
  const verifier = cachedVerifier(key, options)
  return JSON.parse(verifier === null ? native.jwtVerify(token, key, options) : verifier.verify(token))
}

const jwt = Object.freeze({
  sign: (claims, key, header) => native.jwtSign(JSON.stringify(claims), key, header),
  verify,
  Verifier,
  verifyJws: native.jwtVerifyJws,
  decodeUnverified: native.jwtDecodeUnverified,
})

// Headers arrive as Node's IncomingHttpHeaders (values may be arrays), a
// WHATWG Headers object, or [name, value] pairs; the native side takes pairs.
function headerPairs(headers) {
  if (!headers) return []
  const source = typeof headers.entries === 'function' && !Array.isArray(headers) ? headers.entries() : Array.isArray(headers) ? headers : Object.entries(headers)
  const pairs = []
  for (const [name, value] of source) {
    if (value === undefined || value === null) continue
    for (const v of Array.isArray(value) ? value : [value]) pairs.push([String(name), String(v)])
  }
  return pairs
}

function bodyBuffer(body) {
  if (body === undefined || body === null) return undefined
  if (Buffer.isBuffer(body)) return body
  if (typeof body === 'string') return Buffer.from(body, 'utf8')
  if (body instanceof Uint8Array) return Buffer.from(body.buffer, body.byteOffset, body.byteLength)
  throw new TypeError('body must be a Buffer, Uint8Array, string or undefined')
}

class Provider {
  constructor(project, options) {
    this._native = project instanceof native.Provider ? project : new native.Provider(project, options)
  }

  static fromFile(path, options) {
    return new Provider(native.Provider.fromFile(path, options))
  }

  get issuer() {
    return this._native.issuer
  }

  get engine() {
    return this._native.engine
  }

  handle(method, url, headers, body, options) {
    return this._native.handle(method, url, headerPairs(headers), bodyBuffer(body), options?.peer ?? undefined)
  }

  discovery() {
    return this._native.discovery()
  }

  metrics() {
    return this._native.metrics()
  }

  rotateKeys(alg, prepublish) {
    return this._native.rotateKeys(alg ?? undefined, prepublish ?? undefined)
  }

  oauthAuthorize(provider, options) {
    return this._native.oauthAuthorize(provider, options)
  }

  oauthExchange(code, codeVerifier) {
    return this._native.oauthExchange(code, codeVerifier)
  }

  providerToken(userId, provider) {
    return this._native.providerToken(userId, provider)
  }

  applications() {
    return this._native.applications()
  }

  accessKeys() {
    return this._native.accessKeys()
  }
}

// Several projects in one app: each at its own issuer, every endpoint under it.
class Providers {
  constructor(projects, options) {
    this._native = projects instanceof native.Providers ? projects : new native.Providers(projects, options)
  }

  static fromFiles(paths, options) {
    return new Providers(native.Providers.fromFiles(paths, options))
  }

  get issuers() {
    return this._native.issuers
  }

  provider(projectId) {
    const p = this._native.provider(projectId)
    return p ? new Provider(p) : null
  }

  handle(method, url, headers, body, options) {
    return this._native.handle(method, url, headerPairs(headers), bodyBuffer(body), options?.peer ?? undefined)
  }

  metrics() {
    return this._native.metrics()
  }
}

// OidcClient.discover(url, settings, privateKey?) → Promise<OidcClient>.
native.OidcClient.discover = (discoveryUrl, settings, privateKey) => native.oidcDiscover(discoveryUrl, settings, privateKey)
native.OidcClient.prototype.completeCallback = function completeCallback(callback, request, tokenStatus, tokenBody, keys) {
  if (!request || typeof request.state !== 'string' || typeof request.nonce !== 'string') {
    throw new TypeError('request must be the object authorizationRequest() returned')
  }
  return JSON.parse(this._completeCallbackJson(callback, request.state, request.nonce, tokenStatus, bodyBuffer(tokenBody), keys))
}

// The storage object (load/save/clear, sync or async) as the one function
// the native side calls: ([op, value]) => Promise<string | null>.
function storageCallback(storage) {
  for (const m of ['load', 'save', 'clear']) {
    if (!storage || typeof storage[m] !== 'function') throw new TypeError(`storage.${m} must be a function`)
  }
  return async ([op, value]) => {
    if (op === 'load') {
      const text = await storage.load()
      if (text !== null && text !== undefined && typeof text !== 'string') throw new TypeError('storage.load() must give a string or null')
      return text ?? null
    }
    await (op === 'save' ? storage.save(value) : storage.clear())
    return null
  }
}

// Emits 'refreshed', 'signedOut' and 'storageFailed' (the event object
// carries its `type`); the native side only forwards core events.
class SessionManager extends EventEmitter {
  constructor(client, storage, options) {
    super()
    this._native = new native.SessionManager(client, storageCallback(storage), options)
    // Forwarding starts with the first listener: until then the native
    // side holds no reference back to this object.
    this.once('newListener', () => this._native.setListener((event) => this.emit(event.type, event)))
  }

  begin(options) {
    return this._native.begin(options)
  }

  complete(callback, request) {
    return this._native.complete(callback, request)
  }

  signIn(tokens) {
    return this._native.signIn(tokens)
  }

  session() {
    return this._native.session()
  }

  status() {
    return this._native.status()
  }

  isValid() {
    return this._native.isValid()
  }

  accessToken() {
    return this._native.accessToken()
  }

  refresh() {
    return this._native.refresh()
  }

  signOut() {
    return this._native.signOut()
  }
}

// A SessionStorage in memory: the double for tests, or a per-process cache.
class MemoryStorage {
  constructor(value = null) {
    this.value = value
  }

  load() {
    return this.value
  }

  save(session) {
    this.value = session
  }

  clear() {
    this.value = null
  }
}

// Password hashes as idflow writes (Argon2id PHC) and reads them (Argon2,
// bcrypt, PBKDF2, Django's pbkdf2_sha256).
const password = Object.freeze({
  hash: native.passwordHash,
  verify: native.passwordVerify,
})

module.exports = {
  pkce,
  jwt,
  password,
  Key: native.Key,
  KeySet: native.KeySet,
  JwksCache: native.JwksCache,
  validateFlow: native.validateFlow,
  FlowEngine: native.FlowEngine,
  Provider,
  Providers,
  OidcClient: native.OidcClient,
  SessionManager,
  MemoryStorage,
  ERROR_CODES: Object.freeze(native.errorCodes()),
  ALGORITHMS: Object.freeze(native.algorithms()),
  _native: native,
}
