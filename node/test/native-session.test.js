'use strict'
// Native-app sessions without a provider: the pending sign-in
// `begin` keeps in the storage, `complete` in another manager, the storage
// format's guards, the events, the options and the RFC 8252 redirect URI
// rules. The token endpoint is a closed port (connection refused), so
// nothing here reaches a network service.
const test = require('node:test')
const assert = require('node:assert/strict')
const { OidcClient, SessionManager, MemoryStorage } = require('..')

const REDIRECT = 'com.example.app:/oauth2redirect'
const ISSUER = 'http://127.0.0.1:9'

/** A public native client whose token endpoint refuses connections. */
function offlineClient(settings = {}) {
  return new OidcClient({
    clientId: 'native', redirectUri: REDIRECT, scopes: ['openid', 'email', 'offline_access'], timeout: 2, issuer: ISSUER,
    authorizationEndpoint: `${ISSUER}/authorize`, tokenEndpoint: `${ISSUER}/token`, endSessionEndpoint: `${ISSUER}/logout`,
    ...settings,
  })
}

/** Every event a manager emits, in order. */
function record(manager) {
  const events = []
  for (const name of ['refreshed', 'signedOut', 'storageFailed']) manager.on(name, (e) => events.push(e))
  return events
}

/** Events come from the native side through the event loop: give them a moment. */
const settle = () => new Promise((resolve) => setTimeout(resolve, 50))

/** A stored v2 session that is not due for a refresh. */
function storedSession(accessToken = 'at-1') {
  const session = {
    access_token: accessToken, token_type: 'Bearer', refresh_token: 'rt-1', scope: 'openid email offline_access',
    expires_at: Math.floor(Date.now() / 1000) + 3600, claims: { sub: 'u1', email: 'u1@example.com' },
  }
  return JSON.stringify({ v: 2, session })
}

const codeOf = (code) => (e) => {
  assert.equal(e.code, code, `${e.code}: ${e.message}`)
  return true
}

test('begin keeps the pending request in the storage; another manager completes it once: forged state, network failure, replay', async () => {
  const storage = new MemoryStorage()
  const started = Math.floor(Date.now() / 1000)
  const url = new URL(await new SessionManager(offlineClient(), storage).begin({ loginHint: 'a@example.com' }))
  assert.equal(`${url.origin}${url.pathname}`, `${ISSUER}/authorize`)
  assert.equal(url.searchParams.get('client_id'), 'native')
  assert.equal(url.searchParams.get('redirect_uri'), REDIRECT)
  assert.equal(url.searchParams.get('response_type'), 'code')
  assert.equal(url.searchParams.get('code_challenge_method'), 'S256')
  assert.equal(url.searchParams.get('login_hint'), 'a@example.com')
  const stored = JSON.parse(storage.value)
  assert.equal(stored.v, 2)
  assert.equal(stored.session, undefined, 'no session yet')
  const { pending } = stored
  assert.equal(pending.state, url.searchParams.get('state'))
  assert.equal(pending.nonce, url.searchParams.get('nonce'))
  assert.equal(pending.redirect_uri, REDIRECT)
  assert.ok(pending.code_verifier.length >= 43, 'the PKCE verifier is kept (the challenge went out)')
  assert.ok(pending.expires_at >= started + 600 && pending.expires_at <= Math.floor(Date.now() / 1000) + 600, `expires in pendingTtl (600 s): ${pending.expires_at}`)
  const before = storage.value

  // The app process died; a new one gets the callback.
  const other = new SessionManager(offlineClient(), storage)
  const events = record(other)
  await assert.rejects(other.complete(`${REDIRECT}?code=c1&state=forged-state`), codeOf('invalid_request'))
  assert.equal(storage.value, before, 'a callback for another state changes nothing')
  await assert.rejects(other.complete(`${REDIRECT}?code=c1`), codeOf('invalid_request'))
  assert.equal(storage.value, before, 'nor does one without state')

  // The right state: the pending request is spent before the exchange, which fails.
  await assert.rejects(other.complete(`${REDIRECT}?code=c1&state=${pending.state}`), codeOf('network'))
  assert.equal(storage.value, null, 'the pending request is spent (nothing else was stored)')
  assert.equal(await other.session(), null)
  await assert.rejects(other.complete(`${REDIRECT}?code=c1&state=${pending.state}`), codeOf('invalid_request'))
  await assert.rejects(new SessionManager(offlineClient(), storage).complete(`${REDIRECT}?code=c1&state=${pending.state}`), codeOf('invalid_request'))
  await settle()
  assert.deepEqual(events, [], 'no session began or ended')
})

