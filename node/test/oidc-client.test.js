'use strict'
// OidcClient against a real OP nobody here wrote: the npm `oidc-provider`
// on 127.0.0.1, with a small interaction handler that signs the user in.
const test = require('node:test')
const assert = require('node:assert/strict')
const { OidcClient, Key, KeySet, jwt } = require('..')
const { CB, SECRET, startOp, browse } = require('./oidc-op')
const { loadVectors } = require('./helpers')

test('OidcClient against oidc-provider: discovery, code + PKCE, userinfo, refresh, revoke, end session', async (t) => {
  const op = await startOp()
  t.after(() => op.server.close())
  const client = await OidcClient.discover(`${op.issuer}/.well-known/openid-configuration`, {
    clientId: 'rp', redirectUri: CB, clientSecret: SECRET, scopes: ['openid', 'email', 'offline_access'],
  })
  assert.equal(client.endpoints.issuer, op.issuer)
  const request = client.authorizationRequest({ prompt: 'consent' })
  assert.ok(request.codeVerifier)
  const callback = await browse(request.url)
  const tokens = await client.handleCallback(callback, request)
  assert.equal(tokens.token_type, 'Bearer')
  assert.equal(tokens.claims.sub, 'alice')
  assert.equal(tokens.claims.nonce, request.nonce)
  assert.ok(tokens.refresh_token)
  const info = await client.userinfo(tokens.access_token)
  assert.equal(info.email, 'alice@example.com')
  const refreshed = await client.refresh(tokens.refresh_token)
  assert.equal(refreshed.claims.sub, 'alice')
  await client.revoke(refreshed.refresh_token, 'refresh_token')
  await assert.rejects(client.refresh(refreshed.refresh_token), (e) => e.code === 'invalid_grant')
  // The same callback twice: the OP refuses the spent code.
  await assert.rejects(client.handleCallback(callback, request), (e) => e.code === 'invalid_grant')
  const logout = client.endSessionUrl({ idTokenHint: tokens.id_token, postLogoutRedirectUri: 'http://127.0.0.1:5555/bye', state: 's' })
  assert.ok(logout.startsWith(`${op.issuer}/session/end?`), logout)
  // Options are read by the core, as strictly as Python's keyword arguments:
  // a misspelt name or a value of the wrong type is an error naming it.
  const bad = (message) => (e) => e.code === 'invalid_request' && e.message.includes(message)
  await assert.rejects(client.exchangeCode('c', { params: { resource: 7 } }), bad('params.resource must be a string'))
  await assert.rejects(client.exchangeCode('c', { codeVerifer: 'v' }), bad('unknown option "codeVerifer"'))
  await assert.rejects(client.validateIdToken(tokens.id_token, { nonce: 1 }), bad('nonce must be a string'))
  assert.throws(() => client.endSessionUrl({ postLogoutRedirectURI: 'http://127.0.0.1:5555/bye' }), bad('unknown option "postLogoutRedirectURI"'))
})

test('private_key_jwt at oidc-provider: the RFC 7523 assertion authenticates the code exchange and the refresh', async (t) => {
  const op = await startOp()
  t.after(() => op.server.close())
  const discovery = `${op.issuer}/.well-known/openid-configuration`
  const client = await OidcClient.discover(discovery, { clientId: 'rp-jwt', redirectUri: CB, clientAuth: 'private_key_jwt', scopes: ['openid', 'email'] }, op.rpKey)
  const request = client.authorizationRequest({ prompt: 'consent' })
  const tokens = await client.handleCallback(await browse(request.url), request)
  assert.equal(tokens.claims.aud, 'rp-jwt')
  assert.equal(tokens.claims.email, 'alice@example.com', 'email comes from userinfo (oidc-provider keeps it out of the id_token)')
  // Another key is refused by the OP: invalid_client.
  const wrong = await OidcClient.discover(discovery, { clientId: 'rp-jwt', redirectUri: CB, clientAuth: 'private_key_jwt' }, Key.generate('ES256'))
  const r2 = wrong.authorizationRequest()
  await assert.rejects(wrong.handleCallback(await browse(r2.url), r2), (e) => e.code === 'invalid_client')
})

