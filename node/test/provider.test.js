'use strict'
// Provider: the OIDC provider mounted through handle(), and the Express
// example in examples/express served on 127.0.0.1 and driven with fetch.
const test = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { Provider, KeySet, jwt, pkce } = require('..')
const { serveProvider, flowLogin, setCookie } = require('./helpers')

const E2E = path.join(__dirname, '..', '..', 'tests', 'e2e')
const CB = 'http://127.0.0.1:4567/callback'

function makeProvider(options = {}) {
  return new Provider(fs.readFileSync(path.join(E2E, 'project.json'), 'utf8'), { baseDir: E2E, ...options })
}

const header = (r, name) => (r.headers.find(([k]) => k.toLowerCase() === name) || [])[1]
const json = (r) => JSON.parse(r.body.toString('utf8'))
const form = (o) => new URLSearchParams(o).toString()
const FORM = { 'content-type': 'application/x-www-form-urlencoded' }

async function login(p, email) {
  const pair = pkce.generate()
  const q = new URLSearchParams({
    response_type: 'code', client_id: 'e2e', redirect_uri: CB, scope: 'openid email offline_access',
    state: 's1', nonce: 'n1', code_challenge: pair.challenge, code_challenge_method: 'S256',
  })
  const r = await p.handle('GET', `/oauth2/v1/authorize?${q}`)
  assert.equal(r.status, 302)
  // The request is bound to this browser: its answer is delivered only where the cookie comes back.
  const browser = setCookie(r, 'idflow_browser')
  assert.ok(browser)
  const request = new URL(header(r, 'location')).searchParams.get('request')
  const s = json(await p.handle('POST', '/v1/flow/start', { 'Content-Type': 'application/json', Cookie: browser }, JSON.stringify({ request })))
  assert.equal(s.status, 'waiting')
  assert.ok(s.executionSecret)
  const step = { executionId: s.executionId, stepId: s.stepId, interactionId: 'submit', input: { email } }
  // The execution id alone does not drive someone else's execution.
  const denied = await p.handle('POST', '/v1/flow/next', [['Content-Type', 'application/json']], Buffer.from(JSON.stringify(step)))
  assert.equal(denied.status, 403)
  assert.equal(json(denied).error.code, 'access_denied')
  const done = await p.handle('POST', '/v1/flow/next', [['Content-Type', 'application/json']],
    Buffer.from(JSON.stringify({ ...step, executionSecret: s.executionSecret })))
  const complete = json(done).redirect.url
  assert.ok(complete.startsWith('http://127.0.0.1:18181/oauth2/v1/authorize/complete?id='), complete)
  assert.equal((await p.handle('GET', complete)).status, 403) // another browser
  const delivered = await p.handle('GET', complete, [['Cookie', browser]])
  assert.equal(delivered.status, 302)
  assert.ok(setCookie(delivered, 'idflow_session'))
  const url = new URL(header(delivered, 'location'))
  assert.equal(`${url.origin}${url.pathname}`, CB)
  assert.equal(url.searchParams.get('state'), 's1')
  return { code: url.searchParams.get('code'), verifier: pair.verifier }
}

