'use strict'
// SessionManager against two real OPs on 127.0.0.1: the npm `oidc-provider`
// (any standard OP) and idflow's own provider served over HTTP.
const test = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const http = require('node:http')
const path = require('node:path')
const { OidcClient, SessionManager, MemoryStorage, Provider } = require('..')
const { CB, SECRET, startOp, browse } = require('./oidc-op')
const { serveProvider, flowLogin, loadVectors } = require('./helpers')

const E2E = path.join(__dirname, '..', '..', 'tests', 'e2e')
/** idflow's provider for the e2e project at `baseUrl`. */
const idflowProvider = (baseUrl) => new Provider(fs.readFileSync(path.join(E2E, 'project.json'), 'utf8'), { baseDir: E2E, baseUrl })

/** Storage whose calls are async, as a Keychain wrapper's would be. */
class AsyncStorage {
  constructor() {
    this.value = null
    this.broken = false
  }

  async load() {
    return this.value
  }

  async save(session) {
    await new Promise((resolve) => setTimeout(resolve, 1))
    if (this.broken) throw new Error('keychain locked')
    this.value = session
  }

  async clear() {
    this.value = null
  }
}

test('SessionManager against oidc-provider: sign-in, one refresh for concurrent callers, restore, invalid_grant signs out', async (t) => {
  const op = await startOp()
  t.after(() => op.server.close())
  const client = await OidcClient.discover(`${op.issuer}/.well-known/openid-configuration`, {
    clientId: 'rp', redirectUri: CB, clientSecret: SECRET, scopes: ['openid', 'email', 'offline_access'],
  })
  const storage = new AsyncStorage()
  const manager = new SessionManager(client, storage, { refreshMargin: 86400 })
  assert.equal(await manager.status(), 'signed_out')
  await assert.rejects(manager.accessToken(), (e) => e.code === 'login_required')
  const request = client.authorizationRequest({ prompt: 'consent' })
  const session = await manager.complete(await browse(request.url), request)
  assert.equal(session.claims.sub, 'alice')
  assert.ok(session.refresh_token && session.expires_at > Date.now() / 1000)
  assert.equal(await manager.status(), 'valid')
  assert.ok(storage.value.includes(session.refresh_token))
  // Eight concurrent callers, one token request.
  const before = op.counts.token
  const tokens = await Promise.all(Array.from({ length: 8 }, () => manager.accessToken()))
  assert.equal(op.counts.token - before, 1)
  assert.equal(new Set(tokens).size, 1)
  assert.notEqual(tokens[0], session.access_token)
  const info = await client.userinfo(tokens[0])
  assert.equal(info.email, 'alice@example.com')
  // The app restarts over the same storage.
  const again = new SessionManager(client, storage)
  assert.equal(await again.isValid(), true)
  assert.equal(await again.accessToken(), tokens[0])
  // The OP ends the grant: the next refresh signs the user out.
  const current = await manager.session()
  await client.revoke(current.refresh_token, 'refresh_token')
  await assert.rejects(manager.accessToken(), (e) => e.code === 'invalid_grant')
  assert.equal(storage.value, null)
  assert.equal(await manager.status(), 'signed_out')
})

test('SessionManager against idflow: storage failures lose nothing, sign-out revokes, bad arguments', async (t) => {
  const { server, base, provider } = await serveProvider(idflowProvider)
  t.after(() => server.close())
  const client = await OidcClient.discover(`${base}/e2e/.well-known/openid-configuration`, {
    clientId: 'e2e', redirectUri: 'http://127.0.0.1:5555/callback', scopes: ['openid', 'email', 'offline_access'],
  })
  const signIn = async (manager, email) => {
    const request = client.authorizationRequest()
    return manager.complete(await flowLogin(provider, request.url, email), request)
  }
  const storage = new AsyncStorage()
  const manager = new SessionManager(client, storage, { refreshMargin: 86400 })
  const session = await signIn(manager, 'node-session@example.com')
  assert.equal(session.claims.email, 'node-session@example.com')
  assert.deepEqual(Object.keys(session).sort(), [...loadVectors('result_shapes.json').session].sort(), "the fields of every binding's session")
  storage.broken = true
  await assert.rejects(manager.refresh(), (e) => e.code === 'storage' && e.message.includes('keychain locked'))
  storage.broken = false
  const held = await manager.session()
  assert.notEqual(held.refresh_token, session.refresh_token)
  assert.ok(storage.value.includes(held.refresh_token), 'the retried save stored the rotated tokens')
  await manager.signOut()
  assert.equal(storage.value, null)
  await assert.rejects(client.refresh(held.refresh_token), (e) => e.code === 'invalid_grant')
  // A sync storage works too; a broken one is a storage error.
  const memory = new MemoryStorage()
  const m2 = new SessionManager(client, memory)
  await signIn(m2, 'node-memory@example.com')
  // Storage format 2: {"v":2,"session":{...}}.
  const kept = JSON.parse(memory.value)
  assert.equal(kept.v, 2)
  assert.equal(kept.session.claims.email, 'node-memory@example.com')
  const failing = new SessionManager(client, { load() { throw new Error('no keychain') }, save() {}, clear() {} })
  await assert.rejects(failing.accessToken(), (e) => e.code === 'storage' && e.message.includes('no keychain'))
  assert.throws(() => new SessionManager(client, {}), TypeError)
  assert.throws(() => new SessionManager(client, memory, { refreshMargin: -1 }), (e) => e.code === 'config')
})

