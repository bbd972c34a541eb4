// Error paths of the provider over plain HTTP (fetch with redirect: 'manual'):
// what a client or an attacker gets back when something is wrong.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import * as jose from 'jose';
import {
  CLIENTS,
  CookieJar,
  PROJECT_ID,
  basicAuth,
  fetchManual,
  jwtPayload,
  login,
  partnerJwk,
  postForm,
  startServer,
  stopServer,
  uniqueEmail,
} from '../lib/helpers.js';

let server;
let JWKS;

before(async () => {
  server = await startServer();
  JWKS = jose.createRemoteJWKSet(new URL(`${server.issuer}/.well-known/jwks.json`));
});

after(async () => {
  assert.deepEqual(await stopServer(server), { code: 0, signal: null });
});

const tokenUrl = () => `${server.url}/oauth2/v1/token`;
const userinfoUrl = () => `${server.url}/oauth2/v1/userinfo`;

function pkce() {
  const verifier = randomBytes(32).toString('base64url');
  const challenge = createHash('sha256').update(verifier).digest('base64url');
  return { verifier, challenge };
}

function authorizeUrl(params) {
  const url = new URL(`${server.url}/oauth2/v1/authorize`);
  for (const [k, v] of Object.entries(params)) if (v !== undefined) url.searchParams.set(k, v);
  return url;
}

/** A public-client authorization code (PKCE S256) for a fresh user. */
async function publicCode({ scope = 'openid email', redirectUri = CLIENTS.public.redirect, jar = new CookieJar() } = {}) {
  const { verifier, challenge } = pkce();
  const state = randomUUID();
  const url = authorizeUrl({
    client_id: CLIENTS.public.id,
    redirect_uri: redirectUri,
    response_type: 'code',
    scope,
    state,
    nonce: randomUUID(),
    code_challenge: challenge,
    code_challenge_method: 'S256',
  });
  const result = await login(url, uniqueEmail('err'), jar);
  assert.equal(result.params.get('state'), state);
  const code = result.params.get('code');
  assert.ok(code, `a code: ${result.url}`);
  return { code, verifier, redirectUri, jar };
}

function redeem({ code, verifier, redirectUri }) {
  return postForm(tokenUrl(), {
    grant_type: 'authorization_code',
    client_id: CLIENTS.public.id,
    code,
    redirect_uri: redirectUri,
    code_verifier: verifier,
  });
}

function refresh(refreshToken, extra = {}) {
  return postForm(tokenUrl(), { grant_type: 'refresh_token', client_id: CLIENTS.public.id, refresh_token: refreshToken, ...extra });
}

/** Signs in and redeems: tokens with a refresh token (offline_access). */
async function publicTokens(scope = 'openid email offline_access') {
  const c = await publicCode({ scope });
  const r = await redeem(c);
  assert.equal(r.res.status, 200, r.text);
  return r.json;
}

function assertOAuthError(r, status, error) {
  assert.equal(r.res.status, status, `status (body: ${r.text})`);
  assert.match(r.res.headers.get('content-type') ?? '', /^application\/json/);
  assert.equal(r.json?.error, error, `error (body: ${r.text})`);
  assert.equal(typeof r.json.error_description, 'string');
  assert.equal(r.res.headers.get('cache-control'), 'no-store');
}

async function assertHtmlError(res, status) {
  assert.equal(res.status, status);
  assert.match(res.headers.get('content-type') ?? '', /^text\/html/);
  assert.equal(res.headers.get('location'), null, 'an error page never redirects');
  const body = await res.text();
  assert.match(body, /<html/i);
  return body;
}

async function userinfo(accessToken) {
  const res = await fetch(userinfoUrl(), { headers: { authorization: `Bearer ${accessToken}` } });
  return { res, text: await res.text() };
}

function assertInvalidToken(u) {
  assert.equal(u.res.status, 401, u.text);
  const challenge = u.res.headers.get('www-authenticate') ?? '';
  assert.match(challenge, /^Bearer\b/);
  assert.match(challenge, /error="invalid_token"/);
}

