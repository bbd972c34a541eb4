'use strict'
const test = require('node:test')
const assert = require('node:assert/strict')
const { pkce } = require('..')
const { loadVectors } = require('./helpers')

test('generate and verify', () => {
  const pair = pkce.generate()
  assert.equal(pair.verifier.length, 64)
  assert.equal(pair.method, 'S256')
  assert.ok(pkce.verify(pair.verifier, pair.challenge))
  assert.equal(pkce.generateVerifier(43).length, 43)
  assert.equal(pkce.generateVerifier(128).length, 128)
  assert.notEqual(pkce.generateVerifier(), pkce.generateVerifier())
  for (const n of [0, 42, 129]) assert.throws(() => pkce.generateVerifier(n), { code: 'invalid_request' })
})

test('plain needs opt-in', () => {
  const v = 'a'.repeat(43)
  assert.throws(() => pkce.verify(v, v, 'plain'), { code: 'invalid_request' })
  assert.ok(pkce.verify(v, v, 'plain', true))
})

test('RFC 7636 vectors', () => {
  const doc = loadVectors('pkce_rfc7636.json')
  for (const v of doc.vectors) {
    const plain = v.code_challenge_method === 'plain'
    assert.equal(pkce.verify(v.code_verifier, v.code_challenge, v.code_challenge_method, plain), v.expected === 'match', v.id)
    if (plain) assert.throws(() => pkce.verify(v.code_verifier, v.code_challenge, 'plain'), { code: 'invalid_request' })
    else if (v.expected === 'match') assert.equal(pkce.challenge(v.code_verifier), v.code_challenge, v.id)
  }
  for (const s of doc.verifier_syntax) {
    if (s.valid) pkce.challenge(s.code_verifier)
    else assert.throws(() => pkce.challenge(s.code_verifier), { code: 'invalid_request' }, s.reason)
  }
})
