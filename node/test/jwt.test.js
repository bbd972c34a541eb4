'use strict'
const test = require('node:test')
const assert = require('node:assert/strict')
const { jwt, Key, KeySet, ALGORITHMS } = require('..')

const future = () => Math.floor(Date.now() / 1000) + 600

for (const alg of ALGORITHMS) {
  test(`round trip ${alg}`, () => {
    const key = Key.generate(alg)
    assert.equal(key.alg, alg)
    assert.equal(key.kid, key.thumbprint())
    const claims = { sub: 'u1', exp: future(), nested: { a: [1, 2.5, null, true, 'x'] } }
    const token = jwt.sign(claims, key)
    const verifier = alg.startsWith('HS') ? key : key.publicKey()
    assert.deepEqual(jwt.verify(token, verifier, { algorithms: [alg] }), claims)
    const d = jwt.decodeUnverified(token)
    assert.deepEqual(d.header, { alg, typ: 'JWT', kid: key.kid })
    if (!alg.startsWith('HS')) {
      for (const priv of [true, false]) {
        const again = Key.fromJwk(key.toJwk(priv))
        assert.equal(again.thumbprint(), key.thumbprint())
        assert.equal(again.hasPrivate, priv)
        jwt.verify(token, Key.fromPem(key.toPem(priv)), { algorithms: [alg] })
      }
    }
  })
}

test('key set selects by kid with no fallback', () => {
  const keys = ['a', 'b', 'c'].map((k) => Key.generate('ES256').withKid(k))
  const ks = new KeySet(keys.map((k) => k.publicKey()))
  assert.equal(ks.size, 3)
  assert.deepEqual(ks.kids, ['a', 'b', 'c'])
  for (const k of keys) assert.equal(jwt.verify(jwt.sign({ exp: future(), k: k.kid }, k), ks, { algorithms: ['ES256'] }).k, k.kid)
  const forged = jwt.sign({ exp: future() }, keys[0], { kid: 'zz' })
  assert.throws(() => jwt.verify(forged, ks, { algorithms: ['ES256'] }), { code: 'invalid_key' })
  assert.deepEqual(KeySet.fromJwks(ks.toJwks()).kids, ks.kids)
  assert.deepEqual(KeySet.fromJwks(JSON.stringify(ks.toJwks())).kids, ks.kids)
})

test('strict defaults', () => {
  const key = Key.generate('HS256')
  const now = Math.floor(Date.now() / 1000)
  const cases = [
    [{ sub: 'x' }, {}, 'invalid_token'],
    [{ exp: now - 120 }, {}, 'expired_token'],
    [{ exp: future(), nbf: now + 600 }, {}, 'immature_token'],
    [{ exp: future(), iat: now + 600 }, {}, 'immature_token'],
    [{ exp: future(), iss: 'evil' }, { issuer: 'good' }, 'invalid_issuer'],
    [{ exp: future(), aud: 'other' }, { audience: 'me' }, 'invalid_audience'],
    [{ exp: future(), aud: 'me' }, {}, 'invalid_audience'],
    [{ exp: 'tomorrow' }, {}, 'invalid_token'],
  ]
  for (const [claims, opts, code] of cases) {
    assert.throws(() => jwt.verify(jwt.sign(claims, key), key, { algorithms: ['HS256'], ...opts }), { code }, JSON.stringify(claims))
  }
  jwt.verify(jwt.sign({ exp: now - 30 }, key), key, { algorithms: ['HS256'] })
  const ok = jwt.sign({ exp: future(), aud: ['x', 'me'] }, key)
  assert.deepEqual(jwt.verify(ok, key, { algorithms: ['HS256'], audience: ['me'] }).aud, ['x', 'me'])
  assert.throws(() => jwt.verify(ok, key, { algorithms: [] }), { code: 'config' })
  assert.throws(() => jwt.verify(ok, key, { algorithms: ['HS256'], leeway: 301 }), { code: 'config' })
  assert.throws(() => jwt.verify(ok, key, { algorithms: ['HS256'], maxTokenSize: 10 }), { code: 'invalid_token' })
})

test('algorithm confusion and none are refused', () => {
  const rsa = Key.generate('RS256')
  assert.throws(() => Key.fromSecret(rsa.toPem()), { code: 'invalid_key' })
  const hs = Key.generate('HS256')
  const token = jwt.sign({ exp: future() }, hs)
  assert.throws(() => jwt.verify(token, rsa.publicKey(), { algorithms: ['HS256', 'RS256'] }), { code: 'invalid_key' })
  assert.throws(() => jwt.verify(token, hs, { algorithms: ['RS256'] }), { code: 'unsupported_algorithm' })
  const payload = token.split('.')[1]
  for (const none of ['eyJhbGciOiJub25lIn0', 'eyJhbGciOiJOb05lIn0']) {
    assert.throws(() => jwt.verify(`${none}.${payload}.`, hs, { algorithms: ['HS256'] }), { code: 'unsupported_algorithm' })
  }
})