test('authorize: unknown client_id → 400 HTML error page, no redirect', async () => {
  const res = await fetchManual(
    authorizeUrl({ client_id: 'no-such-client', redirect_uri: CLIENTS.public.redirect, response_type: 'code', scope: 'openid', state: 's' }),
  );
  const body = await assertHtmlError(res, 400);
  assert.match(body, /Unknown application/);
  // Missing client_id likewise.
  await assertHtmlError(await fetchManual(authorizeUrl({ redirect_uri: CLIENTS.public.redirect, response_type: 'code' })), 400);
});

test('authorize: unregistered redirect_uri → 400 HTML error page, no redirect', async () => {
  const { challenge } = pkce();
  for (const redirectUri of [
    'http://127.0.0.1/not-registered',
    'http://localhost/callback', // only IP-literal loopback hosts get any-port matching
    'https://127.0.0.1/callback',
    'http://127.0.0.1/callback/extra',
    'https://evil.example/callback',
  ]) {
    const res = await fetchManual(
      authorizeUrl({
        client_id: CLIENTS.public.id,
        redirect_uri: redirectUri,
        response_type: 'code',
        scope: 'openid',
        state: 's',
        code_challenge: challenge,
        code_challenge_method: 'S256',
      }),
    );
    const body = await assertHtmlError(res, 400);
    assert.match(body, /redirect_uri is not registered/, redirectUri);
  }
});

test('code replay → invalid_grant, and the first redemption\'s access token is revoked', async () => {
  const c = await publicCode({ scope: 'openid email offline_access' });
  const first = await redeem(c);
  assert.equal(first.res.status, 200, first.text);
  assert.equal((await userinfo(first.json.access_token)).res.status, 200, 'the access token works before the replay');

  const replay = await redeem(c);
  assertOAuthError(replay, 400, 'invalid_grant');

  assertInvalidToken(await userinfo(first.json.access_token));
  assertOAuthError(await refresh(first.json.refresh_token), 400, 'invalid_grant');
});

test('wrong code_verifier → invalid_grant', async () => {
  const c = await publicCode();
  assertOAuthError(await redeem({ ...c, verifier: pkce().verifier }), 400, 'invalid_grant');
  // A missing verifier, too (on a fresh code).
  const c2 = await publicCode();
  assertOAuthError(await redeem({ ...c2, verifier: '' }), 400, 'invalid_grant');
});

test('token request with a redirect_uri other than the authorization request\'s → invalid_grant', async () => {
  const c = await publicCode({ redirectUri: 'http://127.0.0.1:50001/callback' });
  assertOAuthError(await redeem({ ...c, redirectUri: 'http://127.0.0.1:50002/callback' }), 400, 'invalid_grant');
});

test('public client without code_challenge → redirect with error=invalid_request', async () => {
  const res = await fetchManual(
    authorizeUrl({ client_id: CLIENTS.public.id, redirect_uri: CLIENTS.public.redirect, response_type: 'code', scope: 'openid', state: 'st-1' }),
  );
  assert.equal(res.status, 302);
  const to = new URL(res.headers.get('location'));
  assert.equal(`${to.origin}${to.pathname}`, CLIENTS.public.redirect);
  assert.equal(to.searchParams.get('error'), 'invalid_request');
  assert.match(to.searchParams.get('error_description'), /code_challenge/);
  assert.equal(to.searchParams.get('state'), 'st-1');
  assert.equal(to.searchParams.get('iss'), server.issuer);
  assert.equal(to.searchParams.get('code'), null);
});

test('code_challenge_method=plain → redirect with error=invalid_request', async () => {
  const verifier = randomBytes(32).toString('base64url');
  const res = await fetchManual(
    authorizeUrl({
      client_id: CLIENTS.public.id,
      redirect_uri: CLIENTS.public.redirect,
      response_type: 'code',
      scope: 'openid',
      state: 'st-2',
      code_challenge: verifier,
      code_challenge_method: 'plain',
    }),
  );
  assert.equal(res.status, 302);
  const to = new URL(res.headers.get('location'));
  assert.equal(`${to.origin}${to.pathname}`, CLIENTS.public.redirect);
  assert.equal(to.searchParams.get('error'), 'invalid_request');
  assert.match(to.searchParams.get('error_description'), /plain/);
  assert.equal(to.searchParams.get('state'), 'st-2');
});

