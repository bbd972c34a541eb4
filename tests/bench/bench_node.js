'use strict'
// Node JWT benchmark: idflow against the Node peers.
//
//   node bench_node.js --keys DIR
//
// DIR holds the keys and the token set that `bench_py.py --gen-keys` made with
// idflow, so Python and Node verify the very same tokens. Prints one JSON
// object per line: {"lang":"node","lib":..,"alg":..,"op":..,"ops":..,"note":..}.
// Every verifier checks signature, exp, iss and aud (each library is first
// shown to refuse a bad signature, a wrong iss, a wrong aud and a past exp);
// keys are parsed once outside the timed loop where the library allows it; the
// loop cycles over the distinct tokens so no result cache can serve a repeat;
// the rate is the best of five equal windows of the ~1 s measurement.
// fast-jwt's verification cache is measured in its own row ("cached"). A peer
// that is missing or lacks an algorithm gets "ops": null and the reason.
// Peers come from tests/bench/node/node_modules (pinned in its package-lock).

const fs = require('node:fs')
const path = require('node:path')
const http = require('node:http')
const crypto = require('node:crypto')
const { pathToFileURL } = require('node:url')

const ROOT = path.resolve(__dirname, '..', '..')
const PEERS = path.join(__dirname, 'node')
const ISS = 'https://issuer.idflow.test/Pbench'
const AUD = 'idflow-bench'
const PROJECT_ID = 'Pbench'
const ALGS = ['HS256', 'RS256', 'ES256', 'EdDSA']
const JWKS3 = 'RS256-jwks3'
const SECONDS = Number(process.env.BENCH_SECONDS || '1.0')
const N_TOKENS = Number(process.env.BENCH_TOKENS || '2000')
const BATCH = 50
const WINDOWS = 5 // timed windows per measurement; the best is reported

function emit(lib, alg, op, ops, note = '') {
  const row = { lang: 'node', lib, alg, op, ops: ops == null ? null : Math.round(ops * 10) / 10, note }
  process.stdout.write(JSON.stringify(row) + '\n')
}

function peer(name) {
  return require(require.resolve(name, { paths: [PEERS] }))
}

async function peerEsm(name) {
  return import(pathToFileURL(require.resolve(name, { paths: [PEERS] })).href)
}

function versionOf(name) {
  try {
    const pj = path.join(PEERS, 'node_modules', name, 'package.json')
    return JSON.parse(fs.readFileSync(pj, 'utf8')).version
  } catch {
    return '?'
  }
}

const now = () => process.hrtime.bigint()

/**
 * ops/s of fn(item), cycling over items for ~SECONDS after a warm-up: the best
 * of WINDOWS equal windows (a burst of load from another process costs one
 * window, not the result). measureAsync awaits each call in turn.
 */
function measureSync(fn, items) {
  const n = items.length
  let i = 0
  const warmEnd = now() + BigInt(Math.round(Math.max(0.05, SECONDS * 0.15) * 1e9))
  while (now() < warmEnd) {
    for (let k = 0; k < BATCH; k++) {
      fn(items[i])
      i = i + 1 === n ? 0 : i + 1
    }
  }
  let best = 0
  const win = BigInt(Math.round((SECONDS / WINDOWS) * 1e9))
  for (let w = 0; w < WINDOWS; w++) {
    let count = 0
    const start = now()
    const end = start + win
    for (;;) {
      for (let k = 0; k < BATCH; k++) {
        fn(items[i])
        i = i + 1 === n ? 0 : i + 1
      }
      count += BATCH
      const t = now()
      if (t >= end) {
        best = Math.max(best, count / (Number(t - start) / 1e9))
        break
      }
    }
  }
  return best
}

