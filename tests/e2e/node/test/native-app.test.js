// Native apps (RFC 8252) with idflow's Node SessionManager, end to end:
//
// - A sign-in in headless Chromium: the app `begin`s (the pending request
//   goes to its storage), the browser signs in on the hosted login page and
//   is sent to the private-use redirect URI `com.example.app:/oauth2redirect`,
//   which a browser cannot open: the URL is read off the DevTools protocol,
//   as the OS would hand it to the app. A new process (new client, new
//   manager, same storage) completes it; then refresh, sign-out with
//   revocation, and RP-initiated logout back to `com.example.app:/signed-out`.
// - The reply to a refresh lost (the app died after the provider rotated the
//   refresh token) against the npm `oidc-provider`, which has no grace: the
//   next refresh is refused and the manager signs out cleanly.
// - Two managers over one storage refreshing at once, 50 rounds against
//   `idflow serve` (no reuse grace): one refresh per round, both adopt it.
//
// The browser test needs /usr/bin/chromium (or $CHROMIUM_PATH); without it it
// is skipped, unless CI=true, where a missing browser is a failure.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import { createRequire } from 'node:module';
import path from 'node:path';
import * as jose from 'jose';
import Provider from 'oidc-provider';
import {
  CookieJar, REPO_ROOT, browserSkip, fetchManual, launchChromium, login, makeTempDir, removeTempDir, startServer, stopServer, uniqueEmail,
} from '../lib/helpers.js';

const { OidcClient, SessionManager, MemoryStorage } = createRequire(import.meta.url)(path.join(REPO_ROOT, 'node'));

const NATIVE = 'native';
const NATIVE_REDIRECT = 'com.example.app:/oauth2redirect';
const NATIVE_SIGNED_OUT = 'com.example.app:/signed-out';
const SCOPES = ['openid', 'email', 'offline_access'];

const noBrowser = browserSkip();

let server;

before(async () => {
  server = await startServer();
});

after(async () => {
  if (server) assert.deepEqual(await stopServer(server), { code: 0, signal: null });
});

/** A new client for the `native` application (as a freshly started app process makes it). */
function nativeClient() {
  return OidcClient.discover(`${server.issuer}/.well-known/openid-configuration`, { clientId: NATIVE, redirectUri: NATIVE_REDIRECT, scopes: SCOPES });
}

/** The storage a phone app would keep in its Keychain: here a 0600 file, read anew on every load. */
class FileStorage {
  constructor(file) {
    this.file = file;
  }

  load() {
    try {
      return fs.readFileSync(this.file, 'utf8');
    } catch (e) {
      if (e.code === 'ENOENT') return null;
      throw e;
    }
  }

  save(text) {
    fs.writeFileSync(this.file, text, { mode: 0o600 });
  }

  clear() {
    fs.rmSync(this.file, { force: true });
  }
}

/** Every event a manager emits, in order. */
function record(manager) {
  const events = [];
  for (const name of ['refreshed', 'signedOut', 'storageFailed']) manager.on(name, (e) => events.push(e));
  return events;
}

/** Events reach JavaScript through the event loop, maybe after the call's promise settles. */
const settle = () => new Promise((resolve) => setTimeout(resolve, 100));

const rejectsWith = (code) => (e) => {
  assert.equal(e.code, code, `${e.code}: ${e.message}`);
  return true;
};

const header = (headers, name) => Object.entries(headers).find(([k]) => k.toLowerCase() === name)?.[1];

/**
 * Watches a page through the DevTools protocol for navigations to the app's
 * private-use scheme. Chromium cannot load such a URL, but it reports the
 * redirect that leads there (Network.requestWillBeSent with the 302 as
 * redirectResponse) before it gives up on it: that URL is what the OS hands
 * the app. `next(prefix)` resolves to { url, redirectResponse }.
 */
async function watchAppRedirects(context, page) {
  const cdp = await context.newCDPSession(page);
  await cdp.send('Network.enable');
  const seen = [];
  const waiters = [];
  cdp.on('Network.requestWillBeSent', (e) => {
    if (!e.request.url.startsWith('com.example.app:')) return;
    const entry = { url: e.request.url, redirectResponse: e.redirectResponse };
    seen.push(entry);
    for (const w of waiters.splice(0)) w();
  });
  return {
    seen,
    /** The first navigation to `prefix` after the first `from` seen. */
    async next(prefix, from) {
      const deadline = Date.now() + 15000;
      for (;;) {
        const found = seen.slice(from).find((s) => s.url.startsWith(prefix));
        if (found) return found;
        if (Date.now() > deadline) throw new Error(`no navigation to ${prefix} within 15 s; seen: ${JSON.stringify(seen.map((s) => s.url))}`);
        await new Promise((resolve) => {
          waiters.push(resolve);
          setTimeout(resolve, 250);
        });
      }
    },
  };
}

