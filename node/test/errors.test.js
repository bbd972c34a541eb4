'use strict'
const test = require('node:test')
const assert = require('node:assert/strict')
const idflow = require('..')
const { loadVectors } = require('./helpers')

test('error codes match the shared list', () => {
  const doc = loadVectors('error_codes.json')
  assert.deepEqual([...idflow.ERROR_CODES], doc.codes.map((c) => c.code))
})

test('every code surfaces as an Error with .code and .family', () => {
  const doc = loadVectors('error_codes.json')
  for (const { code, family } of doc.codes) {
    assert.throws(() => idflow._native._debugRaise(code), (e) => e instanceof Error && e.code === code && e.family === family)
  }
})

test('a panic becomes an internal error, the process survives', () => {
  assert.throws(() => idflow._native._debugPanic(), (e) => e.code === 'internal')
})

test('bad input is a clean error with a code', () => {
  assert.throws(() => idflow.jwt.decodeUnverified('nope'), { code: 'invalid_token' })
  assert.throws(() => idflow.Key.fromPem('garbage'), { code: 'invalid_key' })
  assert.throws(() => idflow.Key.generate('none'), { code: 'unsupported_algorithm' })
  assert.throws(() => idflow.pkce.generateVerifier(12), { code: 'invalid_request' })
})
