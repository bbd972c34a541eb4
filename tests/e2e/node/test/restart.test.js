// State survives a restart: the signing key, grants and refresh tokens live
// in the SQLite database, so a new `idflow serve` on the same database (and
// the same port, so the issuer is unchanged) keeps serving them.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import * as client from 'openid-client';
import * as jose from 'jose';
import net from 'node:net';
import { CLIENTS, CookieJar, PROJECT_ID, fetchManual, login, makeTempDir, removeTempDir, startServer, stopServer, uniqueEmail } from '../lib/helpers.js';

const insecure = { execute: [client.allowInsecureRequests] };
const dir = makeTempDir('idflow-e2e-restart-');
const db = path.join(dir, 'idflow.db');
let current;

after(async () => {
  if (current && !current.exited) await stopServer(current);
  removeTempDir(dir);
});

test('after SIGTERM and a restart on the same db: same JWKS, refresh and old tokens still work', async () => {
  current = await startServer({ db });
  const first = current;
  const config = await client.discovery(new URL(first.issuer), CLIENTS.public.id, undefined, client.None(), insecure);

  const verifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const nonce = client.randomNonce();
  const url = client.buildAuthorizationUrl(config, {
    redirect_uri: CLIENTS.public.redirect,
    scope: 'openid email offline_access',
    code_challenge: await client.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    state,
    nonce,
  });
  const email = uniqueEmail('restart');
  const jar = new CookieJar();
  const { url: callback } = await login(url, email, jar);
  const tokens = await client.authorizationCodeGrant(config, callback, { pkceCodeVerifier: verifier, expectedState: state, expectedNonce: nonce });
  assert.ok(tokens.refresh_token);
  const sub = tokens.claims().sub;

  // A second grant whose access token is revoked before the restart.
  const silentAuthorize = async () => {
    const v = client.randomPKCECodeVerifier();
    const st = client.randomState();
    const u = client.buildAuthorizationUrl(config, {
      redirect_uri: CLIENTS.public.redirect,
      scope: 'openid email',
      prompt: 'none',
      code_challenge: await client.calculatePKCECodeChallenge(v),
      code_challenge_method: 'S256',
      state: st,
    });
    const res = await fetchManual(u, jar);
    assert.equal(res.status, 302);
    const to = new URL(res.headers.get('location'));
    assert.ok(to.searchParams.get('code'), `a code at once: ${to}`);
    return client.authorizationCodeGrant(config, to, { pkceCodeVerifier: v, expectedState: st });
  };
  const doomed = await silentAuthorize();
  await client.tokenRevocation(config, doomed.access_token, { token_type_hint: 'access_token' });
  const jwksBefore = await (await fetch(`${first.issuer}/.well-known/jwks.json`)).text();
  const discoveryBefore = await (await fetch(`${first.issuer}/.well-known/openid-configuration`)).text();

  // Graceful stop: exit status 0 on SIGTERM.
  assert.deepEqual(await stopServer(first, { keepDb: true }), { code: 0, signal: null });
  await assert.rejects(fetch(`${first.url}/health`), 'the old server is gone');

  // Same database, same port: the issuer does not change.
  current = await startServer({ db, port: first.port });
  const second = current;
  assert.equal(second.issuer, first.issuer);
  const jwksAfter = await (await fetch(`${second.issuer}/.well-known/jwks.json`)).text();
  assert.equal(jwksAfter, jwksBefore, 'the JWKS is byte-identical after the restart');
  assert.equal(await (await fetch(`${second.issuer}/.well-known/openid-configuration`)).text(), discoveryBefore);

  // An access token from before the restart still verifies and works.
  const JWKS = jose.createRemoteJWKSet(new URL(`${second.issuer}/.well-known/jwks.json`));
  await jose.jwtVerify(tokens.access_token, JWKS, { issuer: second.issuer, audience: PROJECT_ID, typ: 'at+jwt' });
  assert.equal((await client.fetchUserInfo(config, tokens.access_token, sub)).email, email);

  // Revocations survive the restart.
  await assert.rejects(client.fetchUserInfo(config, doomed.access_token, sub), (e) => e.response?.status === 401);
  // So does the browser session behind the cookie: prompt=none still answers with a code.
  const silent = await silentAuthorize();
  assert.equal(silent.claims().sub, sub);

  // The refresh token from before the restart still refreshes (with the old config object).
  const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token);
  assert.equal(refreshed.claims().sub, sub);
  assert.ok(refreshed.refresh_token);
  await jose.jwtVerify(refreshed.id_token, JWKS, { issuer: second.issuer, audience: CLIENTS.public.id });
  // ... and rotation state survived too: the pre-restart token is now spent.
  await assert.rejects(client.refreshTokenGrant(config, tokens.refresh_token), (e) => e.error === 'invalid_grant');

  assert.deepEqual(await stopServer(second, { keepDb: true }), { code: 0, signal: null });
});

// A client holding a half-sent request head must not keep `idflow serve`
// alive after SIGTERM: the graceful stop has a 5 s deadline.
test('SIGTERM stops the server even while a client holds a half-sent request', async () => {
  const tmp = makeTempDir('idflow-e2e-sigterm-');
  const server = await startServer({ db: path.join(tmp, 'idflow.db') });
  const sock = net.connect(server.port, '127.0.0.1');
  sock.on('error', () => {});
  try {
    await new Promise((resolve) => sock.once('connect', resolve));
    sock.write('GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n'); // no blank line: the head never ends
    await new Promise((resolve) => setTimeout(resolve, 200));
    server.child.kill('SIGTERM');
    let timer;
    const outcome = await Promise.race([
      server.exitPromise,
      new Promise((resolve) => {
        timer = setTimeout(() => resolve('timeout'), 8000);
      }),
    ]);
    clearTimeout(timer);
    assert.notEqual(outcome, 'timeout', 'idflow serve still runs 8 s after SIGTERM');
    assert.deepEqual(outcome, { code: 0, signal: null });
  } finally {
    sock.destroy();
    if (!server.exited) {
      server.child.kill('SIGKILL');
      await server.exitPromise;
    }
    removeTempDir(tmp);
  }
});