/** Navigates to a URL whose answer redirects to the app: Chromium aborts that navigation. */
async function gotoApp(page, url) {
  try {
    await page.goto(url);
  } catch (e) {
    if (!/ERR_ABORTED/.test(e.message)) throw e;
  }
}

/** Checks a captured hand-off: a 302 from `fromPath` at idflow whose Location is the URL. */
function assertHandOff(handOff, fromPath) {
  assert.ok(handOff.redirectResponse, `reached by a redirect: ${handOff.url}`);
  assert.equal(handOff.redirectResponse.status, 302);
  const from = new URL(handOff.redirectResponse.url);
  assert.equal(`${from.origin}${from.pathname}`, `${server.url}${fromPath}`);
  assert.equal(header(handOff.redirectResponse.headers, 'location'), handOff.url);
}

test('native sign-in in Chromium: begin in one process, the private-use redirect, complete in another; refresh, sign-out, end session', { skip: noBrowser, timeout: 120000 }, async (t) => {
  const browser = await launchChromium();
  t.after(() => browser.close());
  const dir = makeTempDir('idflow-native-');
  t.after(() => removeTempDir(dir));
  const storage = new FileStorage(path.join(dir, 'session.json'));

  // Process 1: the app starts the sign-in and opens the browser.
  const began = Math.floor(Date.now() / 1000);
  const authorizeUrl = await new SessionManager(await nativeClient(), storage).begin();
  const authorize = new URL(authorizeUrl);
  assert.equal(`${authorize.origin}${authorize.pathname}`, `${server.url}/oauth2/v1/authorize`);
  assert.equal(authorize.searchParams.get('client_id'), NATIVE);
  assert.equal(authorize.searchParams.get('redirect_uri'), NATIVE_REDIRECT);
  assert.equal(authorize.searchParams.get('code_challenge_method'), 'S256');
  assert.deepEqual(authorize.searchParams.get('scope').split(' ').sort(), [...SCOPES].sort());
  const stored = JSON.parse(storage.load());
  assert.equal(stored.v, 2);
  assert.equal(stored.session, undefined);
  const { pending } = stored;
  assert.equal(pending.state, authorize.searchParams.get('state'));
  assert.equal(pending.nonce, authorize.searchParams.get('nonce'));
  assert.equal(pending.redirect_uri, NATIVE_REDIRECT);
  assert.ok(pending.code_verifier, 'the PKCE verifier is kept in the storage');
  assert.ok(pending.expires_at >= began + 600 && pending.expires_at <= began + 602, `pendingTtl 600 s: ${pending.expires_at - began}`);
  assert.equal(fs.statSync(storage.file).mode & 0o777, 0o600);

  // The browser: hosted login page, then the redirect to the app.
  const context = await browser.newContext();
  t.after(() => context.close());
  const page = await context.newPage();
  const appRedirects = await watchAppRedirects(context, page);
  const pageErrors = [];
  page.on('pageerror', (e) => pageErrors.push(String(e)));
  await page.goto(authorizeUrl);
  assert.equal(new URL(page.url()).pathname, '/login/e2e');
  const email = uniqueEmail('native-browser');
  const field = page.getByLabel('Email');
  await field.waitFor({ state: 'visible', timeout: 10000 });
  await field.fill(email);
  const before = appRedirects.seen.length;
  await page.getByRole('button', { name: 'Continue' }).click();
  const handOff = await appRedirects.next(`${NATIVE_REDIRECT}?`, before);
  assertHandOff(handOff, '/oauth2/v1/authorize/complete');
  const callback = new URL(handOff.url);
  assert.equal(callback.protocol, 'com.example.app:');
  assert.equal(callback.pathname, '/oauth2redirect');
  assert.equal(callback.searchParams.get('state'), pending.state);
  assert.equal(callback.searchParams.get('iss'), server.issuer);
  assert.ok(callback.searchParams.get('code'), handOff.url);
  assert.equal(callback.searchParams.get('error'), null);
  assert.deepEqual(pageErrors, []);

  // Process 2 (the first one died): a new client and manager over the same storage.
  const client = await nativeClient();
  const manager = new SessionManager(client, storage);
  const events = record(manager);
  const session = await manager.complete(handOff.url);
  assert.equal(session.claims.email, email);
  assert.equal(session.claims.iss, server.issuer);
  assert.deepEqual([session.claims.aud].flat(), [NATIVE]);
  assert.equal(session.claims.nonce, pending.nonce);
  assert.ok(session.refresh_token, 'offline_access gave a refresh token');
  const afterSignIn = JSON.parse(storage.load());
  assert.equal(afterSignIn.v, 2);
  assert.equal(afterSignIn.pending, undefined, 'the pending request is spent');
  assert.equal(afterSignIn.session.refresh_token, session.refresh_token);
  assert.deepEqual(await manager.session(), session);
  assert.equal(await manager.status(), 'valid');
  const info = await client.userinfo(session.access_token);
  assert.equal(info.email, email);
  assert.equal(info.sub, session.claims.sub);

  // The same callback again, in yet another manager: refused, nothing changes.
  const signedIn = storage.load();
  await assert.rejects(new SessionManager(await nativeClient(), storage).complete(handOff.url), rejectsWith('invalid_request'));
  assert.equal(storage.load(), signedIn);

  // Refresh: new tokens, the event, the new access token works.
  const refreshed = await manager.refresh();
  assert.notEqual(refreshed.refresh_token, session.refresh_token);
  assert.notEqual(refreshed.access_token, session.access_token);
  assert.equal(refreshed.claims.sub, session.claims.sub);
  assert.equal(JSON.parse(storage.load()).session.refresh_token, refreshed.refresh_token);
  assert.equal((await client.userinfo(refreshed.access_token)).email, email);
  await settle();
  assert.deepEqual(events, [{ type: 'refreshed', session: refreshed }]);

  // The browser still holds the provider session: prompt=none answers with a code at once.
  const silentAuthorize = async () => {
    const request = client.authorizationRequest({ prompt: 'none' });
    const from = appRedirects.seen.length;
    await gotoApp(page, request.url);
    const back = await appRedirects.next(`${NATIVE_REDIRECT}?`, from);
    assertHandOff(back, '/oauth2/v1/authorize');
    const params = new URL(back.url).searchParams;
    assert.equal(params.get('state'), request.state);
    return params;
  };
  assert.ok((await silentAuthorize()).get('code'), 'signed in at the provider');

  // Sign-out: the event, the storage cleared, the refresh token revoked.
  await manager.signOut();
  await settle();
  assert.equal(events.length, 2, JSON.stringify(events));
  assert.equal(events[1].type, 'signedOut');
  assert.equal(events[1].reason, 'user');
  assert.equal(typeof events[1].message, 'string');
  assert.equal(storage.load(), null);
  assert.equal(fs.existsSync(storage.file), false);
  assert.equal(await manager.status(), 'signed_out');
  await assert.rejects(client.refresh(refreshed.refresh_token), rejectsWith('invalid_grant'));

  // RP-initiated logout to the app's registered post-logout URI.
  const state = randomBytes(8).toString('hex');
  const logoutUrl = client.endSessionUrl({ idTokenHint: refreshed.id_token, postLogoutRedirectUri: NATIVE_SIGNED_OUT, state });
  const logout = new URL(logoutUrl);
  assert.equal(`${logout.origin}${logout.pathname}`, `${server.url}/oauth2/v1/logout`);
  assert.equal(logout.searchParams.get('post_logout_redirect_uri'), NATIVE_SIGNED_OUT);
  // Without the browser's cookie there is nothing to end: straight back to the app.
  const plain = await fetch(logoutUrl, { redirect: 'manual' });
  assert.equal(plain.status, 302, await plain.text());
  assert.equal(plain.headers.get('location'), `${NATIVE_SIGNED_OUT}?state=${state}`);
  // A post-logout URI the application did not register is an error page.
  const other = new URL(logoutUrl);
  other.searchParams.set('post_logout_redirect_uri', 'com.example.app:/elsewhere');
  const refused = await fetch(other, { redirect: 'manual' });
  assert.equal(refused.status, 400);
  assert.equal(refused.headers.get('location'), null);
  // In the browser: the hint's sid proves the request comes from this session, which ends at once.
  assert.ok((await context.cookies(server.url)).some((c) => c.name === 'idflow_session'));
  const from = appRedirects.seen.length;
  await gotoApp(page, logoutUrl);
  const bye = await appRedirects.next(NATIVE_SIGNED_OUT, from);
  assertHandOff(bye, '/oauth2/v1/logout');
  assert.equal(bye.url, `${NATIVE_SIGNED_OUT}?state=${state}`);
  assert.equal((await context.cookies(server.url)).find((c) => c.name === 'idflow_session'), undefined, 'the session cookie is cleared');
  assert.equal((await silentAuthorize()).get('error'), 'login_required', 'signed out at the provider');
});

