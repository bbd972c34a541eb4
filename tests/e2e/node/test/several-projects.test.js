// Several projects in one `idflow serve` (`--config` twice, `--db` with
// {project}), as openid-client and jose see them: each project is a provider
// of its own at its own issuer, and nothing of one is accepted by the other.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import * as client from 'openid-client';
import * as jose from 'jose';
import {
  CLIENTS, CookieJar, E2E_DIR, PROJECT_FILE, browserSkip, launchChromium, login, makeTempDir, removeTempDir, startCallbackServer, startServer, stopServer,
  uniqueEmail,
} from '../lib/helpers.js';

const insecure = { execute: [client.allowInsecureRequests] };

let server;
let dir;

before(async () => {
  dir = makeTempDir('idflow-e2e-projects-');
  const doc = JSON.parse(fs.readFileSync(PROJECT_FILE, 'utf8'));
  // Flow paths are relative to the project file's folder: made absolute here.
  doc.flows = doc.flows.map((f) => path.resolve(E2E_DIR, f));
  const configs = ['acme', 'globex'].map((projectId) => {
    const file = path.join(dir, `${projectId}.json`);
    fs.writeFileSync(file, JSON.stringify({ ...doc, projectId }));
    return file;
  });
  server = await startServer({ db: path.join(dir, '{project}.db'), config: configs, projectId: 'acme' });
});

after(async () => {
  assert.deepEqual(await stopServer(server), { code: 0, signal: null });
  removeTempDir(dir);
});

async function signIn(projectId, email) {
  const issuer = `${server.url}/${projectId}`;
  const config = await client.discovery(new URL(issuer), CLIENTS.public.id, undefined, client.None(), insecure);
  assert.equal(config.serverMetadata().token_endpoint, `${issuer}/oauth2/v1/token`);
  const codeVerifier = client.randomPKCECodeVerifier();
  const nonce = client.randomNonce();
  const url = client.buildAuthorizationUrl(config, {
    redirect_uri: CLIENTS.public.redirect,
    scope: 'openid offline_access',
    code_challenge: await client.calculatePKCECodeChallenge(codeVerifier),
    code_challenge_method: 'S256',
    nonce,
  });
  // A jar per project: a browser keeps each project's cookies to its path.
  const result = await login(url, email, new CookieJar());
  assert.equal(result.params.get('iss'), issuer);
  const tokens = await client.authorizationCodeGrant(config, result.url, { pkceCodeVerifier: codeVerifier, expectedNonce: nonce, idTokenExpected: true });
  return { config, tokens, issuer, jwks: jose.createRemoteJWKSet(new URL(config.serverMetadata().jwks_uri)) };
}

test('two projects in one process are two providers', async () => {
  const email = uniqueEmail();
  const acme = await signIn('acme', email);
  const globex = await signIn('globex', email);
  const acmeSub = acme.tokens.claims().sub;
  assert.notEqual(acmeSub, globex.tokens.claims().sub, 'the same email is two users');
  assert.ok(fs.existsSync(path.join(dir, 'acme.db')) && fs.existsSync(path.join(dir, 'globex.db')));

  // Each project's tokens verify with its own keys only.
  const { payload } = await jose.jwtVerify(acme.tokens.id_token, acme.jwks, { issuer: acme.issuer, audience: CLIENTS.public.id });
  assert.equal(payload.sub, acmeSub);
  await assert.rejects(jose.jwtVerify(acme.tokens.id_token, globex.jwks), (e) => e.code === 'ERR_JWKS_NO_MATCHING_KEY');

  // Userinfo: acme's access token at acme, refused at globex.
  const info = await client.fetchUserInfo(acme.config, acme.tokens.access_token, acmeSub);
  assert.equal(info.sub, acmeSub);
  const refused = await fetch(globex.config.serverMetadata().userinfo_endpoint, { headers: { authorization: `Bearer ${acme.tokens.access_token}` } });
  assert.equal(refused.status, 401);
  assert.match(refused.headers.get('www-authenticate'), /invalid_token/);

  // Refresh: acme's refresh token works at acme and is unknown at globex.
  await assert.rejects(client.refreshTokenGrant(globex.config, acme.tokens.refresh_token), (e) => e.error === 'invalid_grant');
  const refreshed = await client.refreshTokenGrant(acme.config, acme.tokens.refresh_token);
  assert.ok(refreshed.access_token);
});

test('in Chromium: the hosted page of one project signs in there, and its session is no session at the other', { skip: browserSkip(), timeout: 60000 }, async (t) => {
  const browser = await launchChromium();
  t.after(() => browser.close());
  const callback = await startCallbackServer('/callback');
  t.after(() => callback.close());
  const discover = (projectId) => client.discovery(new URL(`${server.url}/${projectId}`), CLIENTS.public.id, undefined, client.None(), insecure);
  const [acme, globex] = [await discover('acme'), await discover('globex')];
  const authorize = async (config, extra = {}) => {
    const verifier = client.randomPKCECodeVerifier();
    const state = client.randomState();
    const url = client.buildAuthorizationUrl(config, {
      redirect_uri: callback.url, scope: 'openid', state, code_challenge: await client.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256', ...extra,
    });
    return { url, verifier, state };
  };
  const context = await browser.newContext();
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));

  const first = await authorize(acme);
  await page.goto(first.url.href);
  assert.equal(new URL(page.url()).pathname, '/acme/login/acme');
  await page.getByLabel('Email').fill('carol@example.com');
  await page.getByRole('button', { name: 'Continue' }).click();
  await page.waitForURL((u) => u.href.startsWith(`${callback.url}?`), { timeout: 15000 });
  const tokens = await client.authorizationCodeGrant(acme, new URL(page.url()), { pkceCodeVerifier: first.verifier, expectedState: first.state });
  assert.deepEqual(errors, []);
  const session = (await context.cookies()).find((c) => c.name === 'idflow_session');
  assert.equal(session.path, '/acme', 'the session cookie is acme\'s alone');

  // prompt=none: acme's session answers at acme, and nothing at globex.
  const again = await authorize(acme, { prompt: 'none' });
  await page.goto(again.url.href);
  await page.waitForURL((u) => u.href.startsWith(`${callback.url}?`) && u.searchParams.get('state') === again.state, { timeout: 15000 });
  const silent = await client.authorizationCodeGrant(acme, new URL(page.url()), { pkceCodeVerifier: again.verifier, expectedState: again.state });
  assert.equal(silent.claims().sub, tokens.claims().sub);
  const other = await authorize(globex, { prompt: 'none' });
  await page.goto(other.url.href);
  await page.waitForURL((u) => u.href.startsWith(`${callback.url}?`) && u.searchParams.get('state') === other.state, { timeout: 15000 });
  assert.equal(new URL(page.url()).searchParams.get('error'), 'login_required');
});
