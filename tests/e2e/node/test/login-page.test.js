// The hosted login page in a real browser: headless Chromium (through
// playwright-core, no downloaded browser) signs in on /login/e2e and lands
// on a loopback callback server with a code, which openid-client redeems.
// The same browser also meets two attacks on the login path: another cookie
// jar driving the page's execution (refused), and a logout link without
// id_token_hint (a "Sign out?" confirmation before anything ends).
//
// Needs /usr/bin/chromium (or $CHROMIUM_PATH). Without it the tests are
// skipped, unless CI=true, where a missing browser is a failure.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import * as client from 'openid-client';
import * as jose from 'jose';
import {
  CLIENTS, CookieJar, NODE_DIR, PROJECT_ID, browserSkip, launchChromium, postJson, startCallbackServer, startServer, stopServer, uniqueEmail,
} from '../lib/helpers.js';

const ARTIFACTS = path.join(NODE_DIR, 'artifacts');
const insecure = { execute: [client.allowInsecureRequests] };

const skip = browserSkip();

let server;
let browser;
let callback;

before(async () => {
  if (skip) return;
  server = await startServer();
  callback = await startCallbackServer('/callback');
  browser = await launchChromium();
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
  assert.equal(tokens.claims().email, undefined, 'with an access token, scope claims are at userinfo (OIDC Core §5.4)');
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

/** A code-flow authorization request of the public client "e2e" (openid-client builds it). */
async function authorizationRequest(config, extra = {}) {
  const verifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const nonce = client.randomNonce();
  const url = client.buildAuthorizationUrl(config, {
    redirect_uri: callback.url,
    scope: 'openid email',
    code_challenge: await client.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    state,
    nonce,
    ...extra,
  });
  return { url, verifier, state, nonce };
}

/**
 * Waits until the browser is at the callback with `request`'s answer and
 * returns the URL the callback server received for it. It looks the request
 * up by its state: Chromium's own requests (such as /favicon.ico after an
 * earlier page) reach the same server at any time.
 */
async function answerOf(page, request) {
  await page.waitForURL((u) => u.href.startsWith(`${callback.url}?`) && u.searchParams.get('state') === request.state, { timeout: 15000 });
  const landed = callback.requests.find((r) => r.url.searchParams.get('state') === request.state);
  assert.ok(landed, `the callback server received the answer for state ${request.state}`);
  return landed.url;
}

/** Navigates `page` to `request.url` and waits until the callback server receives this request's answer. */
async function landOnCallback(page, request) {
  await page.goto(request.url.href);
  return answerOf(page, request);
}

/** Fills the hosted page's Email field, clicks Continue and waits for the callback with a code. */
async function signInOnHostedPage(page, request, email) {
  const field = page.getByLabel('Email');
  await field.waitFor({ state: 'visible', timeout: 10000 });
  await field.fill(email);
  await page.getByRole('button', { name: 'Continue' }).click();
  return answerOf(page, request);
}

test('an execution started by the hosted page belongs to that browser: another cookie jar gets 403, the browser still signs in', { skip, timeout: 60000 }, async (t) => {
  const config = await client.discovery(new URL(server.issuer), CLIENTS.public.id, undefined, client.None(), insecure);
  const request = await authorizationRequest(config);
  const context = await browser.newContext();
  t.after(() => context.close());
  const page = await context.newPage();
  const pageErrors = [];
  page.on('pageerror', (e) => pageErrors.push(String(e)));

  // The page's own script starts the execution; read its id off the wire.
  const started = page.waitForResponse((r) => new URL(r.url()).pathname === '/v1/flow/start' && r.request().method() === 'POST');
  await page.goto(request.url.href);
  const hosted = new URL(page.url());
  assert.equal(hosted.pathname, `/login/${PROJECT_ID}`);
  assert.equal(hosted.searchParams.get('flow'), 'sign-up-or-in');
  assert.ok(hosted.searchParams.get('request'));
  const startResponse = await started;
  assert.equal(startResponse.status(), 200);
  const execution = await startResponse.json();
  assert.equal(execution.status, 'waiting', JSON.stringify(execution));
  const { executionId, stepId } = execution;
  assert.ok(executionId && stepId);
  const bound = (await context.cookies(server.url)).find((c) => c.name === 'idflow_browser');
  assert.ok(bound, 'the browser holds the idflow_browser cookie');
  assert.equal(bound.httpOnly, true);
  assert.equal(bound.sameSite, 'Lax');

  // Another cookie jar that learnt the execution id: refused, both ways.
  const attackerEmail = uniqueEmail('hijacker');
  const next = await postJson(`${server.url}/v1/flow/next`, { executionId, stepId, interactionId: 'submit', input: { email: attackerEmail } }, new CookieJar());
  assert.equal(next.res.status, 403, JSON.stringify(next.json));
  assert.equal(next.json.error?.code, 'access_denied');
  assert.equal(next.json.redirect, undefined);
  const restart = await postJson(`${server.url}/v1/flow/start`, { executionId }, new CookieJar());
  assert.equal(restart.res.status, 403, JSON.stringify(restart.json));
  assert.equal(restart.json.error?.code, 'access_denied');
  assert.equal(restart.json.screen, undefined);

  // The victim's browser goes on and the client gets its code.
  const email = uniqueEmail('hijack-victim');
  const landed = await signInOnHostedPage(page, request, email);
  assert.ok(landed.searchParams.get('code'), 'the callback received a code');
  const tokens = await client.authorizationCodeGrant(config, landed, {
    pkceCodeVerifier: request.verifier,
    expectedState: request.state,
    expectedNonce: request.nonce,
  });
  const victim = await client.fetchUserInfo(config, tokens.access_token, tokens.claims().sub);
  assert.equal(victim.email, email, 'the victim, not the attacker, is signed in');
  assert.equal(tokens.claims().acr, undefined, 'typing an email verifies nothing');
  assert.deepEqual(pageErrors, []);
});

test('logout without id_token_hint asks first: "Sign out?" until the button is clicked, then the post-logout URI and login_required', { skip, timeout: 60000 }, async (t) => {
  const config = await client.discovery(new URL(server.issuer), CLIENTS.public.id, undefined, client.None(), insecure);
  const context = await browser.newContext();
  t.after(() => context.close());
  // The registered post-logout URI (http://127.0.0.1/logged-out, port 80)
  // has no server here: what counts is that the browser goes there. (A
  // route cannot answer it: the browser reaches it by a redirect.)
  const loggedOut = [];
  context.on('request', (r) => {
    const u = new URL(r.url());
    if (u.origin === 'http://127.0.0.1' && u.pathname === '/logged-out') loggedOut.push(r.url());
  });
  const page = await context.newPage();
  const consoleErrors = [];
  page.on('console', (m) => {
    if (m.type() === 'error' && !m.location().url.endsWith('/favicon.ico')) consoleErrors.push(`${m.text()} [${m.location().url}]`);
  });
  page.on('pageerror', (e) => consoleErrors.push(String(e)));

  // Sign in on the hosted page.
  const first = await authorizationRequest(config);
  await page.goto(first.url.href);
  const email = uniqueEmail('logout');
  const landed = await signInOnHostedPage(page, first, email);
  const tokens = await client.authorizationCodeGrant(config, landed, { pkceCodeVerifier: first.verifier, expectedState: first.state, expectedNonce: first.nonce });
  const sub = tokens.claims().sub;

  /** prompt=none from this browser (another tab): a code for the same user, or the error. */
  const silently = async () => {
    const tab = await context.newPage();
    try {
      const request = await authorizationRequest(config, { prompt: 'none' });
      const back = await landOnCallback(tab, request);
      if (back.searchParams.get('error')) return { error: back.searchParams.get('error') };
      const again = await client.authorizationCodeGrant(config, back, { pkceCodeVerifier: request.verifier, expectedState: request.state, expectedNonce: request.nonce });
      return { sub: again.claims().sub };
    } finally {
      await tab.close();
    }
  };
  assert.deepEqual(await silently(), { sub }, 'signed in: prompt=none answers with a code');

  // The logout URL with no id_token_hint (as any site could link it).
  const state = client.randomState();
  const logout = new URL(`${server.url}/oauth2/v1/logout`);
  logout.search = new URLSearchParams({ client_id: CLIENTS.public.id, post_logout_redirect_uri: CLIENTS.public.postLogout, state }).toString();
  const response = await page.goto(logout.href);
  assert.equal(response.status(), 200);
  assert.equal(new URL(page.url()).pathname, '/oauth2/v1/logout', 'the browser stays on the confirmation page');
  assert.equal(await page.title(), 'Sign out?');
  await page.getByRole('heading', { name: 'Sign out?' }).waitFor({ state: 'visible', timeout: 5000 });
  const button = page.locator('#sign-out');
  await button.waitFor({ state: 'visible', timeout: 5000 });
  assert.equal((await button.textContent()).trim(), 'Sign out');
  assert.deepEqual(loggedOut, [], 'not sent on before the click');
  // Until the click, the session stands.
  assert.deepEqual(await silently(), { sub }, 'the confirmation page ends nothing by itself');
  assert.ok((await context.cookies(server.url)).some((c) => c.name === 'idflow_session'), 'the session cookie is still there');

  // The user clicks "Sign out".
  const [request] = await Promise.all([
    page.waitForRequest((r) => r.url().startsWith(`${CLIENTS.public.postLogout}?`), { timeout: 15000 }),
    button.click(),
  ]);
  const after = new URL(request.url());
  assert.equal(`${after.origin}${after.pathname}`, CLIENTS.public.postLogout);
  assert.equal(after.searchParams.get('state'), state);
  assert.equal(loggedOut.length, 1);
  assert.equal((await context.cookies(server.url)).find((c) => c.name === 'idflow_session'), undefined, 'the session cookie is cleared');
  assert.deepEqual(await silently(), { error: 'login_required' }, 'signed out: prompt=none answers login_required');
  // Only the unreachable post-logout URI may fail to load; a CSP refusal of
  // the redirect would show here.
  assert.deepEqual(consoleErrors.filter((e) => !e.includes('/logged-out')), [], 'no console errors');
});

// The modules of the OpenID certification plans that a human checks in a
// browser (oidcc-prompt-login, oidcc-max-age-1, oidcc-ensure-registered-redirect-uri),
// kept here so that they stay right.

/** Signs in on the hosted page in a fresh context; resolves to { page, config, tokens, email }. */
async function signedInBrowser(t) {
  const config = await client.discovery(new URL(server.issuer), CLIENTS.public.id, undefined, client.None(), insecure);
  const context = await browser.newContext();
  t.after(() => context.close());
  const page = await context.newPage();
  const request = await authorizationRequest(config);
  await page.goto(request.url.href);
  const email = uniqueEmail('browser-module');
  const landed = await signInOnHostedPage(page, request, email);
  const tokens = await client.authorizationCodeGrant(config, landed, {
    pkceCodeVerifier: request.verifier, expectedState: request.state, expectedNonce: request.nonce,
  });
  return { page, config, tokens, email };
}

/** Goes to `request.url` and resolves to the hosted login page's URL, or fails if the browser skips it. */
async function expectLoginPage(page, request) {
  await page.goto(request.url.href);
  const at = new URL(page.url());
  assert.equal(at.pathname, `/login/${PROJECT_ID}`, `the login page is shown again, not ${at.href}`);
  await page.getByLabel('Email').waitFor({ state: 'visible', timeout: 10000 });
  return at;
}

test('prompt=login shows the login page again although the browser has a session (OIDC Core §3.1.2.1)', { skip, timeout: 60000 }, async (t) => {
  const { page, config, tokens, email } = await signedInBrowser(t);
  const first = tokens.claims();
  // Without prompt, the session answers at once.
  const silent = await authorizationRequest(config);
  await landOnCallback(page, silent);
  // With prompt=login, the page asks again; signing in gives a new auth_time.
  await new Promise((r) => setTimeout(r, 1100));
  const again = await authorizationRequest(config, { prompt: 'login' });
  await expectLoginPage(page, again);
  const landed = await signInOnHostedPage(page, again, email);
  const fresh = await client.authorizationCodeGrant(config, landed, {
    pkceCodeVerifier: again.verifier, expectedState: again.state, expectedNonce: again.nonce,
  });
  assert.equal(fresh.claims().sub, first.sub);
  assert.ok(fresh.claims().auth_time > first.auth_time, `auth_time ${fresh.claims().auth_time} is after ${first.auth_time}`);
});

test('max_age=1 forces a new login once a second has passed (OIDC Core §3.1.2.1)', { skip, timeout: 60000 }, async (t) => {
  const { page, config, tokens, email } = await signedInBrowser(t);
  await new Promise((r) => setTimeout(r, 2100));
  const request = await authorizationRequest(config, { max_age: '1' });
  await expectLoginPage(page, request);
  const landed = await signInOnHostedPage(page, request, email);
  const fresh = await client.authorizationCodeGrant(config, landed, {
    pkceCodeVerifier: request.verifier, expectedState: request.state, expectedNonce: request.nonce, maxAge: 1,
  });
  assert.equal(fresh.claims().sub, tokens.claims().sub);
  assert.ok(Math.floor(Date.now() / 1000) - fresh.claims().auth_time <= 2, 'auth_time is the new login');
});

test('an unregistered redirect_uri gets an error page in the browser and never a redirect (RFC 6749 §3.1.2.4)', { skip, timeout: 60000 }, async (t) => {
  const config = await client.discovery(new URL(server.issuer), CLIENTS.public.id, undefined, client.None(), insecure);
  const context = await browser.newContext();
  t.after(() => context.close());
  const page = await context.newPage();
  const seen = callback.requests.length;
  for (const redirect of [`${callback.url}/elsewhere`, 'https://attacker.example/callback', `${callback.url}?extra=1`]) {
    const request = await authorizationRequest(config, { redirect_uri: redirect });
    const response = await page.goto(request.url.href);
    assert.equal(response.status(), 400, redirect);
    const at = new URL(page.url());
    assert.equal(`${at.origin}${at.pathname}`, `${server.url}/oauth2/v1/authorize`, `the browser stayed at idflow: ${at.href}`);
    assert.match(await page.textContent('body'), /redirect_uri/i, 'the page says what is wrong');
  }
  assert.equal(callback.requests.length, seen, 'nothing reached any redirect URI');
});

test('a request object whose redirect_uri differs from the parameter gets the error page; a matching one signs in (OIDC Core §6.3)', { skip, timeout: 60000 }, async (t) => {
  // "implicit" takes unsigned request objects (requestObjectSigningAlg: none).
  const cb = await startCallbackServer('/implicit/cb');
  t.after(() => cb.close());
  const other = await startCallbackServer('/implicit/cb');
  t.after(() => other.close());
  const unsigned = (claims) => `${Buffer.from('{"alg":"none"}').toString('base64url')}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.`;
  const verifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const object = {
    client_id: CLIENTS.implicit.id, response_type: 'code', scope: 'openid', state, nonce: client.randomNonce(),
    code_challenge: await client.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256',
  };
  const authorize = (queryRedirect, objectRedirect) => {
    const url = new URL(`${server.url}/oauth2/v1/authorize`);
    url.search = new URLSearchParams({
      client_id: CLIENTS.implicit.id, response_type: 'code', redirect_uri: queryRedirect, request: unsigned({ ...object, redirect_uri: objectRedirect }),
    }).toString();
    return url.href;
  };
  const context = await browser.newContext();
  t.after(() => context.close());
  const page = await context.newPage();
  // Both redirect URIs are registered (loopback, any port), but they differ.
  const refused = await page.goto(authorize(cb.url, other.url));
  assert.equal(refused.status(), 400);
  assert.match(await page.textContent('body'), /redirect_uri/);
  assert.equal(new URL(page.url()).pathname, '/oauth2/v1/authorize', 'no redirect');
  assert.equal(cb.requests.length + other.requests.length, 0, 'nothing reached either redirect URI');
  // The same URI both ways: the hosted page, then the callback with the object's state.
  await page.goto(authorize(cb.url, cb.url));
  assert.equal(new URL(page.url()).pathname, `/login/${PROJECT_ID}`);
  await page.getByLabel('Email').fill(uniqueEmail('request-object'));
  await page.getByRole('button', { name: 'Continue' }).click();
  const landed = await Promise.race([
    cb.next(0),
    new Promise((_, reject) => setTimeout(() => reject(new Error('no code reached the callback within 15 s')), 15000).unref()),
  ]);
  assert.equal(landed.url.searchParams.get('state'), state);
  assert.ok(landed.url.searchParams.get('code'));
  assert.equal(other.requests.length, 0);
});