/**
 * The npm `oidc-provider` with one native public client. It has no reuse
 * grace: by default (rotateRefreshToken) every refresh of a client with
 * token_endpoint_auth_method "none" rotates the refresh token, and a
 * rotated (consumed) one presented again revokes the whole grant
 * (lib/actions/grants/refresh_token.js). offline_access needs prompt=consent.
 */
async function startNativeOp() {
  const httpServer = http.createServer();
  await new Promise((resolve) => httpServer.listen(0, '127.0.0.1', resolve));
  const issuer = `http://127.0.0.1:${httpServer.address().port}`;
  const { privateKey } = await jose.generateKeyPair('RS256', { extractable: true });
  const jwk = { ...(await jose.exportJWK(privateKey)), kid: 'native-op-1', alg: 'RS256', use: 'sig' };
  const provider = new Provider(issuer, {
    clients: [{
      client_id: 'native-app',
      application_type: 'native',
      redirect_uris: ['com.example.app:/cb'],
      token_endpoint_auth_method: 'none',
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
    }],
    jwks: { keys: [jwk] },
    cookies: { keys: ['native-op-cookie-key-0123456789'] },
    features: { devInteractions: { enabled: false }, revocation: { enabled: true } },
    claims: { openid: ['sub'], email: ['email', 'email_verified'] },
    scopes: ['openid', 'email', 'offline_access'],
    findAccount: async (ctx, id) => ({ accountId: id, claims: async () => ({ sub: id, email: `${id}@example.com`, email_verified: true }) }),
    interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  });
  const counts = { token: 0 };
  const callback = provider.callback();
  httpServer.on('request', async (req, res) => {
    if (req.method === 'POST' && req.url === '/token') counts.token++;
    if (req.url.startsWith('/interaction/')) {
      // The "login page": sign carol in and grant what was asked.
      try {
        const details = await provider.interactionDetails(req, res);
        const grant = new provider.Grant({ accountId: 'carol', clientId: details.params.client_id });
        grant.addOIDCScope(details.params.scope);
        const grantId = await grant.save();
        await provider.interactionFinished(req, res, { login: { accountId: 'carol' }, consent: { grantId } }, { mergeWithLastSubmission: false });
      } catch (e) {
        res.statusCode = 500;
        res.end(String(e));
      }
      return;
    }
    callback(req, res);
  });
  return { server: httpServer, issuer, counts };
}