test('authorize errors after the redirect URI is known go back to it, with state and iss', async () => {
  const { challenge } = pkce();
  const base = {
    client_id: CLIENTS.public.id,
    redirect_uri: CLIENTS.public.redirect,
    response_type: 'code',
    scope: 'openid',
    code_challenge: challenge,
    code_challenge_method: 'S256',
  };
  const cases = [
    [{ response_type: undefined }, 'invalid_request'],
    [{ response_type: 'token' }, 'unsupported_response_type'],
    // An implicit type the application has not enabled (OIDC Core §3.2.2.5).
    [{ response_type: 'id_token', nonce: 'n', response_mode: 'form_post' }, 'unsupported_response_type', 'form_post'],
    [{ prompt: 'none login' }, 'invalid_request'],
    [{ prompt: 'bogus' }, 'invalid_request'],
    [{ max_age: 'soon' }, 'invalid_request'],
    [{ code_challenge_method: 'S512' }, 'invalid_request'],
    [{ code_challenge: 'too-short' }, 'invalid_request'],
    // Answered the way it asked: in the fragment (Multiple Response Types §2.1).
    [{ response_mode: 'fragment' }, 'invalid_request', 'fragment'],
    [{ request: 'eyJhbGciOiJub25lIn0.e30.' }, 'invalid_request_object'],
    [{ request_uri: 'https://client.example/req' }, 'request_uri_not_supported'],
    [{ flow: 'no-such-flow' }, 'invalid_request'],
  ];
  for (const [override, error, mode] of cases) {
    const state = randomUUID();
    const res = await fetchManual(authorizeUrl({ ...base, state, ...override }));
    if (mode === 'form_post') {
      // response_mode=form_post errors come back as an auto-submitting form.
      assert.equal(res.status, 200, JSON.stringify(override));
      const html = await res.text();
      assert.match(html, new RegExp(`action="${CLIENTS.public.redirect}"`));
      assert.match(html, new RegExp(`name="error" value="${error}"`));
      assert.match(html, new RegExp(`name="state" value="${state}"`));
      continue;
    }
    assert.equal(res.status, 302, JSON.stringify(override));
    const to = new URL(res.headers.get('location'));
    assert.equal(`${to.origin}${to.pathname}`, CLIENTS.public.redirect, JSON.stringify(override));
    const got = mode === 'fragment' ? new URLSearchParams(to.hash.slice(1)) : to.searchParams;
    assert.equal(got.get('error'), error, `${JSON.stringify(override)}: ${got.get('error_description')}`);
    assert.equal(got.get('state'), state);
    assert.equal(got.get('iss'), server.issuer);
    assert.equal(got.get('code'), null);
  }
  // A scope the provider does not know is ignored, not an error (RFC 6749 §3.3).
  const unknownScope = await fetchManual(authorizeUrl({ ...base, state: randomUUID(), scope: 'openid reports:read' }));
  assert.equal(unknownScope.status, 302);
  assert.equal(new URL(unknownScope.headers.get('location')).pathname, `/login/${PROJECT_ID}`);
  // A repeated parameter is refused (RFC 6749 §3.1).
  const repeated = await fetchManual(`${authorizeUrl({ ...base, state: 'a' })}&state=b`);
  assert.equal(repeated.status, 302);
  assert.equal(new URL(repeated.headers.get('location')).searchParams.get('error'), 'invalid_request');
  // The implicit flow answers by form_post only; response_mode=query is
  // refused, and the refusal itself never travels in a query.
  const query = await fetchManual(
    authorizeUrl({ client_id: CLIENTS.implicit.id, redirect_uri: CLIENTS.implicit.redirect, response_type: 'id_token', response_mode: 'query', scope: 'openid', nonce: 'n', state: 'q' }),
  );
  assert.equal(query.status, 200);
  const refused = await query.text();
  assert.match(refused, new RegExp(`<form method="post" action="${CLIENTS.implicit.redirect}">`));
  assert.match(refused, /name="error" value="invalid_request"/);
  assert.doesNotMatch(refused, /name="id_token"/);
  // The confidential "web" app has not enabled the implicit flow (OIDC Core §3.2.2.5).
  const web = await fetchManual(
    authorizeUrl({ client_id: CLIENTS.web.id, redirect_uri: CLIENTS.web.redirect, response_type: 'id_token', response_mode: 'form_post', scope: 'openid', nonce: 'n', state: 's' }),
  );
  assert.equal(web.status, 200);
  assert.match(await web.text(), /name="error" value="unsupported_response_type"/);
});

