'use strict'
const test = require('node:test')
const assert = require('node:assert/strict')
const http = require('node:http')
const { jwt, Key, KeySet, JwksCache } = require('..')

function startServer() {
  const state = { body: '{}', status: 200, headers: { 'cache-control': 'max-age=300' }, hits: 0 }
  const server = http.createServer((req, res) => {
    state.hits += 1
    res.writeHead(state.status, { 'content-type': 'application/json', ...state.headers })
    res.end(state.body)
  })
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      state.url = `http://127.0.0.1:${server.address().port}/jwks.json`
      state.publish = (...keys) => {
        state.body = JSON.stringify(new KeySet(keys.map((k) => k.publicKey())).toJwks())
      }
      state.close = () => new Promise((r) => server.close(r))
      resolve(state)
    })
  })
}

const tokenFor = (key) => jwt.sign({ sub: 'u', exp: Math.floor(Date.now() / 1000) + 600 }, key)

test('fetch, cache and rotation', async () => {
  const s = await startServer()
  try {
    const k1 = Key.generate('ES256')
    s.publish(k1)
    const cache = new JwksCache(s.url, { refetchCooldown: 0 })
    assert.equal((await cache.verify(tokenFor(k1), { algorithms: ['ES256'] })).sub, 'u')
    await cache.verify(tokenFor(k1), { algorithms: ['ES256'] })
    assert.equal(s.hits, 1)
    const k2 = Key.generate('ES256')
    s.publish(k1, k2)
    assert.equal((await cache.verify(tokenFor(k2), { algorithms: ['ES256'] })).sub, 'u')
    assert.equal(s.hits, 2)
    assert.equal((await cache.keySet()).size, 2)
    const results = await Promise.all(Array.from({ length: 8 }, () => cache.verify(tokenFor(k1), { algorithms: ['ES256'] })))
    assert.equal(results.length, 8)
    assert.equal(s.hits, 2)
  } finally {
    await s.close()
  }
})

test('unknown kid refetch is rate limited', async () => {
  const s = await startServer()
  try {
    s.publish(Key.generate('ES256'))
    const cache = new JwksCache(s.url, { refetchCooldown: 60 })
    await cache.keySet()
    const stranger = Key.generate('ES256')
    for (let i = 0; i < 3; i++) {
      await assert.rejects(cache.verify(tokenFor(stranger), { algorithms: ['ES256'] }), { code: 'invalid_key' })
    }
    // One refetch for the first unknown kid, none for the rest within the cool-down.
    assert.equal(s.hits, 2)
  } finally {
    await s.close()
  }
})

test('serves the last good set when the server fails; errors reject with codes', async () => {
  const s = await startServer()
  try {
    const k1 = Key.generate('EdDSA')
    s.publish(k1)
    s.headers = { 'cache-control': 'max-age=0' }
    const cache = new JwksCache(s.url, { minTtl: 0.05 })
    await cache.keySet()
    s.status = 500
    await new Promise((r) => setTimeout(r, 100))
    assert.equal((await cache.verify(tokenFor(k1), { algorithms: ['EdDSA'] })).sub, 'u')
    assert.ok(s.hits >= 2)
    await assert.rejects(cache.refresh(), { code: 'network' })
    await assert.rejects(new JwksCache(s.url).keySet(), { code: 'network' })
    s.status = 200
    s.body = 'not json'
    await assert.rejects(new JwksCache(s.url).keySet(), { code: 'invalid_key' })
    assert.throws(() => new JwksCache('ftp://example.invalid/jwks'), { code: 'config' })
    await assert.rejects(cache.verify('garbage', { algorithms: ['EdDSA'] }), { code: 'invalid_token' })
  } finally {
    await s.close()
  }
})