test('a newer begin replaces the pending request; a stored session survives begin and a failed complete', async () => {
  const signedIn = storedSession()
  const storage = new MemoryStorage(signedIn)
  const manager = new SessionManager(offlineClient(), storage)
  const first = new URL(await manager.begin()).searchParams.get('state')
  const second = new URL(await manager.begin()).searchParams.get('state')
  assert.notEqual(first, second)
  const stored = JSON.parse(storage.value)
  assert.equal(stored.pending.state, second)
  assert.equal(stored.session.access_token, 'at-1', 'begin keeps the signed-in session')
  await assert.rejects(new SessionManager(offlineClient(), storage).complete(`${REDIRECT}?code=c&state=${first}`), codeOf('invalid_request'))
  assert.equal(JSON.parse(storage.value).pending.state, second, 'the older state is not the pending one')
  await assert.rejects(new SessionManager(offlineClient(), storage).complete(`${REDIRECT}?code=c&state=${second}`), codeOf('network'))
  assert.deepEqual(JSON.parse(storage.value), JSON.parse(signedIn), 'the pending request is gone, the session stays')
})

test('an expired pending request is refused with invalid_request and removed', async () => {
  const storage = new MemoryStorage()
  const url = new URL(await new SessionManager(offlineClient(), storage, { pendingTtl: 1 }).begin())
  const { expires_at: expiresAt } = JSON.parse(storage.value).pending
  // now_secs() >= expires_at: wait past the next whole second.
  await new Promise((resolve) => setTimeout(resolve, Math.max(0, expiresAt * 1000 - Date.now()) + 100))
  const late = new SessionManager(offlineClient(), storage)
  await assert.rejects(late.complete(`${REDIRECT}?code=c&state=${url.searchParams.get('state')}`), (e) => {
    assert.equal(e.code, 'invalid_request')
    assert.match(e.message, /expired/)
    return true
  })
  assert.equal(storage.value, null, 'the expired request is removed')
})

test('a storage whose load throws: storageFailed and code storage; then it works again and the session is intact', async () => {
  const text = storedSession()
  const storage = {
    value: text,
    failing: true,
    load() {
      if (this.failing) throw new Error('keychain locked before first unlock')
      return this.value
    },
    save(v) { this.value = v },
    clear() { this.value = null },
  }
  const manager = new SessionManager(offlineClient(), storage)
  const events = record(manager)
  const storageError = (e) => {
    assert.equal(e.code, 'storage', e.message)
    assert.match(e.message, /keychain locked before first unlock/)
    return true
  }
  await assert.rejects(manager.accessToken(), storageError)
  await assert.rejects(manager.refresh(), storageError)
  await assert.rejects(manager.begin(), storageError)
  await settle()
  assert.equal(events.length, 3, JSON.stringify(events))
  for (const e of events) {
    assert.equal(e.type, 'storageFailed')
    assert.equal(e.code, 'storage')
    assert.match(e.message, /keychain locked before first unlock/)
  }
  assert.equal(storage.value, text, 'nothing was written while the storage could not be read')

  storage.failing = false
  assert.equal(await manager.accessToken(), 'at-1')
  assert.deepEqual(await manager.session(), JSON.parse(text).session)
  // A refresh that cannot reach the provider keeps the session too.
  await assert.rejects(manager.refresh(), codeOf('network'))
  assert.equal(storage.value, text)
  assert.equal(await manager.accessToken(), 'at-1')
  await settle()
  assert.equal(events.length, 3, 'no further events')
})

test('a stored record in a newer format is refused with storage and left as it was', async () => {
  const newer = JSON.stringify({ v: 99, session: { access_token: 'from-the-future' }, extra: [1, 2, 3] })
  const storage = new MemoryStorage(newer)
  const manager = new SessionManager(offlineClient(), storage)
  const events = record(manager)
  const refused = (e) => {
    assert.equal(e.code, 'storage', e.message)
    assert.match(e.message, /format 99/)
    return true
  }
  await assert.rejects(manager.session(), refused)
  await assert.rejects(manager.accessToken(), refused)
  await assert.rejects(manager.refresh(), refused)
  await assert.rejects(manager.begin(), refused)
  await assert.rejects(manager.complete(`${REDIRECT}?code=c&state=s`), refused)
  await assert.rejects(manager.signOut(), refused)
  assert.equal(storage.value, newer, 'never overwritten nor cleared')
  await settle()
  assert.equal(events.length, 6, JSON.stringify(events))
  assert.ok(events.every((e) => e.type === 'storageFailed' && e.code === 'storage' && /format 99/.test(e.message)), JSON.stringify(events))
})