test('concurrent redemptions of one code: at most one wins, and the replays revoke what it got', async () => {
  const c = await publicCode({ scope: 'openid offline_access' });
  const results = await Promise.all(Array.from({ length: 6 }, () => redeem(c)));
  const ok = results.filter((r) => r.res.status === 200);
  assert.ok(ok.length <= 1, `${ok.length} redemptions of one code succeeded`);
  for (const r of results.filter((x) => x.res.status !== 200)) assertOAuthError(r, 400, 'invalid_grant');
  for (const r of ok) {
    assertInvalidToken(await userinfo(r.json.access_token));
    assertOAuthError(await refresh(r.json.refresh_token), 400, 'invalid_grant');
  }
});

test('concurrent use of one refresh token: at most one wins, then the family is revoked', async () => {
  const tokens = await publicTokens();
  const results = await Promise.all(Array.from({ length: 6 }, () => refresh(tokens.refresh_token)));
  const ok = results.filter((r) => r.res.status === 200);
  assert.ok(ok.length <= 1, `${ok.length} refreshes with one token succeeded`);
  for (const r of results.filter((x) => x.res.status !== 200)) assertOAuthError(r, 400, 'invalid_grant');
  for (const r of ok) assertOAuthError(await refresh(r.json.refresh_token), 400, 'invalid_grant');
});

test('a code is bound to its client: another client cannot redeem it', async () => {
  const c = await publicCode();
  const foreign = await postForm(
    tokenUrl(),
    { grant_type: 'authorization_code', code: c.code, redirect_uri: c.redirectUri, code_verifier: c.verifier },
    { headers: { authorization: basicAuth(CLIENTS.web.id, CLIENTS.web.secret) } },
  );
  assertOAuthError(foreign, 400, 'invalid_grant');
  // A refresh token likewise.
  const tokens = await publicTokens();
  const stolen = await postForm(
    tokenUrl(),
    { grant_type: 'refresh_token', refresh_token: tokens.refresh_token },
    { headers: { authorization: basicAuth(CLIENTS.web.id, CLIENTS.web.secret) } },
  );
  assertOAuthError(stolen, 400, 'invalid_grant');
  // Revocation by another client is a silent no-op (RFC 7009 §2.1).
  const rev = await postForm(`${server.url}/oauth2/v1/revoke`, { token: tokens.refresh_token }, { headers: { authorization: basicAuth(CLIENTS.web.id, CLIENTS.web.secret) } });
  assert.equal(rev.res.status, 200);
  assert.equal((await refresh(tokens.refresh_token)).res.status, 200, 'the owner can still refresh');
});

test('refresh token reuse → invalid_grant, and the rotated successor is revoked too', async () => {
  const tokens = await publicTokens();
  const r1 = await refresh(tokens.refresh_token);
  assert.equal(r1.res.status, 200, r1.text);
  const successor = r1.json.refresh_token;
  assert.ok(successor);
  assert.notEqual(successor, tokens.refresh_token);

  assertOAuthError(await refresh(tokens.refresh_token), 400, 'invalid_grant');
  assertOAuthError(await refresh(successor), 400, 'invalid_grant');
  assertInvalidToken(await userinfo(r1.json.access_token));
});

test('refresh with a wider scope → invalid_scope; narrowing works', async () => {
  const tokens = await publicTokens('openid offline_access');
  assertOAuthError(await refresh(tokens.refresh_token, { scope: 'openid offline_access email' }), 400, 'invalid_scope');
  // The refused request did not use the token up; a narrower scope is fine.
  const narrowed = await refresh(tokens.refresh_token, { scope: 'offline_access' });
  assert.equal(narrowed.res.status, 200, narrowed.text);
  assert.equal(narrowed.json.scope, 'offline_access');
  assert.equal(narrowed.json.id_token, undefined, 'no id_token without openid');
  assert.equal(jwtPayload(narrowed.json.access_token).scope, 'offline_access');
  // The narrowed successor cannot widen back.
  assertOAuthError(await refresh(narrowed.json.refresh_token, { scope: 'openid offline_access' }), 400, 'invalid_scope');
});