test('a code flow through Provider.handle', async () => {
  const p = makeProvider()
  assert.equal(p.issuer, 'http://127.0.0.1:18181/e2e')
  assert.deepEqual(p.discovery().code_challenge_methods_supported, ['S256'])
  const jwks = KeySet.fromJwks(json(await p.handle('GET', '/e2e/.well-known/jwks.json')))
  const { code, verifier } = await login(p, 'node@example.com')
  const redeem = () => p.handle('POST', '/oauth2/v1/token', FORM,
    form({ grant_type: 'authorization_code', code, redirect_uri: CB, client_id: 'e2e', code_verifier: verifier }))
  const r = await redeem()
  assert.equal(r.status, 200)
  assert.equal(header(r, 'cache-control'), 'no-store')
  const tokens = json(r)
  const claims = jwt.verify(tokens.id_token, jwks, { algorithms: ['RS256'], issuer: p.issuer, audience: ['e2e'] })
  assert.equal(claims.nonce, 'n1')
  assert.equal(claims.email, undefined, 'scope claims are at userinfo (OIDC Core §5.4)')
  const info = await p.handle('GET', '/oauth2/v1/userinfo', { authorization: `Bearer ${tokens.access_token}` })
  assert.equal(json(info).sub, claims.sub)
  assert.equal(json(info).email, 'node@example.com')
  // Replay: refused, and the first redemption's tokens are revoked.
  const again = await redeem()
  assert.equal(json(again).error, 'invalid_grant')
  const denied = await p.handle('GET', '/oauth2/v1/userinfo', { authorization: `Bearer ${tokens.access_token}` })
  assert.equal(denied.status, 401)
  assert.match(header(denied, 'www-authenticate'), /error="invalid_token"/)
  // Refresh rotation on a new login.
  const second = await login(p, 'node@example.com')
  const t2 = json(await p.handle('POST', '/oauth2/v1/token', FORM,
    form({ grant_type: 'authorization_code', code: second.code, redirect_uri: CB, client_id: 'e2e', code_verifier: second.verifier })))
  const rotated = json(await p.handle('POST', '/oauth2/v1/token', FORM, form({ grant_type: 'refresh_token', refresh_token: t2.refresh_token, client_id: 'e2e' })))
  assert.notEqual(rotated.refresh_token, t2.refresh_token)
  // The metrics (OpenMetrics text): tokens by grant, answers by status.
  const metrics = p.metrics().split('\n')
  for (const line of [
    'idflow_tokens_issued_total{grant="authorization_code"} 2',
    'idflow_tokens_issued_total{grant="refresh_token"} 1',
    'idflow_http_requests_total{route="token",status="400"} 1',
    'idflow_http_requests_total{route="userinfo",status="401"} 1',
  ]) assert.ok(metrics.includes(line), `${line} in\n${metrics.join('\n')}`)
  // Every store call is timed, by operation.
  const puts = metrics.find((l) => l.startsWith('idflow_store_operation_duration_seconds_count{op="put_record"} '))
  assert.ok(puts && Number(puts.split(' ')[1]) >= 1, metrics.join('\n'))
  assert.equal(metrics.at(-2), '# EOF')
})

test('keys rotate without a restart', async () => {
  const p = makeProvider()
  const kids = async () => json(await p.handle('GET', '/e2e/.well-known/jwks.json')).keys.map((k) => k.kid)
  const [old] = await kids()
  const tokenKid = async () => {
    const auth = { ...FORM, authorization: `Basic ${Buffer.from('K-reporting:reporting-secret-0123456789').toString('base64')}` }
    const t = json(await p.handle('POST', '/oauth2/v1/token', auth, form({ grant_type: 'client_credentials' })))
    return jwt.decodeUnverified(t.access_token).header.kid
  }
  // Published at once, signing after signing.prepublish (an hour by default).
  const waiting = p.rotateKeys('ES256')
  assert.equal(waiting.alg, 'ES256')
  assert.ok(waiting.signsFrom >= Date.now() / 1000 + 3590)
  assert.deepEqual(await kids(), [waiting.kid, old])
  assert.equal(await tokenKid(), old)
  const now = p.rotateKeys(undefined, 0)
  assert.equal(await tokenKid(), now.kid)
  assert.throws(() => p.rotateKeys('HS256'), { code: 'invalid_request' })
})

test('signing a user out everywhere ends their tokens', async () => {
  const p = makeProvider()
  const { code, verifier } = await login(p, 'lost-phone@example.com')
  const tokens = json(await p.handle('POST', '/oauth2/v1/token', FORM,
    form({ grant_type: 'authorization_code', code, redirect_uri: CB, client_id: 'e2e', code_verifier: verifier })))
  const [user] = await p.engine.searchUsers({ text: 'lost-phone@' })
  await p.engine.signOutEverywhere(user.userId)
  const refreshed = json(await p.handle('POST', '/oauth2/v1/token', FORM, form({ grant_type: 'refresh_token', refresh_token: tokens.refresh_token, client_id: 'e2e' })))
  assert.equal(refreshed.error, 'invalid_grant')
  assert.equal((await p.handle('GET', '/oauth2/v1/userinfo', { authorization: `Bearer ${tokens.access_token}` })).status, 401)
  await assert.rejects(p.engine.signOutEverywhere('U-nobody'), { code: 'user_not_found' })
})

test('users management through the provider engine, and configuration views', async () => {
  const p = makeProvider()
  const user = await p.engine.createUser('ops@example.com', { name: 'Ops' })
  assert.equal((await p.engine.getUser(user.userId)).name, 'Ops')
  await login(p, 'ops@example.com')
  const found = await p.engine.searchUsers({ text: 'ops@' })
  assert.deepEqual(found.map((u) => u.userId), [user.userId])
  const apps = p.applications()
  assert.deepEqual(apps.map((a) => a.clientId), ['e2e', 'implicit', 'native', 'partner', 'social-rp', 'web', 'web-post'])
  assert.ok(!JSON.stringify(apps).includes('secret-0123'))
  assert.deepEqual(p.accessKeys(), [{ id: 'K-reporting', scopes: ['reports:read', 'reports:write'], customClaims: { team: 'data' } }])
})

