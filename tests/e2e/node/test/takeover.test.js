// Account-takeover attempts against the login path, end to end, with real
// `idflow serve` processes only:
//
// - social login by API: a downstream `idflow serve` whose custom OAuth
//   provider is an upstream `idflow serve` (the e2e project, application
//   "social-rp"). An attacker cannot make the downstream send a code to a
//   URL the project did not approve, and a code that reaches the approved
//   app is worth nothing without the PKCE verifier of whoever started the
//   login (SECURITY.md, "What idflow guarantees").
// - a flow execution belongs to the cookie jar that started it: another jar
//   holding only the execution id gets 403 access_denied. (The same attack
//   against the hosted page in Chromium is in login-page.test.js.)

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as jose from 'jose';
import {
  CLIENTS,
  CookieJar,
  PROJECT_ID,
  fetchManual,
  login,
  pkcePair,
  postJson,
  startCallbackServer,
  startServer,
  startServerWithProject,
  stopServer,
  uniqueEmail,
} from '../lib/helpers.js';

const PROVIDER = 'upstream';

let upstream; // the e2e project: the OP the downstream signs users in at
let downstream; // project "down": social login by API through `upstream`
let app; // the downstream's approved redirect URL (the app's own page)
let evil; // a loopback server that must never be reached

before(async () => {
  upstream = await startServer();
  app = await startCallbackServer('/app/after-login');
  evil = await startCallbackServer('/steal');
  downstream = await startServerWithProject({
    projectId: 'down',
    baseUrl: 'http://127.0.0.1:9', // replaced by the server's own URL (--base-url)
    redirectUrls: [app.url],
    oauthProviders: [{
      name: PROVIDER,
      clientId: CLIENTS.socialRp.id,
      clientSecret: CLIENTS.socialRp.secret,
      discoveryUrl: `${upstream.issuer}/.well-known/openid-configuration`,
      scopes: ['openid', 'email', 'profile'],
    }],
  });
});

after(async () => {
  await app?.close();
  await evil?.close();
  const down = await stopServer(downstream);
  const up = await stopServer(upstream);
  assert.deepEqual(down, { code: 0, signal: null });
  assert.deepEqual(up, { code: 0, signal: null });
});

const apiAuthorize = (body, jar) => postJson(`${downstream.url}/v1/auth/oauth/authorize`, body, jar);
const apiExchange = (body, jar) => postJson(`${downstream.url}/v1/auth/oauth/exchange`, body, jar);

/**
 * The victim's browser (its own cookie jar) signs in at the upstream from
 * `upstreamUrl` and follows the downstream's callback. Resolves to every
 * Location header it was sent to after the upstream's login page, and the
 * last one (where the downstream sent it with a code).
 */
async function victimSignsIn(upstreamUrl, email, jar = new CookieJar()) {
  const signedIn = await login(upstreamUrl, email, jar);
  const callback = signedIn.url;
  assert.equal(`${callback.origin}${callback.pathname}`, `${downstream.url}/v1/oauth/callback`, `the upstream answers the downstream: ${callback}`);
  const back = await fetchManual(callback, jar);
  const location = back.headers.get('location');
  assert.equal(back.status, 302, `the downstream callback redirects: ${back.status} ${await back.text()}`);
  const landed = new URL(location);
  // The browser goes on to the page it was sent to.
  const seen = app.requests.length;
  if (landed.href.startsWith(`${app.url}?`)) {
    const res = await fetchManual(landed, jar);
    assert.equal(res.status, 200);
    await res.arrayBuffer();
    assert.equal((await app.next(seen)).url.searchParams.get('code'), landed.searchParams.get('code'), 'the app received the code');
  }
  return { locations: [callback.href, landed.href], landed };
}

