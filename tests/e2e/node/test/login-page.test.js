// The hosted login page in a real browser: headless Chromium (through
// playwright-core, no downloaded browser) signs in on /login/e2e and lands
// on a loopback callback server with a code, which openid-client redeems.
//
// Needs /usr/bin/chromium (or $CHROMIUM_PATH). Without it the tests are
// skipped, unless CI=true, where a missing browser is a failure.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import * as client from 'openid-client';
import * as jose from 'jose';
import { CLIENTS, NODE_DIR, startCallbackServer, startServer, stopServer, uniqueEmail } from '../lib/helpers.js';

const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const ARTIFACTS = path.join(NODE_DIR, 'artifacts');
const insecure = { execute: [client.allowInsecureRequests] };

const haveChromium = fs.existsSync(CHROMIUM);
const ci = process.env.CI === 'true';
const skip = !haveChromium && !ci ? `${CHROMIUM} is not installed (apt-get install chromium); skipping the browser tests` : false;
if (skip) console.log(`# SKIP: ${skip}`);

let server;
let browser;
let callback;

before(async () => {
  if (skip) return;
  assert.ok(haveChromium, `${CHROMIUM} is missing and CI=true: the browser tests must run in CI`);
  const { chromium } = await import('playwright-core');
  server = await startServer();
  callback = await startCallbackServer('/callback');
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  });
});

after(async () => {
  await browser?.close();
  await callback?.close();
  if (server) assert.deepEqual(await stopServer(server), { code: 0, signal: null });
});

test('sign in on the hosted login page, land on the callback with a code, redeem it', { skip, timeout: 60000 }, async (t) => {
  const config = await client.discovery(new URL(server.issuer), CLIENTS.public.id, undefined, client.None(), insecure);
  const verifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const nonce = client.randomNonce();
  const authorizeUrl = client.buildAuthorizationUrl(config, {
    redirect_uri: callback.url,
    scope: 'openid email offline_access',
    code_challenge: await client.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    state,
    nonce,
  });

  const context = await browser.newContext();
  t.after(() => context.close());
  const page = await context.newPage();
  const consoleErrors = [];
  page.on('console', (m) => {
    // The provider serves no favicon; Chromium's automatic request for it 404s.
    if (m.type() === 'error' && !m.location().url.endsWith('/favicon.ico')) consoleErrors.push(`${m.text()} [${m.location().url}]`);
  });
  page.on('pageerror', (e) => consoleErrors.push(String(e)));

  const loginResponse = page.waitForResponse((r) => new URL(r.url()).pathname === '/login/e2e');
  await page.goto(authorizeUrl.href);
  const loginPage = await loginResponse;
  assert.equal(loginPage.status(), 200);
  const headers = loginPage.headers();
  assert.match(headers['content-type'], /^text\/html/);
  assert.match(headers['content-security-policy'] ?? '', /frame-ancestors 'none'/);
  assert.doesNotMatch(headers['content-security-policy'] ?? '', /unsafe-inline/);
  assert.equal(headers['cache-control'], 'no-store');
  assert.equal(new URL(page.url()).pathname, '/login/e2e');

  const email = 'alice@example.com'; // a short, fixed address keeps the screenshot stable (own db per run)
  const field = page.getByLabel('Email');
  await field.waitFor({ state: 'visible', timeout: 10000 });
  await field.fill(email);
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  const shot = path.join(ARTIFACTS, 'login.png');
  await page.screenshot({ path: shot, fullPage: true });
  assert.ok(fs.statSync(shot).size > 0);
  console.log(`# login page screenshot: ${shot}`);
  t.diagnostic(`login page screenshot: ${shot}`);

  const seen = callback.requests.length;
  await page.getByRole('button', { name: 'Continue' }).click();
  await page.waitForURL((u) => u.href.startsWith(`${callback.url}?`), { timeout: 15000 });
  const landed = await callback.next(seen);
  assert.equal(landed.method, 'GET');
  assert.ok(landed.url.searchParams.get('code'), 'the callback received a code');
  assert.equal(landed.url.searchParams.get('state'), state);
  assert.deepEqual(consoleErrors, [], 'the login page ran without console errors (CSP allows its own script)');

  const tokens = await client.authorizationCodeGrant(config, new URL(page.url()), {
    pkceCodeVerifier: verifier,
    expectedState: state,
    expectedNonce: nonce,
  });
  assert.equal(tokens.claims().email, email);
  assert.ok(tokens.refresh_token);
  const info = await client.fetchUserInfo(config, tokens.access_token, tokens.claims().sub);
  assert.equal(info.email, email);

  // The browser now holds the provider session: prompt=none goes straight back.
  const cookies = await context.cookies(server.url);
  const session = cookies.find((c) => c.name === 'idflow_session');
  assert.ok(session, 'the provider session cookie is set');
  assert.equal(session.httpOnly, true);
  assert.equal(session.sameSite, 'Lax');
  const verifier2 = client.randomPKCECodeVerifier();
  const state2 = client.randomState();
  const silent = client.buildAuthorizationUrl(config, {
    redirect_uri: callback.url,
    scope: 'openid email',
    prompt: 'none',
    code_challenge: await client.calculatePKCECodeChallenge(verifier2),
    code_challenge_method: 'S256',
    state: state2,
  });
  await page.goto(silent.href);
  await page.waitForURL((u) => u.href.startsWith(`${callback.url}?`) && u.searchParams.get('state') === state2, { timeout: 15000 });
  const tokens2 = await client.authorizationCodeGrant(config, new URL(page.url()), { pkceCodeVerifier: verifier2, expectedState: state2 });
  assert.equal(tokens2.claims().sub, tokens.claims().sub);
});

test('implicit form_post in the browser: the completion page auto-posts the id_token to the callback', { skip, timeout: 60000 }, async (t) => {
  const cb = await startCallbackServer('/implicit/cb');
  t.after(() => cb.close());
  const nonce = client.randomNonce();
  const state = client.randomState();
  const url = new URL(`${server.url}/oauth2/v1/authorize`);
  url.search = new URLSearchParams({
    client_id: CLIENTS.implicit.id,
    redirect_uri: cb.url,
    response_type: 'id_token',
    response_mode: 'form_post',
    scope: 'openid email',
    nonce,
    state,
  }).toString();

  const context = await browser.newContext();
  t.after(() => context.close());
  const page = await context.newPage();
  await page.goto(url.href);
  const email = uniqueEmail('browser-implicit');
  await page.getByLabel('Email').fill(email);
  await page.getByRole('button', { name: 'Continue' }).click();
  const posted = await Promise.race([
    cb.next(0),
    new Promise((_, reject) => setTimeout(() => reject(new Error('no form_post reached the callback within 15 s')), 15000).unref()),
  ]);
  assert.equal(posted.method, 'POST');
  const fields = new URLSearchParams(posted.body);
  assert.equal(fields.get('state'), state);
  assert.equal(fields.get('iss'), server.issuer);
  const JWKS = jose.createRemoteJWKSet(new URL(`${server.issuer}/.well-known/jwks.json`));
  const { payload } = await jose.jwtVerify(fields.get('id_token'), JWKS, { issuer: server.issuer, audience: CLIENTS.implicit.id });
  assert.equal(payload.nonce, nonce);
  assert.equal(payload.email, email);
});