async function measureAsync(fn, items) {
  const n = items.length
  let i = 0
  const warmEnd = now() + BigInt(Math.round(Math.max(0.05, SECONDS * 0.15) * 1e9))
  while (now() < warmEnd) {
    for (let k = 0; k < BATCH; k++) {
      await fn(items[i])
      i = i + 1 === n ? 0 : i + 1
    }
  }
  let best = 0
  const win = BigInt(Math.round((SECONDS / WINDOWS) * 1e9))
  for (let w = 0; w < WINDOWS; w++) {
    let count = 0
    const start = now()
    const end = start + win
    for (;;) {
      for (let k = 0; k < BATCH; k++) {
        await fn(items[i])
        i = i + 1 === n ? 0 : i + 1
      }
      count += BATCH
      const t = now()
      if (t >= end) {
        best = Math.max(best, count / (Number(t - start) / 1e9))
        break
      }
    }
  }
  return best
}

function claims(i, t) {
  return { iss: ISS, sub: `user-${i % 97}`, aud: AUD, iat: t, exp: t + 3600, jti: `jti-${String(i).padStart(8, '0')}` }
}

class Ctx {
  constructor(dir) {
    this.dir = dir
    this.meta = JSON.parse(this.text('meta.json'))
    const t = JSON.parse(this.text('tokens.json'))
    this.tokens = t.tokens
    this.bad = t.bad
    const s = Math.floor(Date.now() / 1000)
    this.claims = Array.from({ length: N_TOKENS }, (_, i) => claims(i, s))
  }
  text(name) {
    return fs.readFileSync(path.join(this.dir, name), 'utf8')
  }
  a(alg) {
    return this.meta.algs[alg]
  }
  secret() {
    return Buffer.from(this.text(this.a('HS256').secret).trim(), 'base64url')
  }
  jwk(alg, priv = false) {
    const a = this.a(alg)
    return JSON.parse(this.text(alg === 'HS256' ? a.jwk : priv ? a.private_jwk : a.public_jwk))
  }
  pem(alg, priv = false) {
    return this.text(priv ? this.a(alg).private_pem : this.a(alg).public_pem)
  }
  kid(alg) {
    return this.a(alg).kid
  }
  jwks3() {
    return JSON.parse(this.text(this.meta.jwks3.jwks))
  }
  jwks3Pems() {
    const m = this.meta.jwks3
    return Object.fromEntries(m.kids.map((kid, n) => [kid, this.text(m.public_pems[n])]))
  }
}

/** The token's kid, read from its header (for libraries without a key-set API). */
function kidOf(token) {
  return JSON.parse(Buffer.from(token.slice(0, token.indexOf('.')), 'base64url').toString()).kid
}

let CTX
let CHECK // alg -> idflow verifier, to check that a peer's signed tokens are valid

async function strictNote(verify, bad, isAsync) {
  const accepted = []
  for (const [what, tok] of Object.entries(bad)) {
    try {
      if (isAsync) await verify(tok)
      else verify(tok)
    } catch {
      continue
    }
    accepted.push(what)
  }
  return accepted.length ? `WARNING: accepted a token with a bad ${accepted.join('/')}` : ''
}

async function runVerify(lib, alg, verify, { note = '', isAsync = false } = {}) {
  const tokens = CTX.tokens[alg]
  try {
    for (const t of tokens) {
      if (isAsync) await verify(t)
      else verify(t)
    }
    const warn = await strictNote(verify, CTX.bad[alg], isAsync)
    const ops = isAsync ? await measureAsync(verify, tokens) : measureSync(verify, tokens)
    emit(lib, alg, 'verify', ops, [note, warn].filter(Boolean).join('; '))
  } catch (e) {
    emit(lib, alg, 'verify', null, `failed: ${String(e && e.message ? e.message : e).slice(0, 160)}`)
  }
}