test('bad client secret → 401 invalid_client (Basic and post)', async () => {
  const basic = await postForm(tokenUrl(), { grant_type: 'client_credentials' }, { headers: { authorization: basicAuth(CLIENTS.web.id, 'wrong-secret-0123456789abcdef') } });
  assertOAuthError(basic, 401, 'invalid_client');
  assert.match(basic.res.headers.get('www-authenticate') ?? '', /^Basic/);

  const post = await postForm(tokenUrl(), {
    grant_type: 'refresh_token',
    refresh_token: 'whatever',
    client_id: CLIENTS.webPost.id,
    client_secret: 'wrong-secret-0123456789abcdef',
  });
  assertOAuthError(post, 401, 'invalid_client');

  const key = await postForm(tokenUrl(), { grant_type: 'client_credentials' }, { headers: { authorization: basicAuth(CLIENTS.accessKey.id, 'not-the-secret-0123456789') } });
  assertOAuthError(key, 401, 'invalid_client');

  // A confidential client with no authentication at all.
  assertOAuthError(await postForm(tokenUrl(), { grant_type: 'client_credentials', client_id: CLIENTS.web.id }), 401, 'invalid_client');
});

test('replayed private_key_jwt client assertion (same jti) → invalid_client', async () => {
  const key = await jose.importJWK(partnerJwk(), 'ES256');
  const now = Math.floor(Date.now() / 1000);
  const assertion = await new jose.SignJWT({ jti: randomUUID() })
    .setProtectedHeader({ alg: 'ES256', kid: CLIENTS.partner.kid })
    .setIssuer(CLIENTS.partner.id)
    .setSubject(CLIENTS.partner.id)
    .setAudience(tokenUrl())
    .setIssuedAt(now)
    .setExpirationTime(now + 60)
    .sign(key);
  const request = () =>
    postForm(tokenUrl(), {
      grant_type: 'refresh_token',
      refresh_token: 'not-a-refresh-token',
      client_id: CLIENTS.partner.id,
      client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
      client_assertion: assertion,
    });
  // First use: the client authenticates, so the (bogus) grant is what fails.
  assertOAuthError(await request(), 400, 'invalid_grant');
  // Second use of the same assertion: refused as a replay.
  const replay = await request();
  assertOAuthError(replay, 401, 'invalid_client');
  assert.match(replay.json.error_description, /jti|already used/);
});

test('private_key_jwt assertions: wrong audience, too long a lifetime, wrong iss/sub → invalid_client', async () => {
  const key = await jose.importJWK(partnerJwk(), 'ES256');
  const now = Math.floor(Date.now() / 1000);
  const sign = ({ aud = tokenUrl(), exp = now + 60, iss = CLIENTS.partner.id, sub = CLIENTS.partner.id } = {}) =>
    new jose.SignJWT({ jti: randomUUID() })
      .setProtectedHeader({ alg: 'ES256', kid: CLIENTS.partner.kid })
      .setIssuer(iss)
      .setSubject(sub)
      .setAudience(aud)
      .setIssuedAt(now)
      .setExpirationTime(exp)
      .sign(key);
  const send = async (assertion) =>
    postForm(tokenUrl(), {
      grant_type: 'refresh_token',
      refresh_token: 'not-a-refresh-token',
      client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
      client_assertion: await assertion,
    });
  // Accepted audiences: the token endpoint and the issuer; an hour of lifetime is fine.
  assertOAuthError(await send(sign({ aud: server.issuer })), 400, 'invalid_grant');
  assertOAuthError(await send(sign({ exp: now + 3600 })), 400, 'invalid_grant');
  // Refused:
  assertOAuthError(await send(sign({ aud: 'https://elsewhere.example/token' })), 401, 'invalid_client');
  assertOAuthError(await send(sign({ exp: now + 2 * 3600 })), 401, 'invalid_client');
  assertOAuthError(await send(sign({ exp: now - 120 })), 401, 'invalid_client');
  assertOAuthError(await send(sign({ sub: 'someone-else' })), 401, 'invalid_client');
  assertOAuthError(await send(sign({ iss: CLIENTS.web.id, sub: CLIENTS.web.id })), 401, 'invalid_client');
  // Wrong assertion type.
  const wrongType = await postForm(tokenUrl(), {
    grant_type: 'refresh_token',
    refresh_token: 'x',
    client_assertion_type: 'urn:example:other',
    client_assertion: await sign(),
  });
  assertOAuthError(wrongType, 401, 'invalid_client');
});