/** A browser with its own cookies at the OP: follows redirects until they leave for the app. */
async function browseToApp(url) {
  const jar = new CookieJar();
  for (let i = 0; i < 10; i++) {
    if (url.startsWith('com.example.app:')) return url;
    const res = await fetchManual(url, jar);
    const location = res.headers.get('location');
    assert.ok(location, `${url} answered ${res.status}: ${await res.text()}`);
    url = new URL(location, url).href;
  }
  throw new Error('too many redirects');
}

test('the reply to a refresh was lost (oidc-provider, no grace): the next refresh is refused, one signedOut, storage cleared', async (t) => {
  const op = await startNativeOp();
  t.after(() => op.server.close());
  const discovery = `${op.issuer}/.well-known/openid-configuration`;
  const settings = { clientId: 'native-app', redirectUri: 'com.example.app:/cb', clientAuth: 'none', scopes: SCOPES };
  const storage = new MemoryStorage();
  const unhandled = [];
  const onUnhandled = (reason) => unhandled.push(reason);
  process.on('unhandledRejection', onUnhandled);
  t.after(() => process.off('unhandledRejection', onUnhandled));

  // Sign in: begin and complete in two app processes.
  const url = await new SessionManager(await OidcClient.discover(discovery, settings), storage).begin({ prompt: 'consent' });
  const callback = await browseToApp(url);
  assert.ok(callback.startsWith('com.example.app:/cb?'), callback);
  const first = await OidcClient.discover(discovery, settings);
  const session = await new SessionManager(first, storage).complete(callback);
  assert.equal(session.claims.sub, 'carol');
  assert.ok(session.refresh_token, 'a refresh token (offline_access with prompt=consent)');
  assert.equal(op.counts.token, 1);

  // The app refreshes; the provider rotates the token and answers, but the
  // app dies before it saves the answer.
  const lost = await first.refresh(session.refresh_token);
  assert.ok(lost.refresh_token);
  assert.notEqual(lost.refresh_token, session.refresh_token, 'oidc-provider rotates a public client\'s refresh token');
  assert.equal(op.counts.token, 2);
  assert.equal(JSON.parse(storage.value).session.refresh_token, session.refresh_token, 'the storage still holds the spent token');

  // The app starts again over the same storage.
  const manager = new SessionManager(await OidcClient.discover(discovery, settings), storage);
  const events = record(manager);
  await assert.rejects(manager.refresh(), (e) => {
    assert.equal(e.code, 'invalid_grant', e.message);
    assert.match(e.message, /signed out/);
    return true;
  });
  await settle();
  assert.equal(op.counts.token, 3, 'one token request, no retry');
  assert.equal(events.length, 1, JSON.stringify(events));
  assert.equal(events[0].type, 'signedOut');
  assert.equal(events[0].reason, 'refresh_refused');
  assert.match(events[0].message, /refresh token/);
  assert.equal(storage.value, null, 'the storage is cleared');
  assert.equal(await manager.status(), 'signed_out');
  await assert.rejects(manager.accessToken(), rejectsWith('login_required'));
  // The provider took the reuse for a leak and revoked the grant: the lost token is dead too.
  await assert.rejects(first.refresh(lost.refresh_token), rejectsWith('invalid_grant'));
  await settle();
  assert.equal(events.length, 1, 'still exactly one event');
  assert.deepEqual(unhandled, [], 'no unhandled rejection');
});

