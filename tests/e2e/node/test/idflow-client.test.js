// idflow's own Node client against `idflow serve`: the PKCE code flow
// through OidcClient, and SessionManager (sign-in, restore, refresh,
// sign-out on invalid_grant). Loads the binding the node suite built.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import path from 'node:path';
import { CLIENTS, REPO_ROOT, login, startServer, stopServer, uniqueEmail } from '../lib/helpers.js';

const { OidcClient, SessionManager, MemoryStorage } = createRequire(import.meta.url)(path.join(REPO_ROOT, 'node'));
const REDIRECT = 'http://127.0.0.1:8790/callback';

let server;
let client;

before(async () => {
  server = await startServer();
  client = await OidcClient.discover(`${server.issuer}/.well-known/openid-configuration`, {
    clientId: CLIENTS.public.id, redirectUri: REDIRECT, scopes: ['openid', 'email', 'offline_access'],
  });
});

after(async () => {
  await stopServer(server);
});

test('OidcClient: PKCE code flow, userinfo, refresh', async () => {
  const request = client.authorizationRequest();
  assert.match(request.url, /code_challenge_method=S256/);
  const email = uniqueEmail('idflow-node');
  const { url } = await login(request.url, email);
  const tokens = await client.handleCallback(url.href, request);
  assert.equal(tokens.claims.email, email);
  assert.equal(tokens.claims.iss, server.issuer);
  assert.equal((await client.userinfo(tokens.access_token)).sub, tokens.claims.sub);
  const refreshed = await client.refresh(tokens.refresh_token);
  assert.notEqual(refreshed.refresh_token, tokens.refresh_token);
});

test('SessionManager: sign-in, concurrent callers, restore, invalid_grant signs out', async () => {
  const storage = new MemoryStorage();
  const manager = new SessionManager(client, storage, { refreshMargin: 86400 });
  const request = client.authorizationRequest();
  const email = uniqueEmail('idflow-session');
  const session = await manager.complete((await login(request.url, email)).url.href, request);
  assert.equal(session.claims.email, email);
  assert.equal(await manager.status(), 'valid');
  // Eight callers at once: whether they share one refresh or a late one
  // refreshes again, no refresh token is ever used twice (the provider
  // would end the session) and every token handed out works.
  const tokens = await Promise.all(Array.from({ length: 8 }, () => manager.accessToken()));
  assert.ok(!tokens.includes(session.access_token));
  for (const t of new Set(tokens)) assert.equal((await client.userinfo(t)).email, email);
  assert.equal(await manager.status(), 'valid');
  const again = new SessionManager(client, storage);
  assert.equal(await again.accessToken(), (await manager.session()).access_token);
  await client.revoke((await manager.session()).refresh_token, 'refresh_token');
  await assert.rejects(manager.refresh(), (e) => e.code === 'invalid_grant');
  assert.equal(storage.value, null);
  assert.equal(await manager.status(), 'signed_out');
});