test('session options out of range are config errors naming the option', () => {
  const client = offlineClient()
  const storage = new MemoryStorage()
  for (const [options, name] of [
    [{ pendingTtl: 0 }, /pendingTtl/],
    [{ pendingTtl: 3601 }, /pendingTtl/],
    [{ pendingTtl: '600' }, /pendingTtl/],
    [{ lockPath: '' }, /lockPath/],
    [{ lockPath: 42 }, /lockPath/],
    [{ lockTimeout: -1 }, /lockTimeout/],
    [{ refreshMargin: -1 }, /refreshMargin/],
    [{ pendingTTL: 600 }, /pendingTTL/],
  ]) {
    assert.throws(() => new SessionManager(client, storage, options), (e) => {
      assert.equal(e.code, 'config', `${JSON.stringify(options)}: ${e.message}`)
      assert.match(e.message, name)
      return true
    }, JSON.stringify(options))
  }
  // The bounds themselves are accepted.
  for (const options of [{ pendingTtl: 1 }, { pendingTtl: 3600 }, { lockPath: '/tmp/idflow-session.lock', lockTimeout: 0 }]) {
    assert.ok(new SessionManager(client, storage, options) instanceof SessionManager)
  }
  assert.equal(storage.value, null, 'constructing touches no storage')
})

test('RFC 8252 redirect URIs: private-use, https and loopback accepted; dangerous and bare schemes refused naming the rule', async () => {
  for (const uri of [REDIRECT, 'com.example.app://callback', 'https://app.example.com/oauth2redirect', 'http://127.0.0.1:51004/cb', 'http://[::1]:61023/cb']) {
    const client = offlineClient({ redirectUri: uri })
    const request = client.authorizationRequest()
    assert.equal(new URL(request.url).searchParams.get('redirect_uri'), uri)
    assert.equal(request.redirectUri, uri)
  }
  const refused = [
    ['javascript:alert(1)//com.example.app', /javascript: scheme/],
    ['data:text/html,<script>alert(1)</script>', /data: scheme/],
    ['file:///etc/passwd', /file: scheme/],
    ['myapp:/cb', /myapp: scheme .*reverse-DNS/],
    ['com.example.app:callback', /has a path/],
    ['https://app.example.com/cb#frag', /fragment/],
  ]
  for (const [uri, rule] of refused) {
    const check = (e) => {
      assert.equal(e.code, 'config', `${uri}: ${e.message}`)
      assert.match(e.message, /redirect_uri/)
      assert.match(e.message, rule)
      return true
    }
    assert.throws(() => offlineClient({ redirectUri: uri }), check, `client ${uri}`)
    assert.throws(() => offlineClient().authorizationRequest({ redirectUri: uri }), check, `request ${uri}`)
    // begin refuses it before anything is stored.
    const storage = new MemoryStorage()
    await assert.rejects(async () => new SessionManager(offlineClient(), storage).begin({ redirectUri: uri }), check, `begin ${uri}`)
    assert.equal(storage.value, null)
    assert.throws(() => offlineClient().endSessionUrl({ postLogoutRedirectUri: uri }), (e) => {
      assert.equal(e.code, 'config', e.message)
      assert.match(e.message, /post_logout_redirect_uri/)
      assert.match(e.message, rule)
      return true
    }, `endSessionUrl ${uri}`)
  }
  const logout = new URL(offlineClient().endSessionUrl({ idTokenHint: 'h', postLogoutRedirectUri: 'com.example.app:/signed-out', state: 's' }))
  assert.equal(`${logout.origin}${logout.pathname}`, `${ISSUER}/logout`)
  assert.equal(logout.searchParams.get('post_logout_redirect_uri'), 'com.example.app:/signed-out')
  assert.equal(logout.searchParams.get('client_id'), 'native')
  assert.equal(logout.searchParams.get('id_token_hint'), 'h')
  assert.equal(logout.searchParams.get('state'), 's')
  // A callback at a private-use redirect URI is parsed like any other.
  const client = offlineClient()
  const request = client.authorizationRequest()
  assert.deepEqual(client.parseCallback(`${REDIRECT}?code=abc&state=${request.state}`, request.state), { code: 'abc', id_token: null, state: request.state })
})