async function runSign(lib, alg, sign, { note = '', isAsync = false } = {}) {
  try {
    const tok = isAsync ? await sign(CTX.claims[0]) : sign(CTX.claims[0])
    CHECK(alg)(tok)
    const ops = isAsync ? await measureAsync(sign, CTX.claims) : measureSync(sign, CTX.claims)
    emit(lib, alg, 'sign', ops, note)
  } catch (e) {
    emit(lib, alg, 'sign', null, `failed: ${String(e && e.message ? e.message : e).slice(0, 160)}`)
  }
}

// ------------------------------------------------------------------ libraries

async function benchIdflow() {
  // jwt.Verifier (key and options bound once) is measured too where this idflow has it.
  const { jwt, Key, KeySet } = require(path.join(ROOT, 'node'))
  for (const alg of ALGS) {
    const priv = Key.fromJwk(CTX.jwk(alg, true))
    const pub = alg === 'HS256' ? priv : Key.fromJwk(CTX.jwk(alg))
    const opts = { algorithms: [alg], issuer: ISS, audience: AUD }
    await runSign('idflow', alg, (c) => jwt.sign(c, priv))
    await runVerify('idflow', alg, (t) => jwt.verify(t, pub, opts), { note: 'jwt.verify(token, key, options)' })
    if (jwt.Verifier) {
      const v = new jwt.Verifier(pub, opts)
      await runVerify('idflow (Verifier)', alg, (t) => v.verify(t), { note: 'new jwt.Verifier(key, options).verify(token)' })
    }
  }
  const ks = KeySet.fromJwks(CTX.jwks3())
  const opts = { algorithms: ['RS256'], issuer: ISS, audience: AUD }
  await runVerify('idflow', JWKS3, (t) => jwt.verify(t, ks, opts), { note: 'jwt.verify with a KeySet' })
  if (jwt.Verifier) {
    const v = new jwt.Verifier(ks, opts)
    await runVerify('idflow (Verifier)', JWKS3, (t) => v.verify(t), { note: 'new jwt.Verifier(KeySet, options).verify(token)' })
  }
}

async function benchJose() {
  const jose = await peerEsm('jose')
  for (const alg of ALGS) {
    const sk = await jose.importJWK(CTX.jwk(alg, true), alg)
    const vk = alg === 'HS256' ? sk : await jose.importJWK(CTX.jwk(alg), alg)
    const header = { alg, kid: CTX.kid(alg), typ: 'JWT' }
    const opts = { issuer: ISS, audience: AUD, algorithms: [alg] }
    await runSign('jose', alg, (c) => new jose.SignJWT(c).setProtectedHeader(header).sign(sk), { isAsync: true })
    await runVerify('jose', alg, (t) => jose.jwtVerify(t, vk, opts), { isAsync: true })
  }
  const set = jose.createLocalJWKSet(CTX.jwks3())
  const opts = { issuer: ISS, audience: AUD, algorithms: ['RS256'] }
  await runVerify('jose', JWKS3, (t) => jose.jwtVerify(t, set, opts), { isAsync: true, note: 'createLocalJWKSet' })
}

async function benchJsonwebtoken() {
  const jwt = peer('jsonwebtoken')
  for (const alg of ALGS) {
    if (alg === 'EdDSA') {
      emit('jsonwebtoken', alg, 'sign', null, 'EdDSA not supported by jsonwebtoken')
      emit('jsonwebtoken', alg, 'verify', null, 'EdDSA not supported by jsonwebtoken')
      continue
    }
    let sk, vk
    if (alg === 'HS256') {
      sk = vk = CTX.secret()
    } else {
      sk = crypto.createPrivateKey({ key: CTX.jwk(alg, true), format: 'jwk' })
      vk = crypto.createPublicKey({ key: CTX.jwk(alg), format: 'jwk' })
    }
    const sopts = { algorithm: alg, keyid: CTX.kid(alg) }
    const vopts = { algorithms: [alg], issuer: ISS, audience: AUD }
    await runSign('jsonwebtoken', alg, (c) => jwt.sign(c, sk, sopts), { note: 'KeyObject' })
    await runVerify('jsonwebtoken', alg, (t) => jwt.verify(t, vk, vopts), { note: alg === 'HS256' ? '' : 'KeyObject' })
  }
  const keys = Object.fromEntries(Object.entries(CTX.jwks3Pems()).map(([kid, pem]) => [kid, crypto.createPublicKey(pem)]))
  const getKey = (header, cb) => cb(null, keys[header.kid])
  const vopts = { algorithms: ['RS256'], issuer: ISS, audience: AUD }
  const v3 = (t) => {
    let out, err
    jwt.verify(t, getKey, vopts, (e, p) => {
      err = e
      out = p
    })
    if (err) throw err
    if (out === undefined) throw new Error('key callback did not complete synchronously')
    return out
  }
  await runVerify('jsonwebtoken', JWKS3, v3, { note: 'getKey(header) callback, KeyObject by kid' })
}