test('social login by API: an unapproved redirectUrl gets no upstream URL (400 invalid_request naming redirectUrls)', async () => {
  const { challenge } = pkcePair();
  const refused = [
    'https://evil.example/steal',
    evil.url, // loopback, but another port than the approved URL
    'com.evil.app:/cb', // a private-use scheme nobody listed (RFC 8252)
    `${app.url}/../../steal`, // a path next to the approved one
    `http://127.0.0.1:${app.port}@evil.example/app/after-login`, // user info
  ];
  for (const redirectUrl of refused) {
    const attacker = new CookieJar();
    const { res, json } = await apiAuthorize({ provider: PROVIDER, redirectUrl, codeChallenge: challenge, codeChallengeMethod: 'S256' }, attacker);
    assert.equal(res.status, 400, `${redirectUrl}: ${JSON.stringify(json)}`);
    assert.equal(json.error?.code, 'invalid_request', redirectUrl);
    assert.match(json.error.message, /redirectUrls/, `${redirectUrl}: the message names redirectUrls`);
    assert.equal(json.url, undefined, `${redirectUrl}: no upstream URL is given`);
    assert.equal(res.headers.get('location'), null);
    assert.equal(attacker.cookies.size, 0, `${redirectUrl}: nothing is set`);
  }
  // The approved URL itself is accepted (so the refusals above are about the URL).
  const ok = await apiAuthorize({ provider: PROVIDER, redirectUrl: app.url, codeChallenge: challenge, codeChallengeMethod: 'S256' });
  assert.equal(ok.res.status, 200, JSON.stringify(ok.json));
  assert.ok(ok.json.url.startsWith(`${upstream.url}/oauth2/v1/authorize?`), ok.json.url);
  assert.equal(evil.requests.length, 0, 'nothing reached the evil server');
});

test('social login by API, the right app: the victim signs in upstream, the code reaches only the approved URL and is exchanged with the verifier', async () => {
  const pair = pkcePair();
  const started = await apiAuthorize({ provider: PROVIDER, redirectUrl: app.url, codeChallenge: pair.challenge, codeChallengeMethod: 'S256' });
  assert.equal(started.res.status, 200, JSON.stringify(started.json));
  const upstreamUrl = new URL(started.json.url);
  assert.equal(upstreamUrl.searchParams.get('client_id'), CLIENTS.socialRp.id);
  assert.equal(upstreamUrl.searchParams.get('redirect_uri'), `${downstream.url}/v1/oauth/callback`);
  assert.equal(upstreamUrl.searchParams.get('code_challenge_method'), 'S256', 'the downstream uses PKCE upstream too');
  const email = uniqueEmail('social-victim');
  const { landed } = await victimSignsIn(upstreamUrl, email);
  assert.equal(`${landed.origin}${landed.pathname}`, app.url);
  const code = landed.searchParams.get('code');
  assert.ok(code, landed.href);
  const done = await apiExchange({ code, codeVerifier: pair.verifier });
  assert.equal(done.res.status, 200, JSON.stringify(done.json));
  assert.equal(done.json.user.email, email);
  assert.ok(done.json.user.loginIds[0].startsWith(`${PROVIDER}:`), JSON.stringify(done.json.user.loginIds));
  const jwks = jose.createRemoteJWKSet(new URL(`${downstream.issuer}/.well-known/jwks.json`));
  const { payload, protectedHeader } = await jose.jwtVerify(done.json.sessionJwt, jwks, { issuer: downstream.issuer, audience: 'down', typ: 'session+jwt' });
  assert.equal(protectedHeader.typ, 'session+jwt');
  assert.equal(payload.sub, done.json.user.userId);
  // One time.
  const again = await apiExchange({ code, codeVerifier: pair.verifier });
  assert.equal(again.res.status, 400);
  assert.equal(again.json.error.code, 'invalid_grant');
});

test('social login takeover: the code goes only to the approved URL; a wrong codeVerifier gets invalid_grant and spends it', async () => {
  // The attacker starts the login (holding its own verifier) and lures the
  // victim to the upstream URL.
  const attacker = pkcePair();
  const started = await apiAuthorize({ provider: PROVIDER, redirectUrl: app.url, codeChallenge: attacker.challenge, codeChallengeMethod: 'S256' });
  assert.equal(started.res.status, 200, JSON.stringify(started.json));
  const upstreamUrl = new URL(started.json.url);

  // Rewriting the upstream URL's redirect_uri gets the attacker nowhere:
  // the upstream sends no browser to an unregistered redirect URI.
  const forged = new URL(upstreamUrl);
  forged.searchParams.set('redirect_uri', 'https://evil.example/steal');
  const refusedUp = await fetchManual(forged, new CookieJar());
  assert.equal(refusedUp.status, 400, 'the upstream shows an error page');
  assert.equal(refusedUp.headers.get('location'), null, 'and redirects nowhere');
  await refusedUp.arrayBuffer();

  const seenByApp = app.requests.length;
  const { locations, landed } = await victimSignsIn(upstreamUrl, uniqueEmail('takeover-victim'));
  // (a) no code is sent anywhere but the approved URL.
  for (const location of locations) {
    assert.ok(!location.includes('evil'), `no Location points at evil: ${location}`);
    const to = new URL(location);
    if (to.searchParams.get('code')) {
      const target = `${to.origin}${to.pathname}`;
      assert.ok(
        target === app.url || target === `${downstream.url}/v1/oauth/callback`,
        `a code only goes to the downstream's callback (from the upstream) or to the approved URL: ${location}`,
      );
    }
  }
  assert.equal(`${landed.origin}${landed.pathname}`, app.url, landed.href);
  assert.equal(app.requests.length, seenByApp + 1, 'the approved app received the code once');
  assert.equal(evil.requests.length, 0, 'nothing reached the evil server');
  const code = landed.searchParams.get('code');
  assert.ok(code);

  // (b) a code exchanged with a verifier that is not the starter's: invalid_grant ...
  const wrong = await apiExchange({ code, codeVerifier: pkcePair().verifier });
  assert.equal(wrong.res.status, 400, JSON.stringify(wrong.json));
  assert.equal(wrong.json.error.code, 'invalid_grant');
  assert.equal(wrong.json.sessionJwt, undefined);
  // ... and the code is spent: the right verifier gets nothing after that.
  const right = await apiExchange({ code, codeVerifier: attacker.verifier });
  assert.equal(right.res.status, 400, JSON.stringify(right.json));
  assert.equal(right.json.error.code, 'invalid_grant');
  assert.equal(right.json.sessionJwt, undefined);
});