test('the README snippets: session-manager.js and social-login.js', async (t) => {
  const os = require('node:os')
  const { server, base, provider: upstream } = await serveProvider(idflowProvider)
  t.after(() => server.close())
  const browser = (url, email) => flowLogin(upstream, url, email)
  const discovery = `${base}/e2e/.well-known/openid-configuration`

  // session-manager.js: sign in, a 0600 file, tokens for API calls, restart, sign out.
  const snippet = require('../../examples/express/session-manager.js')
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'idflow-session-'))
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }))
  const file = path.join(dir, 'session.json')
  const { client, manager } = await snippet.sessionManager(discovery, 'e2e', 'http://127.0.0.1:5555/callback', file)
  const session = await snippet.signIn(manager, client, (url) => browser(url, 'snippet-node@example.com'))
  assert.equal(session.claims.email, 'snippet-node@example.com')
  assert.equal(fs.statSync(file).mode & 0o777, 0o600)
  const authorization = await snippet.authorization(manager)
  assert.equal(authorization, `Bearer ${session.access_token}`)
  const again = (await snippet.sessionManager(discovery, 'e2e', 'http://127.0.0.1:5555/callback', file)).manager
  assert.equal(await snippet.authorization(again), authorization)
  await again.signOut()
  assert.equal(fs.existsSync(file), false)

  // social-login.js: /login/acme → upstream → /v1/oauth/callback → /after-login.
  const { createSocialApp } = require('../../examples/express/social-login.js')
  const web = http.createServer()
  await new Promise((resolve) => web.listen(0, '127.0.0.1', resolve))
  const appUrl = `http://127.0.0.1:${web.address().port}`
  web.close()
  const project = {
    projectId: 'snippet', baseUrl: appUrl, redirectUrls: [appUrl],
    oauthProviders: [{ name: 'acme', clientId: 'social-rp', clientSecret: 'social-rp-secret-0123456789', discoveryUrl: discovery, scopes: ['openid', 'email', 'profile'] }],
  }
  const app = createSocialApp(JSON.stringify(project), { appUrl })
  const listening = await new Promise((resolve) => { const s = app.listen(new URL(appUrl).port, '127.0.0.1', () => resolve(s)) })
  t.after(() => listening.close())
  const start = await fetch(`${appUrl}/login/acme`, { redirect: 'manual' })
  assert.equal(start.status, 302)
  // fetch keeps no cookies: this browser's is carried by hand.
  const login = start.headers.getSetCookie().find((c) => c.startsWith('idflow_login='))
  assert.match(login, /HttpOnly/i)
  const cookie = login.split(';')[0]
  const callback = await browser(start.headers.get('location'), 'snippet-social-node@example.com')
  assert.ok(callback.startsWith(`${appUrl}/v1/oauth/callback?`), callback)
  const back = await fetch(callback, { redirect: 'manual' })
  assert.equal(back.status, 302)
  const after = back.headers.get('location')
  // Another browser (without the cookie, so without the verifier) cannot spend the code.
  assert.equal((await fetch(after, { redirect: 'manual' })).status, 400)
  const done = await fetch(after, { redirect: 'manual', headers: { cookie } })
  assert.equal(done.status, 200)
  const { user } = await done.json()
  assert.equal(user.email, 'snippet-social-node@example.com')
  assert.ok(user.loginIds[0].startsWith('acme:'))
  assert.ok(done.headers.getSetCookie().some((c) => c.startsWith('session=')))
  // The verifier is used once.
  assert.equal((await fetch(after, { redirect: 'manual', headers: { cookie } })).status, 400)
})