async function benchFastJwt() {
  const { createSigner, createVerifier } = peer('fast-jwt')
  for (const alg of ALGS) {
    const sk = alg === 'HS256' ? CTX.secret() : CTX.pem(alg, true)
    const vk = alg === 'HS256' ? CTX.secret() : CTX.pem(alg)
    const sign = createSigner({ key: sk, algorithm: alg, kid: CTX.kid(alg) })
    const vopts = { key: vk, algorithms: [alg], allowedIss: ISS, allowedAud: AUD }
    const verify = createVerifier(vopts)
    await runSign('fast-jwt', alg, sign)
    await runVerify('fast-jwt', alg, verify)
    const cached = createVerifier({ ...vopts, cache: 2 * N_TOKENS })
    await runVerify('fast-jwt (cache)', alg, cached, {
      note: `cached: LRU of ${2 * N_TOKENS} over the ${N_TOKENS} tokens, so every timed call is a cache hit; not a peer for the targets`,
    })
  }
  const pems = CTX.jwks3Pems()
  const vopts = { algorithms: ['RS256'], allowedIss: ISS, allowedAud: AUD }
  const verifiers = Object.fromEntries(Object.entries(pems).map(([kid, pem]) => [kid, createVerifier({ ...vopts, key: pem })]))
  await runVerify('fast-jwt', JWKS3, (t) => verifiers[kidOf(t)](t), { note: 'one verifier per key, picked by the header kid' })
  const cachedV = Object.fromEntries(
    Object.entries(pems).map(([kid, pem]) => [kid, createVerifier({ ...vopts, key: pem, cache: 2 * N_TOKENS })]),
  )
  await runVerify('fast-jwt (cache)', JWKS3, (t) => cachedV[kidOf(t)](t), {
    note: 'cached: every timed call is a cache hit; not a peer for the targets',
  })
}

async function benchNodeRs() {
  const { signSync, verifySync, decodeHeader } = peer('@node-rs/jsonwebtoken')
  const note = 'key is PEM text, parsed on every call (the API takes no parsed key)'
  for (const alg of ALGS) {
    const sk = alg === 'HS256' ? CTX.secret() : CTX.pem(alg, true)
    const vk = alg === 'HS256' ? CTX.secret() : CTX.pem(alg)
    const header = { algorithm: alg, keyId: CTX.kid(alg) }
    const v = { algorithms: [alg], iss: [ISS], aud: [AUD] }
    await runSign('@node-rs/jsonwebtoken', alg, (c) => signSync(c, sk, header), { note: alg === 'HS256' ? '' : note })
    await runVerify('@node-rs/jsonwebtoken', alg, (t) => verifySync(t, vk, v), { note: alg === 'HS256' ? '' : note })
  }
  const pems = CTX.jwks3Pems()
  const v = { algorithms: ['RS256'], iss: [ISS], aud: [AUD] }
  await runVerify('@node-rs/jsonwebtoken', JWKS3, (t) => verifySync(t, pems[decodeHeader(t).keyId], v), {
    note: 'PEM by kid from decodeHeader; ' + note,
  })
}