test('two managers over one storage refresh at once, 50 rounds against idflow (no reuse grace): one refresh per round, both adopt it', { timeout: 120000 }, async () => {
  const storage = new MemoryStorage();
  // Signed in by a third manager: begun there, completed by another.
  const url = await new SessionManager(await nativeClient(), storage).begin();
  const email = uniqueEmail('native-twins');
  const { url: callback } = await login(url, email);
  assert.equal(callback.protocol, 'com.example.app:');
  let current = await new SessionManager(await nativeClient(), storage).complete(callback.href);
  assert.equal(current.claims.email, email);

  const clientA = await nativeClient();
  const clientB = await nativeClient();
  const a = new SessionManager(clientA, storage);
  const b = new SessionManager(clientB, storage);
  const eventsA = record(a);
  const eventsB = record(b);
  // Both hold the session before the first round. (A manager whose first
  // read of the storage comes after the other's save never saw the old
  // session: it takes the renewed one as its own and, asked to refresh,
  // refreshes it again — correct, but not the race under test here.)
  assert.deepStrictEqual(await a.session(), current);
  assert.deepStrictEqual(await b.session(), current);
  const sessions = [];
  for (let round = 1; round <= 50; round++) {
    const [fromA, fromB] = await Promise.all([a.refresh(), b.refresh()]);
    assert.deepStrictEqual(fromA, fromB, `round ${round}: both managers hold the same session`);
    assert.notEqual(fromA.refresh_token, current.refresh_token, `round ${round}: the refresh token rotated`);
    assert.notEqual(fromA.access_token, current.access_token, `round ${round}: a new access token`);
    assert.equal(fromA.claims.sub, current.claims.sub);
    assert.equal(JSON.parse(storage.value).session.refresh_token, fromA.refresh_token, `round ${round}: stored`);
    const info = await (round % 2 ? clientA : clientB).userinfo(fromA.access_token);
    assert.equal(info.email, email, `round ${round}: userinfo`);
    sessions.push(fromA);
    current = fromA;
  }
  assert.equal(new Set(sessions.map((s) => s.refresh_token)).size, 50);
  await settle();
  for (const [name, events] of [['a', eventsA], ['b', eventsB]]) {
    assert.deepEqual(events.filter((e) => e.type !== 'refreshed'), [], `manager ${name}: no signedOut or storageFailed`);
    // Each round each manager either refreshed or adopted the other's tokens: one event each.
    assert.deepEqual(events.map((e) => e.session), sessions, `manager ${name}: one refreshed event per round`);
  }
  assert.equal((await clientA.userinfo(current.access_token)).email, email, 'the session is still live at the provider');
});