test('SQLite persistence, client_credentials and bad input', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'idflow-provider-'))
  const db = path.join(dir, 'idflow.db')
  const p = Provider.fromFile(path.join(E2E, 'project.json'), { database: db })
  const basic = 'Basic ' + Buffer.from('K-reporting:reporting-secret-0123456789').toString('base64')
  const results = await Promise.all([1, 2, 3, 4].map(() =>
    p.handle('POST', '/oauth2/v1/token', { ...FORM, authorization: basic }, form({ grant_type: 'client_credentials', scope: 'reports:read' }))))
  assert.equal(new Set(results.map((r) => json(r).access_token)).size, 4)
  const again = Provider.fromFile(path.join(E2E, 'project.json'), { database: db })
  const a = await again.handle('GET', '/e2e/.well-known/jwks.json')
  const b = await p.handle('GET', '/e2e/.well-known/jwks.json')
  assert.deepEqual(a.body, b.body)
  assert.throws(() => new Provider('{"projectId": "p"}'), (e) => e.code === 'config')
  assert.throws(() => Provider.fromFile(path.join(E2E, 'missing.json')), (e) => e.code === 'config')
  await assert.rejects(async () => p.handle('POST', '/oauth2/v1/token', {}, 42), TypeError)
  assert.equal((await p.handle('GET', '/nowhere')).status, 404)
})

test('the Express example mounts the provider', async () => {
  const { createApp } = require('../../examples/express/app.js')
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'idflow-express-'))
  const app = createApp(path.join(E2E, 'project.json'), { database: path.join(dir, 'idflow.db'), baseUrl: 'http://localhost' })
  const server = await new Promise((resolve) => { const s = app.listen(0, '127.0.0.1', () => resolve(s)) })
  const base = `http://127.0.0.1:${server.address().port}`
  try {
    const d = await (await fetch(`${base}/e2e/.well-known/openid-configuration`)).json()
    assert.equal(d.token_endpoint, 'http://localhost/oauth2/v1/token')
    const pair = pkce.generate()
    const q = new URLSearchParams({ response_type: 'code', client_id: 'e2e', redirect_uri: CB, scope: 'openid', state: 'x', code_challenge: pair.challenge, code_challenge_method: 'S256' })
    const r = await fetch(`${base}/oauth2/v1/authorize?${q}`, { redirect: 'manual' })
    assert.equal(r.status, 302)
    // fetch keeps no cookies: carry the browser's binding by hand.
    const cookie = r.headers.getSetCookie().find((c) => c.startsWith('idflow_browser=')).split(';')[0]
    const request = new URL(r.headers.get('location')).searchParams.get('request')
    const page = await fetch(`${base}/login/e2e?flow=sign-up-or-in&request=${request}`)
    assert.match(page.headers.get('content-security-policy'), /frame-ancestors 'none'/)
    const post = (p, body) => fetch(`${base}${p}`, { method: 'POST', headers: { 'content-type': 'application/json', cookie }, body: JSON.stringify(body) }).then((x) => x.json())
    const s = await post('/v1/flow/start', { request })
    const done = await post('/v1/flow/next', { executionId: s.executionId, stepId: s.stepId, interactionId: 'submit', input: { email: 'express@example.com' } })
    const complete = new URL(done.redirect.url)
    assert.equal(complete.pathname, '/oauth2/v1/authorize/complete')
    const delivered = await fetch(`${base}${complete.pathname}${complete.search}`, { redirect: 'manual', headers: { cookie } })
    assert.equal(delivered.status, 302)
    const code = new URL(delivered.headers.get('location')).searchParams.get('code')
    const tokens = await (await fetch(`${base}/oauth2/v1/token`, { method: 'POST', headers: FORM,
      body: form({ grant_type: 'authorization_code', code, redirect_uri: CB, client_id: 'e2e', code_verifier: pair.verifier }) })).json()
    assert.equal(tokens.token_type, 'Bearer')
    assert.ok(tokens.id_token)
    const users = await (await fetch(`${base}/admin/users?q=express@`)).json()
    assert.deepEqual(users.map((u) => u.email), ['express@example.com'])
  } finally {
    server.close()
  }
})

