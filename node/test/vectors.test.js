'use strict'
const test = require('node:test')
const assert = require('node:assert/strict')
const { jwt, Key } = require('..')
const { loadVectors, b64u } = require('./helpers')

const FILES = ['jws_rfc7515.json', 'jws_rfc7520.json', 'jws_rfc8037.json', 'jws_rfc7797.json']
const ANY_KEY = Key.fromSecret(Buffer.alloc(64, 7))

function jsonObject(text) {
  try {
    const v = JSON.parse(text)
    return v !== null && typeof v === 'object' && !Array.isArray(v) ? v : null
  } catch {
    return null
  }
}

for (const file of FILES) {
  for (const vec of loadVectors(file).vectors) {
    test(`${vec.id}`, () => {
      const alg = vec.alg
      if (vec.expected === 'reject') {
        assert.throws(() => jwt.verifyJws(vec.compact, ANY_KEY, { algorithms: ['HS256'] }), { code: 'unsupported_algorithm' })
        return
      }
      const key = Key.fromJwk(vec.key)
      if (vec.expected === 'reject_unless_b64_supported') {
        assert.throws(() => jwt.verifyJws(vec.compact, key, { algorithms: [alg] }), { code: 'invalid_token' })
        return
      }
      const keys = [key, ...(vec.public_key ? [Key.fromJwk(vec.public_key)] : [])]
      if (vec.jwk_thumbprint_sha256) assert.equal(key.thumbprint(), vec.jwk_thumbprint_sha256)
      if (vec.compact && !vec.detached_payload) {
        for (const k of keys) {
          const out = jwt.verifyJws(vec.compact, k, { algorithms: [alg] })
          assert.equal(out.payload.toString('utf8'), vec.payload)
          assert.equal(out.header.alg, alg)
        }
        const claims = jsonObject(vec.payload)
        const last = keys[keys.length - 1]
        if (claims) {
          const opts = { algorithms: [alg], requiredClaims: 'exp' in claims ? ['exp'] : [] }
          if ('exp' in claims) opts.now = claims.exp - 10
          assert.deepEqual(jwt.verify(vec.compact, last, opts), claims)
          if ('exp' in claims) assert.throws(() => jwt.verify(vec.compact, last, { algorithms: [alg] }), { code: 'expired_token' })
        } else {
          assert.throws(() => jwt.verify(vec.compact, last, { algorithms: [alg], requiredClaims: [] }), { code: 'invalid_token' })
        }
      }
      const input = Buffer.from(vec.signing_input, 'utf8')
      const sig = b64u(vec.signature_b64u)
      for (const k of keys) k.verifyBytes(alg, input, sig)
      assert.throws(() => keys[keys.length - 1].verifyBytes(alg, Buffer.concat([input, Buffer.from('x')]), sig), { code: 'invalid_signature' })
      if (vec.deterministic) assert.deepEqual(key.signBytes(alg, input), sig)
    })
  }
}

for (const vec of loadVectors('jwk_thumbprint_rfc7638.json').vectors) {
  test(`thumbprint ${vec.id}`, () => {
    assert.equal(Key.fromJwk(vec.jwk).thumbprint(), vec.thumbprint_sha256)
    assert.equal(Key.fromJwk({ ...vec.jwk, kid: 'other' }).thumbprint(), vec.thumbprint_sha256)
  })
}