test('a revoked access token is refused at userinfo with 401 invalid_token', async () => {
  const tokens = await publicTokens('openid email');
  assert.equal((await userinfo(tokens.access_token)).res.status, 200);
  const rev = await postForm(`${server.url}/oauth2/v1/revoke`, { client_id: CLIENTS.public.id, token: tokens.access_token, token_type_hint: 'access_token' });
  assert.equal(rev.res.status, 200, rev.text);
  assertInvalidToken(await userinfo(tokens.access_token));
  // Revoking an unknown token still answers 200 (RFC 7009 §2.2).
  const unknown = await postForm(`${server.url}/oauth2/v1/revoke`, { client_id: CLIENTS.public.id, token: 'no-such-token' });
  assert.equal(unknown.res.status, 200);
});

test('userinfo: no token, a garbage token, a token without openid', async () => {
  const none = await fetch(userinfoUrl());
  assert.equal(none.status, 401);
  assert.match(none.headers.get('www-authenticate') ?? '', /^Bearer/);
  assertInvalidToken(await userinfo('not.a.jwt'));
  // An access key's token has no openid scope: 403 insufficient_scope.
  const cc = await postForm(tokenUrl(), { grant_type: 'client_credentials' }, { headers: { authorization: basicAuth(CLIENTS.accessKey.id, CLIENTS.accessKey.secret) } });
  assert.equal(cc.res.status, 200, cc.text);
  const u = await userinfo(cc.json.access_token);
  assert.equal(u.res.status, 403);
  assert.match(u.res.headers.get('www-authenticate') ?? '', /error="insufficient_scope"/);
});

test('logout: unregistered post_logout_redirect_uri → 400 HTML, no redirect', async () => {
  for (const params of [
    { client_id: CLIENTS.public.id, post_logout_redirect_uri: 'https://evil.example/bye', state: 's' },
    { client_id: CLIENTS.public.id, post_logout_redirect_uri: CLIENTS.web.postLogout, state: 's' }, // another app's URI
    { post_logout_redirect_uri: CLIENTS.public.postLogout, state: 's' }, // no client named at all
  ]) {
    const url = new URL(`${server.url}/oauth2/v1/logout`);
    for (const [k, v] of Object.entries(params)) url.searchParams.set(k, v);
    await assertHtmlError(await fetchManual(url), 400);
  }
  // A forged id_token_hint is refused as well.
  const url = new URL(`${server.url}/oauth2/v1/logout`);
  url.searchParams.set('id_token_hint', 'eyJhbGciOiJub25lIn0.eyJpc3MiOiJ4In0.');
  url.searchParams.set('post_logout_redirect_uri', CLIENTS.public.postLogout);
  await assertHtmlError(await fetchManual(url), 400);
});

test('token endpoint responses carry Cache-Control: no-store', async () => {
  const tokens = await publicCode();
  const ok = await redeem(tokens);
  assert.equal(ok.res.status, 200);
  assert.equal(ok.res.headers.get('cache-control'), 'no-store');
  assert.equal(ok.res.headers.get('pragma'), 'no-cache');
  const cc = await postForm(tokenUrl(), { grant_type: 'client_credentials' }, { headers: { authorization: basicAuth(CLIENTS.accessKey.id, CLIENTS.accessKey.secret) } });
  assert.equal(cc.res.status, 200);
  assert.equal(cc.res.headers.get('cache-control'), 'no-store');
  for (const r of [
    await postForm(tokenUrl(), { grant_type: 'password', client_id: CLIENTS.public.id }),
    await postForm(tokenUrl(), { grant_type: 'authorization_code', client_id: CLIENTS.public.id, code: 'nope', redirect_uri: CLIENTS.public.redirect }),
    await postForm(tokenUrl(), { grant_type: 'client_credentials', client_id: 'nobody' }),
  ]) {
    assert.ok(r.res.status >= 400, r.text);
    assert.equal(r.res.headers.get('cache-control'), 'no-store', r.text);
  }
  assertOAuthError(await postForm(tokenUrl(), { grant_type: 'password', client_id: CLIENTS.public.id }), 400, 'unsupported_grant_type');
});