test('client_secret_post, callback errors and discovery checks', async (t) => {
  const op = await startOp()
  t.after(() => op.server.close())
  const discovery = `${op.issuer}/.well-known/openid-configuration`
  const post = await OidcClient.discover(discovery, { clientId: 'rp-post', redirectUri: CB, clientSecret: SECRET, clientAuth: 'client_secret_post' })
  const request = post.authorizationRequest()
  const tokens = await post.handleCallback(await browse(request.url), request)
  assert.equal(tokens.claims.aud, 'rp-post')
  // A wrong secret is the OP's invalid_client.
  const wrong = await OidcClient.discover(discovery, { clientId: 'rp', redirectUri: CB, clientSecret: 'wrong-secret-0123456789' })
  const r2 = wrong.authorizationRequest()
  await assert.rejects(wrong.handleCallback(await browse(r2.url), r2), (e) => e.code === 'invalid_client')
  // State and error= callbacks are checked before any exchange.
  assert.throws(() => post.parseCallback(`${CB}?code=x&state=nope`, request.state), (e) => e.code === 'invalid_request')
  assert.throws(() => post.parseCallback(`${CB}?error=access_denied&state=${request.state}`, request.state), (e) => e.code === 'access_denied')
  assert.throws(() => post.parseCallback(`${CB}?code=x&state=${request.state}&iss=https%3A%2F%2Fevil`, request.state), (e) => e.code === 'invalid_issuer')
  // prompt=none without a session: the OP says login_required.
  const silent = post.authorizationRequest({ prompt: 'none' })
  const answer = await browse(silent.url)
  await assert.rejects(post.handleCallback(answer, silent), (e) => e.code === 'login_required')
  await assert.rejects(OidcClient.discover(discovery, { clientId: 'rp', redirectUri: CB, issuer: 'https://other.example' }), (e) => e.code === 'invalid_issuer')
  await assert.rejects(OidcClient.discover('http://127.0.0.1:9/.well-known/openid-configuration', { clientId: 'rp', redirectUri: CB, timeout: 2 }), (e) => e.code === 'network')
  assert.throws(() => new OidcClient({ clientId: 'rp', redirectUri: CB, tokenEndpoint: 'http://x/t' }), (e) => e.code === 'config')
})

test('completeCallback: the callback work without network', () => {
  const key = Key.generate('ES256')
  const keys = new KeySet([key.publicKey()])
  const client = new OidcClient({ clientId: 'rp', redirectUri: 'https://rp.example/cb', issuer: 'https://op.example',
    authorizationEndpoint: 'https://op.example/a', tokenEndpoint: 'https://op.example/t' })
  const request = client.authorizationRequest()
  const now = Math.floor(Date.now() / 1000)
  const claims = { iss: 'https://op.example', sub: 'u1', aud: 'rp', iat: now, exp: now + 300, nonce: request.nonce }
  const body = Buffer.from(JSON.stringify({ access_token: 'at', token_type: 'Bearer', id_token: jwt.sign(claims, key) }))
  const cb = `https://rp.example/cb?code=c&state=${request.state}`
  assert.equal(client.completeCallback(cb, request, 200, body, keys).claims.sub, 'u1')
  // The same fields as every other binding (tests/vectors/result_shapes.json).
  const shapes = loadVectors('result_shapes.json')
  assert.deepEqual(Object.keys(client.parseCallback(cb, request.state)).sort(), [...shapes.callback].sort())
  const full = Buffer.from(JSON.stringify({ access_token: 'at', token_type: 'Bearer', expires_in: 60, refresh_token: 'rt', scope: 'openid', id_token: jwt.sign(claims, key) }))
  assert.deepEqual(Object.keys(client.completeCallback(cb, request, 200, full, keys)).sort(), [...shapes.token_set].sort())
  const other = Buffer.from(JSON.stringify({ access_token: 'at', token_type: 'Bearer', id_token: jwt.sign({ ...claims, nonce: 'x' }, key) }))
  assert.throws(() => client.completeCallback(cb, request, 200, other, keys), (e) => e.code === 'invalid_token')
  assert.throws(() => client.completeCallback(cb, request, 400, Buffer.from('{"error":"invalid_grant"}'), keys), (e) => e.code === 'invalid_grant')
})
