'use strict'
// idflow for Node: loads the native module and arranges it into the public
// API (pkce, jwt, Key, KeySet, JwksCache). No logic lives here.

const { existsSync } = require('node:fs')
const { join } = require('node:path')

function loadNative() {
  const abi = process.platform === 'linux' ? (process.report?.getReport?.().header?.glibcVersionRuntime ? '-gnu' : '-musl') : ''
  const file = join(__dirname, `idflow.${process.platform}-${process.arch}${abi}.node`)
  if (!existsSync(file)) {
    throw new Error(`idflow: native module ${file} is missing; run "npm run build" in node/`)
  }
  return require(file)
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

const jwt = Object.freeze({
  sign: (claims, key, header) => native.jwtSign(JSON.stringify(claims), key, header),
  verify: (token, key, options) => JSON.parse(native.jwtVerify(token, key, options)),
  Verifier,
  verifyJws: native.jwtVerifyJws,
  decodeUnverified: native.jwtDecodeUnverified,
})

module.exports = {
  pkce,
  jwt,
  Key: native.Key,
  KeySet: native.KeySet,
  JwksCache: native.JwksCache,
  validateFlow: native.validateFlow,
  FlowEngine: native.FlowEngine,
  ERROR_CODES: Object.freeze(native.errorCodes()),
  ALGORITHMS: Object.freeze(native.algorithms()),
  _native: native,
}