/** Runs the implicit flow through the flow API; answers the completion page's hidden fields. */
async function implicitFlow(responseType) {
  const nonce = randomUUID();
  const state = randomUUID();
  const url = authorizeUrl({
    client_id: CLIENTS.implicit.id,
    redirect_uri: CLIENTS.implicit.redirect,
    response_type: responseType,
    response_mode: 'form_post',
    scope: 'openid email',
    state,
    nonce,
  });
  const email = uniqueEmail('implicit');
  const result = await login(url, email);
  assert.equal(result.url.origin, server.url);
  assert.equal(result.url.pathname, '/oauth2/v1/authorize/complete');
  const id = result.url.searchParams.get('id');
  assert.ok(id, 'the completion URL carries an id');

  // The login helper fetched the page in the browser that authorized (its jar).
  const page = result.completion.res;
  assert.equal(page.status, 200);
  assert.match(page.headers.get('content-type'), /^text\/html/);
  assert.equal(page.headers.get('cache-control'), 'no-store');
  assert.match(page.headers.get('content-security-policy') ?? '', /frame-ancestors 'none'/);
  const { html } = result.completion;
  const form = html.match(/<form method="post" action="([^"]*)">/);
  assert.ok(form, `a POST form: ${html}`);
  assert.equal(form[1], CLIENTS.implicit.redirect);
  const fields = Object.fromEntries([...html.matchAll(/<input type="hidden" name="([^"]*)" value="([^"]*)">/g)].map((m) => [m[1], m[2]]));
  assert.equal(fields.state, state);
  assert.equal(fields.iss, server.issuer);
  assert.ok(fields.id_token, 'the form posts an id_token');
  assert.equal(fields.code, undefined);

  const { payload } = await jose.jwtVerify(fields.id_token, JWKS, { issuer: server.issuer, audience: CLIENTS.implicit.id });
  assert.equal(payload.nonce, nonce);
  // The email scope's claims are in the id_token only when no access token
  // comes with it; otherwise they are at userinfo (OIDC Core §5.4).
  assert.equal(payload.email, responseType === 'id_token' ? email : undefined, responseType);
  if (fields.access_token) {
    const info = await (await fetch(`${server.url}/oauth2/v1/userinfo`, { headers: { authorization: `Bearer ${fields.access_token}` } })).json();
    assert.equal(info.email, email);
  }

  // The completion page is one-time.
  await assertHtmlError(await fetchManual(result.url, result.jar), 400);
  return { fields, payload };
}

test('implicit id_token with response_mode=form_post: completion page posts the id_token', async () => {
  const { fields, payload } = await implicitFlow('id_token');
  assert.equal(fields.access_token, undefined);
  assert.equal(payload.at_hash, undefined);
});

test('implicit "id_token token" with form_post: access token and at_hash', async () => {
  const { fields, payload } = await implicitFlow('id_token token');
  assert.ok(fields.access_token);
  assert.equal(fields.token_type, 'Bearer');
  const d = createHash('sha256').update(fields.access_token).digest();
  assert.equal(payload.at_hash, d.subarray(0, 16).toString('base64url'));
  const at = await jose.jwtVerify(fields.access_token, JWKS, { issuer: server.issuer, audience: PROJECT_ID, typ: 'at+jwt' });
  assert.equal(at.payload.client_id, CLIENTS.implicit.id);
  assert.equal((await userinfo(fields.access_token)).res.status, 200);
});

test('implicit flow needs a nonce; the public "e2e" app may not use it', async () => {
  const noNonce = await fetchManual(
    authorizeUrl({ client_id: CLIENTS.implicit.id, redirect_uri: CLIENTS.implicit.redirect, response_type: 'id_token', response_mode: 'form_post', scope: 'openid', state: 's' }),
  );
  // form_post errors come back as an auto-submitting form, not a redirect.
  assert.equal(noNonce.status, 200);
  const html = await noNonce.text();
  assert.match(html, /name="error" value="invalid_request"/);
  assert.match(html, new RegExp(`action="${CLIENTS.implicit.redirect}"`));

  const notAllowed = await fetchManual(
    authorizeUrl({ client_id: CLIENTS.public.id, redirect_uri: CLIENTS.public.redirect, response_type: 'id_token', response_mode: 'form_post', scope: 'openid', nonce: 'n', state: 's' }),
  );
  assert.equal(notAllowed.status, 200);
  // Not enabled for this application: unsupported_response_type (OIDC Core §3.2.2.5).
  assert.match(await notAllowed.text(), /name="error" value="unsupported_response_type"/);
});