test('malformed input never crashes', () => {
  const key = Key.generate('ES256')
  for (const s of ['', '.', '..', 'a.b.c', 'e30.e30.', '\u0000'.repeat(10), 'é.é.é', 'A'.repeat(20000)]) {
    assert.throws(() => jwt.verify(s, key, { algorithms: ['ES256'] }), (e) => typeof e.code === 'string')
    assert.throws(() => Key.fromJwk(s || '{}'), (e) => typeof e.code === 'string')
  }
  assert.throws(() => jwt.sign({ a: 1 }, {}), Error)
  for (const bad of [[1], 'x', 1, null, undefined, () => 1]) {
    assert.throws(() => jwt.sign(bad, key), { code: 'invalid_request' }, String(bad))
  }
})

test('Verifier binds key and options once', () => {
  const key = Key.generate('ES256')
  const v = new jwt.Verifier(key.publicKey(), { algorithms: ['ES256'], issuer: 'me', audience: 'api' })
  const good = jwt.sign({ exp: future(), iss: 'me', aud: 'api', n: [1, { x: null }] }, key)
  assert.deepEqual(v.verify(good).n, [1, { x: null }])
  assert.throws(() => v.verify(jwt.sign({ exp: future(), iss: 'other', aud: 'api' }, key)), { code: 'invalid_issuer' })
  const ks = new jwt.Verifier(new KeySet([key.publicKey()]), { algorithms: ['ES256'], issuer: 'me', audience: ['api'] })
  assert.equal(ks.verify(good).iss, 'me')
  assert.throws(() => new jwt.Verifier(key, { algorithms: [] }), { code: 'config' })
  assert.throws(() => v.verify('garbage'), { code: 'invalid_token' })
})

// jwt.verify keeps the converted options per key; an attacker-visible
// difference between a kept Verifier and a fresh conversion would be a bug.
test('jwt.verify never verifies with options or keys other than the ones given', () => {
  const key = Key.generate('HS256')
  const other = Key.generate('HS256')
  const token = jwt.sign({ exp: future(), iss: 'me', aud: 'api' }, key)
  const opts = { algorithms: ['HS256'], issuer: 'me', audience: 'api' }
  assert.equal(jwt.verify(token, key, opts).iss, 'me')
  assert.equal(jwt.verify(token, key, opts).iss, 'me', 'the kept Verifier answers the same')
  // The same options object, changed: the change counts.
  opts.audience = 'someone-else'
  assert.throws(() => jwt.verify(token, key, opts), { code: 'invalid_audience' })
  opts.audience = 'api'
  opts.issuer = 'not-me'
  assert.throws(() => jwt.verify(token, key, opts), { code: 'invalid_issuer' })
  opts.issuer = 'me'
  // Another key with the same options is its own Verifier.
  assert.throws(() => jwt.verify(token, other, opts), (e) => e.code === 'invalid_key' || e.code === 'invalid_signature')
  assert.equal(jwt.verify(token, key, opts).aud, 'api')
  // More options values than are kept per key: each still counts.
  for (let i = 0; i < 40; i++) {
    assert.throws(() => jwt.verify(token, key, { algorithms: ['HS256'], audience: `a${i}` }), { code: 'invalid_audience' })
  }
  assert.equal(jwt.verify(token, key, { algorithms: ['HS256'], audience: 'api' }).iss, 'me')
  // Options the text cannot name exactly are converted on each call, as a
  // fresh Verifier converts them.
  const inherited = Object.create({ algorithms: ['HS256'], audience: 'api' })
  const odd = [inherited, { algorithms: ['HS256'], audience: 'api', leeway: NaN }, { algorithms: ['HS256'], audience: ['api', 7] }]
  for (const o of odd) {
    let fresh
    try {
      fresh = { claims: new jwt.Verifier(key, o).verify(token) }
    } catch (e) {
      fresh = { code: e.code }
    }
    let viaVerify
    try {
      viaVerify = { claims: jwt.verify(token, key, o) }
    } catch (e) {
      viaVerify = { code: e.code }
    }
    assert.deepEqual(viaVerify, fresh)
  }
  // Bad options are refused every time, not remembered as good.
  assert.throws(() => jwt.verify(token, key, { algorithms: [] }), { code: 'config' })
  assert.throws(() => jwt.verify(token, key, { algorithms: [] }), { code: 'config' })
})