async function benchDescope() {
  const DescopeClient = peer('@descope/node-sdk')
  const why = 'the SDK does not sign JWTs (the hosted platform signs session tokens)'
  const note = 'validateSession, public key given locally; SDK checks sig+exp+aud+iss (its iss rule: the last path segment must be the project id)'
  for (const alg of ALGS) {
    emit('@descope/node-sdk', alg, 'sign', null, why)
    if (alg === 'HS256') {
      emit('@descope/node-sdk', alg, 'verify', null, 'session tokens are asymmetric: the SDK validates with a public key only')
      continue
    }
    const client = DescopeClient({ projectId: PROJECT_ID, publicKey: JSON.stringify(CTX.jwk(alg)), logger: undefined })
    await runVerify('@descope/node-sdk', alg, (t) => client.validateSession(t, { audience: AUD }), { isAsync: true, note })
  }
  const body = JSON.stringify(CTX.jwks3())
  const srv = http.createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' })
    res.end(body)
  })
  await new Promise((r) => srv.listen(0, '127.0.0.1', r))
  try {
    const client = DescopeClient({ projectId: PROJECT_ID, baseUrl: `http://127.0.0.1:${srv.address().port}` })
    await runVerify('@descope/node-sdk', JWKS3, (t) => client.validateSession(t, { audience: AUD }), {
      isAsync: true,
      note: 'key set fetched once from a loopback JWKS, then cached by kid; ' + note,
    })
  } finally {
    srv.close()
  }
}

const LIBS = [
  ['idflow', benchIdflow, null],
  ['jose', benchJose, 'jose'],
  ['jsonwebtoken', benchJsonwebtoken, 'jsonwebtoken'],
  ['fast-jwt', benchFastJwt, 'fast-jwt'],
  ['@node-rs/jsonwebtoken', benchNodeRs, '@node-rs/jsonwebtoken'],
  ['@descope/node-sdk', benchDescope, '@descope/node-sdk'],
]

async function main() {
  const args = process.argv.slice(2)
  const k = args.indexOf('--keys')
  if (k < 0 || !args[k + 1]) {
    console.error('usage: node bench_node.js --keys DIR [--only lib,lib]')
    process.exit(2)
  }
  const o = args.indexOf('--only')
  const only = o >= 0 ? new Set(args[o + 1].split(',')) : null
  CTX = new Ctx(path.resolve(args[k + 1]))
  const idflow = require(path.join(ROOT, 'node'))
  CHECK = (alg) => {
    const key = alg === JWKS3 ? idflow.KeySet.fromJwks(CTX.jwks3()) : idflow.Key.fromJwk(CTX.jwk(alg))
    const opts = { algorithms: [alg === JWKS3 ? 'RS256' : alg], issuer: ISS, audience: AUD }
    return (t) => idflow.jwt.verify(t, key, opts)
  }
  for (const [name, fn, pkg] of LIBS) {
    if (only && !only.has(name)) continue
    process.stdout.write(JSON.stringify({ lang: 'node', lib: name, version: pkg ? versionOf(pkg) : require(path.join(ROOT, 'node', 'package.json')).version }) + '\n')
    if (pkg) {
      try {
        require.resolve(pkg, { paths: [PEERS] })
      } catch (e) {
        for (const alg of [...ALGS, JWKS3]) {
          for (const op of alg === JWKS3 ? ['verify'] : ['sign', 'verify']) {
            emit(name, alg, op, null, `not installed: ${String(e.message).split('\n')[0].slice(0, 120)}`)
          }
        }
        continue
      }
    }
    try {
      await fn()
    } catch (e) {
      console.error(e)
      emit(name, '?', '?', null, `bench crashed: ${String(e && e.message).slice(0, 160)}`)
    }
  }
}

main().catch((e) => {
  console.error(e)
  process.exit(1)
})