test('social login by API through a custom OAuth provider (an upstream idflow over HTTP)', async () => {
  const { server, base, provider: upstream } = await serveProvider((baseUrl) => makeProvider({ baseUrl }))
  try {
    const down = new Provider(JSON.stringify({
      projectId: 'down', baseUrl: 'http://127.0.0.1:9999', redirectUrls: ['http://127.0.0.1:7000/after'],
      oauthProviders: [{ name: 'acme', clientId: 'social-rp', clientSecret: 'social-rp-secret-0123456789',
        discoveryUrl: `${base}/e2e/.well-known/openid-configuration`, scopes: ['openid', 'email'], manageProviderTokens: true }],
    }))
    const start = await down.oauthAuthorize('acme', { redirectUrl: 'http://127.0.0.1:7000/after' })
    assert.deepEqual(Object.keys(start).sort(), ['codeVerifier', 'url'])
    assert.ok(start.url.startsWith(`${base}/oauth2/v1/authorize?`))
    assert.ok(start.codeVerifier.length >= 43 && !start.url.includes(start.codeVerifier))
    // The browser at the upstream: its login redirect, then its flow API.
    const signIn = async (url) => {
      const back = await down.handle('GET', await flowLogin(upstream, url, 'social-node@example.com'))
      assert.equal(back.status, 302)
      return new URL(header(back, 'location')).searchParams.get('code')
    }
    const code = await signIn(start.url)
    const info = down.oauthExchange(code, start.codeVerifier)
    assert.equal(info.user.email, 'social-node@example.com')
    assert.ok(info.user.loginIds[0].startsWith('acme:'))
    assert.throws(() => down.oauthExchange(code, start.codeVerifier), (e) => e.code === 'invalid_grant')
    // Another login's verifier (a stolen code) gets nothing, and spends the code.
    const other = await down.oauthAuthorize('acme', { redirectUrl: 'http://127.0.0.1:7000/after' })
    const stolen = await signIn(other.url)
    assert.throws(() => down.oauthExchange(stolen, start.codeVerifier), (e) => e.code === 'invalid_grant')
    assert.throws(() => down.oauthExchange(stolen, other.codeVerifier), (e) => e.code === 'invalid_grant')
    // Only approved redirect URLs.
    await assert.rejects(down.oauthAuthorize('acme', { redirectUrl: 'https://attacker.example/after' }),
      (e) => e.code === 'invalid_request' && e.message.includes('redirectUrls'))
    // Options are read by the core: a misspelt name or a wrong type is refused, not ignored.
    await assert.rejects(down.oauthAuthorize('acme', { redirectURL: 'http://127.0.0.1:7000/after' }),
      (e) => e.code === 'invalid_request' && e.message.includes('unknown option "redirectURL"'))
    await assert.rejects(down.oauthAuthorize('acme', { prompt: ['login', 7] }),
      (e) => e.code === 'invalid_request' && e.message.includes('prompt must be a string or a list of strings'))
    const kept = await down.providerToken(info.user.userId, 'acme')
    const ui = await upstream.handle('GET', '/oauth2/v1/userinfo', { authorization: `Bearer ${kept.accessToken}` })
    assert.equal(ui.status, 200)
    await assert.rejects(down.providerToken('U-nobody', 'acme'), (e) => e.code === 'user_not_found')
    await assert.rejects(down.oauthAuthorize('nobody', { redirectUrl: 'http://127.0.0.1:7000/after' }), (e) => e.code === 'invalid_request')
  } finally {
    server.close()
  }
})

test('the peer address feeds the per-address rate limits', async () => {
  const doc = JSON.parse(fs.readFileSync(path.join(E2E, 'project.json'), 'utf8'))
  doc.rateLimits = { flowStartsPerIp: 2 }
  const p = new Provider(JSON.stringify(doc), { baseDir: E2E })
  const start = () => JSON.stringify({ flowId: 'sign-up-or-in' })
  const JSONH = { 'content-type': 'application/json' }
  for (let i = 0; i < 2; i++) {
    assert.equal((await p.handle('POST', '/v1/flow/start', JSONH, start(), { peer: '203.0.113.7' })).status, 200)
  }
  const limited = await p.handle('POST', '/v1/flow/start', JSONH, start(), { peer: '203.0.113.7' })
  assert.equal(limited.status, 429)
  assert.equal(json(limited).error.code, 'rate_limited')
  assert.ok(header(limited, 'retry-after'))
  assert.equal((await p.handle('POST', '/v1/flow/start', JSONH, start(), { peer: '::ffff:203.0.113.8' })).status, 200)
  assert.equal((await p.handle('POST', '/v1/flow/start', JSONH, start())).status, 200, 'no peer: not counted per address')
  await assert.rejects(async () => p.handle('GET', '/health', {}, undefined, { peer: 'not-an-address' }), (e) => e.code === 'invalid_request')
})