test('a flow execution belongs to the cookie jar that started it: another jar gets 403 access_denied', async () => {
  const a = new CookieJar();
  const started = await postJson(`${upstream.url}/v1/flow/start`, { flowId: 'sign-up-or-in' }, a);
  assert.equal(started.res.status, 200, JSON.stringify(started.json));
  assert.equal(started.json.status, 'waiting');
  const { executionId, executionSecret, stepId } = started.json;
  assert.ok(executionId && executionSecret && stepId, JSON.stringify(started.json));
  assert.ok(a.get('idflow_browser'), 'the start sets the browser cookie');
  const cookie = started.res.headers.getSetCookie().find((c) => c.startsWith('idflow_browser='));
  assert.match(cookie, /HttpOnly/i);
  assert.match(cookie, /SameSite=Lax/i);

  // Jar B knows the execution id (a link, a log line, a shoulder) and nothing else.
  const attackerEmail = uniqueEmail('hijacker');
  const attempts = [
    ['/v1/flow/next', { executionId, stepId, interactionId: 'submit', input: { email: attackerEmail } }],
    ['/v1/flow/start', { executionId }],
    ['/v1/flow/next', { executionId, executionSecret: 'S-guessed-0123456789', stepId, interactionId: 'submit', input: { email: attackerEmail } }],
    ['/v1/flow/start', { executionId, executionSecret: 'S-guessed-0123456789' }],
  ];
  for (const [route, body] of attempts) {
    const b = new CookieJar();
    const { res, json } = await postJson(`${upstream.url}${route}`, body, b);
    assert.equal(res.status, 403, `${route} ${JSON.stringify(body)}: ${JSON.stringify(json)}`);
    assert.equal(json.error?.code, 'access_denied', `${route}: ${JSON.stringify(json)}`);
    assert.equal(json.authInfo, undefined);
    assert.equal(json.screen, undefined, `${route}: the attacker does not even see the screen`);
  }

  // Jar A goes on with its cookie alone (what the built-in page does).
  const email = uniqueEmail('owner');
  const next = await postJson(`${upstream.url}/v1/flow/next`, { executionId, stepId, interactionId: 'submit', input: { email } }, a);
  assert.equal(next.res.status, 200, JSON.stringify(next.json));
  assert.equal(next.json.status, 'completed', JSON.stringify(next.json));
  assert.equal(next.json.authInfo.user.email, email, 'the owner signed in as itself');
  const jwks = jose.createRemoteJWKSet(new URL(`${upstream.issuer}/.well-known/jwks.json`));
  const { payload } = await jose.jwtVerify(next.json.authInfo.sessionJwt, jwks, { issuer: upstream.issuer, audience: PROJECT_ID, typ: 'session+jwt' });
  assert.equal(payload.sub, next.json.authInfo.user.userId);

  // After completion jar B still reads nothing (the execution is gone or not its own).
  const late = await postJson(`${upstream.url}/v1/flow/start`, { executionId }, new CookieJar());
  assert.ok([400, 403].includes(late.res.status), JSON.stringify(late.json));
  assert.ok(['invalid_request', 'access_denied'].includes(late.json.error?.code), JSON.stringify(late.json));
  assert.equal(late.json.authInfo, undefined);
});
