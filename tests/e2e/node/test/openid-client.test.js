// The provider as a certified relying-party library sees it: openid-client v6
// does discovery, the authorization code flow with PKCE, userinfo, refresh,
// revocation and end session against a real `idflow serve`, and every token
// is verified a second time, independently, with jose.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as client from 'openid-client';
import * as jose from 'jose';
import {
  CLIENTS,
  CookieJar,
  PROJECT_ID,
  fetchManual,
  login,
  partnerJwk,
  startServer,
  stopServer,
  uniqueEmail,
} from '../lib/helpers.js';

const insecure = { execute: [client.allowInsecureRequests] };

let server;
let JWKS;
let publicConfig;

before(async () => {
  server = await startServer();
  publicConfig = await client.discovery(new URL(server.issuer), CLIENTS.public.id, undefined, client.None(), insecure);
  JWKS = jose.createRemoteJWKSet(new URL(publicConfig.serverMetadata().jwks_uri));
});

after(async () => {
  const status = await stopServer(server);
  assert.deepEqual(status, { code: 0, signal: null }, 'idflow serve exits 0 on SIGTERM');
});

/** Runs a full browserless login for `config` and redeems the code with openid-client. */
async function codeFlow(config, { scope, redirectUri, email = uniqueEmail(), jar = new CookieJar(), extra = {}, answer }) {
  const codeVerifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const nonce = client.randomNonce();
  const url = client.buildAuthorizationUrl(config, {
    redirect_uri: redirectUri,
    scope,
    code_challenge: await client.calculatePKCECodeChallenge(codeVerifier),
    code_challenge_method: 'S256',
    state,
    nonce,
    ...extra,
  });
  const result = await login(url, email, jar, answer);
  assert.equal(result.params.get('state'), state, 'the redirect echoes state');
  assert.equal(result.params.get('iss'), server.issuer, 'the redirect carries iss (RFC 9207)');
  const tokens = await client.authorizationCodeGrant(config, result.url, {
    pkceCodeVerifier: codeVerifier,
    expectedState: state,
    expectedNonce: nonce,
    idTokenExpected: scope.split(' ').includes('openid'),
  });
  return { tokens, email, jar, state, nonce, result };
}

async function verifyIdToken(idToken, audience) {
  const { payload, protectedHeader } = await jose.jwtVerify(idToken, JWKS, {
    issuer: server.issuer,
    audience,
    algorithms: ['RS256'],
  });
  assert.equal(protectedHeader.alg, 'RS256');
  assert.ok(protectedHeader.kid, 'id_token header has a kid');
  return payload;
}

async function verifyAccessToken(accessToken) {
  const { payload, protectedHeader } = await jose.jwtVerify(accessToken, JWKS, {
    issuer: server.issuer,
    audience: PROJECT_ID,
    typ: 'at+jwt',
    algorithms: ['RS256'],
  });
  assert.equal(protectedHeader.typ, 'at+jwt');
  assert.equal(typeof payload.jti, 'string');
  assert.ok(payload.jti.length > 0);
  assert.equal(typeof payload.exp, 'number');
  assert.equal(typeof payload.iat, 'number');
  return payload;
}

/** OIDC Core §3.1.3.6: base64url of the left half of SHA-256(access_token). */
function atHash(accessToken) {
  const d = createHash('sha256').update(accessToken).digest();
  return d.subarray(0, d.length / 2).toString('base64url');
}

/**
 * Awaits `promise`, which must fail with the OAuth error `code`. openid-client
 * raises ResponseBodyError (e.error) or, when a 401 carries a WWW-Authenticate
 * challenge (as for client_secret_basic), WWWAuthenticateChallengeError,
 * whose response body still holds the error.
 */
async function expectOAuthError(promise, code, status) {
  let e;
  try {
    await promise;
  } catch (err) {
    e = err;
  }
  assert.ok(e, `expected OAuth error ${code}, but the call succeeded`);
  let error = e.error;
  if (e.code === 'OAUTH_WWW_AUTHENTICATE_CHALLENGE') error = (await e.response.clone().json()).error;
  assert.equal(error, code, `expected OAuth error ${code}, got ${error ?? e.code}: ${e.message}`);
  if (status !== undefined) assert.equal(e.response?.status ?? e.status, status);
  return e;
}

test('discovery: openid-client reads the metadata; JWKS publishes only public keys', async () => {
  const meta = publicConfig.serverMetadata();
  const base = server.url;
  assert.equal(meta.issuer, server.issuer);
  assert.equal(meta.authorization_endpoint, `${base}/oauth2/v1/authorize`);
  assert.equal(meta.token_endpoint, `${base}/oauth2/v1/token`);
  assert.equal(meta.userinfo_endpoint, `${base}/oauth2/v1/userinfo`);
  assert.equal(meta.end_session_endpoint, `${base}/oauth2/v1/logout`);
  assert.equal(meta.revocation_endpoint, `${base}/oauth2/v1/revoke`);
  assert.equal(meta.jwks_uri, `${server.issuer}/.well-known/jwks.json`);
  assert.deepEqual(meta.code_challenge_methods_supported, ['S256']);
  assert.ok(publicConfig.serverMetadata().supportsPKCE());
  assert.deepEqual(meta.id_token_signing_alg_values_supported, ['RS256']);
  assert.equal(meta.authorization_response_iss_parameter_supported, true);
  for (const rt of ['code', 'id_token', 'id_token token']) assert.ok(meta.response_types_supported.includes(rt), rt);
  for (const g of ['authorization_code', 'refresh_token', 'client_credentials']) assert.ok(meta.grant_types_supported.includes(g), g);
  for (const m of ['client_secret_basic', 'client_secret_post', 'private_key_jwt', 'none']) {
    assert.ok(meta.token_endpoint_auth_methods_supported.includes(m), m);
  }
  for (const s of ['openid', 'profile', 'email', 'offline_access', 'descope.custom_claims']) assert.ok(meta.scopes_supported.includes(s), s);
  // claimsSupported of the "e2e" application is merged in.
  for (const c of ['sub', 'email', 'plan', 'loginEmail']) assert.ok(meta.claims_supported.includes(c), c);

  const res = await fetch(meta.jwks_uri);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type'), /^application\/json/);
  const jwks = await res.json();
  assert.ok(Array.isArray(jwks.keys) && jwks.keys.length >= 1);
  for (const k of jwks.keys) {
    assert.equal(k.kty, 'RSA');
    assert.ok(k.kid, 'every key has a kid');
    for (const priv of ['d', 'p', 'q', 'dp', 'dq', 'qi']) assert.equal(k[priv], undefined, `JWKS leaks ${priv}`);
  }
});

test('public client "e2e": code + PKCE + state + nonce, userinfo, refresh, revoke', async () => {
  const { tokens, email } = await codeFlow(publicConfig, {
    scope: 'openid profile email offline_access',
    redirectUri: CLIENTS.public.redirect,
  });
  // openid-client validated the id_token (signature, iss, aud, nonce, exp).
  const claims = tokens.claims();
  assert.equal(claims.iss, server.issuer);
  assert.equal(claims.aud, CLIENTS.public.id);
  // An access token is issued: the scopes' claims are at userinfo only (OIDC Core §5.4).
  for (const c of ['email', 'email_verified', 'name', 'preferred_username']) assert.equal(claims[c], undefined, c);
  assert.equal(tokens.token_type, 'bearer');
  assert.equal(typeof tokens.expires_in, 'number');
  assert.ok(tokens.refresh_token, 'offline_access gives a public client a refresh token');
  assert.deepEqual(tokens.scope.split(' ').sort(), ['email', 'offline_access', 'openid', 'profile']);

  // The same tokens, verified independently with jose.
  const idt = await verifyIdToken(tokens.id_token, CLIENTS.public.id);
  assert.equal(idt.sub, claims.sub);
  assert.equal(idt.at_hash, atHash(tokens.access_token));
  assert.equal(typeof idt.auth_time, 'number');
  const at = await verifyAccessToken(tokens.access_token);
  assert.equal(at.sub, claims.sub);
  assert.equal(at.client_id, CLIENTS.public.id);
  assert.equal(at.aud, PROJECT_ID);
  assert.deepEqual(at.scope.split(' ').sort(), ['email', 'offline_access', 'openid', 'profile']);

  // userinfo
  const info = await client.fetchUserInfo(publicConfig, tokens.access_token, claims.sub);
  assert.equal(info.sub, claims.sub);
  assert.equal(info.email, email);
  assert.equal(info.email_verified, true);
  assert.equal(info.name, email, 'the flow sets name from the email');
  assert.equal(info.preferred_username, email);

  // refresh: a new access token, a rotated refresh token, a fresh id_token
  const refreshed = await client.refreshTokenGrant(publicConfig, tokens.refresh_token);
  assert.ok(refreshed.access_token);
  assert.notEqual(refreshed.access_token, tokens.access_token);
  assert.ok(refreshed.refresh_token);
  assert.notEqual(refreshed.refresh_token, tokens.refresh_token, 'refresh tokens rotate');
  assert.equal(refreshed.claims().sub, claims.sub);
  const at2 = await verifyAccessToken(refreshed.access_token);
  assert.equal(at2.sub, claims.sub);
  assert.notEqual(at2.jti, at.jti);
  const info2 = await client.fetchUserInfo(publicConfig, refreshed.access_token, claims.sub);
  assert.equal(info2.email, email);

  // revocation (RFC 7009) of the current refresh token ends the grant
  await client.tokenRevocation(publicConfig, refreshed.refresh_token, { token_type_hint: 'refresh_token' });
  await expectOAuthError(client.refreshTokenGrant(publicConfig, refreshed.refresh_token), 'invalid_grant');
  // ... and with it the access tokens issued from that grant
  await assert.rejects(client.fetchUserInfo(publicConfig, refreshed.access_token, claims.sub), (e) => {
    assert.equal(e.code, 'OAUTH_WWW_AUTHENTICATE_CHALLENGE', e.message);
    assert.equal(e.response.status, 401);
    const bearer = e.cause.find((c) => c.scheme === 'bearer');
    assert.equal(bearer?.parameters.error, 'invalid_token');
    return true;
  });
});

test('public client without offline_access gets no refresh token', async () => {
  const { tokens } = await codeFlow(publicConfig, { scope: 'openid email', redirectUri: CLIENTS.public.redirect });
  assert.ok(tokens.access_token);
  assert.ok(tokens.id_token);
  assert.equal(tokens.refresh_token, undefined);
});

test('a loopback redirect URI matches on any port (RFC 8252)', async () => {
  const { tokens } = await codeFlow(publicConfig, { scope: 'openid', redirectUri: 'http://127.0.0.1:49152/callback' });
  assert.ok(tokens.claims().sub);
});

test('prompt=none: with the session cookie a code comes at once; without it, login_required', async () => {
  const jar = new CookieJar();
  const first = await codeFlow(publicConfig, { scope: 'openid email', redirectUri: CLIENTS.public.redirect, jar });
  assert.ok(jar.get('idflow_session'), 'the flow set the provider session cookie');

  // With the cookie: straight back to the redirect URI with a code.
  const verifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const nonce = client.randomNonce();
  const url = client.buildAuthorizationUrl(publicConfig, {
    redirect_uri: CLIENTS.public.redirect,
    scope: 'openid email',
    prompt: 'none',
    code_challenge: await client.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    state,
    nonce,
  });
  const silent = await fetchManual(url, jar);
  assert.equal(silent.status, 302);
  const back = new URL(silent.headers.get('location'));
  assert.equal(`${back.origin}${back.pathname}`, CLIENTS.public.redirect);
  assert.ok(back.searchParams.get('code'), 'a code at once');
  const tokens = await client.authorizationCodeGrant(publicConfig, back, {
    pkceCodeVerifier: verifier,
    expectedState: state,
    expectedNonce: nonce,
  });
  assert.equal(tokens.claims().sub, first.tokens.claims().sub, 'the same user, silently');

  // Without the cookie: error=login_required at the redirect URI.
  const state2 = client.randomState();
  const url2 = client.buildAuthorizationUrl(publicConfig, {
    redirect_uri: CLIENTS.public.redirect,
    scope: 'openid',
    prompt: 'none',
    code_challenge: await client.calculatePKCECodeChallenge(client.randomPKCECodeVerifier()),
    code_challenge_method: 'S256',
    state: state2,
  });
  const noCookie = await fetchManual(url2);
  assert.equal(noCookie.status, 302);
  const err = new URL(noCookie.headers.get('location'));
  assert.equal(`${err.origin}${err.pathname}`, CLIENTS.public.redirect);
  assert.equal(err.searchParams.get('error'), 'login_required');
  assert.equal(err.searchParams.get('state'), state2);
  await expectOAuthError(
    client.authorizationCodeGrant(publicConfig, err, { pkceCodeVerifier: verifier, expectedState: state2 }),
    'login_required',
  );
});

test('max_age: a fresh enough session answers at once; max_age=0 always signs in again', async () => {
  const jar = new CookieJar();
  const first = await codeFlow(publicConfig, { scope: 'openid', redirectUri: CLIENTS.public.redirect, jar });
  const authorize = async (extra) => {
    const verifier = client.randomPKCECodeVerifier();
    const state = client.randomState();
    const url = client.buildAuthorizationUrl(publicConfig, {
      redirect_uri: CLIENTS.public.redirect,
      scope: 'openid',
      code_challenge: await client.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
      state,
      ...extra,
    });
    const res = await fetchManual(url, jar);
    assert.equal(res.status, 302);
    return { to: new URL(res.headers.get('location')), verifier, state };
  };

  // max_age=3600: the session is fresh, a code at once; openid-client checks auth_time.
  const fresh = await authorize({ max_age: '3600' });
  assert.ok(fresh.to.searchParams.get('code'));
  const tokens = await client.authorizationCodeGrant(publicConfig, fresh.to, {
    pkceCodeVerifier: fresh.verifier,
    expectedState: fresh.state,
    maxAge: 3600,
  });
  assert.equal(tokens.claims().sub, first.tokens.claims().sub);
  assert.equal(tokens.claims().auth_time, first.tokens.claims().auth_time, 'auth_time is the session\'s sign-in time');

  // max_age=0 (OIDC Core §3.1.2.1): back to the login page ...
  const again = await authorize({ max_age: '0' });
  assert.equal(again.to.pathname, `/login/${PROJECT_ID}`);
  // ... and with prompt=none, login_required.
  const none = await authorize({ max_age: '0', prompt: 'none' });
  assert.equal(none.to.searchParams.get('error'), 'login_required');
  // prompt=login also ignores the session.
  const forced = await authorize({ prompt: 'login' });
  assert.equal(forced.to.pathname, `/login/${PROJECT_ID}`);
});

test('end session: redirects with state, clears the cookie, ends the session and its grants', async () => {
  const jar = new CookieJar();
  const { tokens } = await codeFlow(publicConfig, { scope: 'openid offline_access', redirectUri: CLIENTS.public.redirect, jar });
  const oldCookie = jar.get('idflow_session');
  assert.ok(oldCookie);

  const state = client.randomState();
  const endUrl = client.buildEndSessionUrl(publicConfig, {
    id_token_hint: tokens.id_token,
    post_logout_redirect_uri: CLIENTS.public.postLogout,
    state,
  });
  const res = await fetchManual(endUrl, jar);
  assert.equal(res.status, 302);
  const to = new URL(res.headers.get('location'));
  assert.equal(`${to.origin}${to.pathname}`, CLIENTS.public.postLogout);
  assert.equal(to.searchParams.get('state'), state);
  const setCookie = res.headers.getSetCookie().find((c) => c.startsWith('idflow_session='));
  assert.ok(setCookie, 'logout sets the session cookie');
  assert.match(setCookie, /^idflow_session=;/);
  assert.match(setCookie, /Max-Age=0/i);
  assert.equal(jar.get('idflow_session'), undefined, 'the jar dropped the cookie');

  // prompt=none afterwards: login_required, with or without the old cookie.
  for (const cookie of [undefined, `idflow_session=${oldCookie}`]) {
    const url = client.buildAuthorizationUrl(publicConfig, {
      redirect_uri: CLIENTS.public.redirect,
      scope: 'openid',
      prompt: 'none',
      code_challenge: await client.calculatePKCECodeChallenge(client.randomPKCECodeVerifier()),
      code_challenge_method: 'S256',
      state,
    });
    const r = await fetch(url, { redirect: 'manual', headers: cookie ? { cookie } : {} });
    assert.equal(r.status, 302);
    assert.equal(new URL(r.headers.get('location')).searchParams.get('error'), 'login_required', `cookie: ${cookie}`);
  }
  // The grants made under the session are revoked.
  await expectOAuthError(client.refreshTokenGrant(publicConfig, tokens.refresh_token), 'invalid_grant');
});

test('client_credentials with access key K-reporting (ClientSecretBasic and ClientSecretPost)', async () => {
  for (const auth of [client.ClientSecretBasic(CLIENTS.accessKey.secret), client.ClientSecretPost(CLIENTS.accessKey.secret)]) {
    const config = await client.discovery(new URL(server.issuer), CLIENTS.accessKey.id, undefined, auth, insecure);
    const narrow = await client.clientCredentialsGrant(config, { scope: 'reports:read' });
    assert.equal(narrow.scope, 'reports:read');
    assert.equal(narrow.token_type, 'bearer');
    assert.equal(narrow.refresh_token, undefined);
    assert.equal(narrow.id_token, undefined);
    const at = await verifyAccessToken(narrow.access_token);
    assert.equal(at.client_id, CLIENTS.accessKey.id);
    assert.equal(at.sub, CLIENTS.accessKey.id);
    assert.equal(at.scope, 'reports:read');
    assert.equal(at.team, 'data', 'the access key custom claim');

    const all = await client.clientCredentialsGrant(config);
    assert.deepEqual(all.scope.split(' ').sort(), ['reports:read', 'reports:write']);
    const at2 = await verifyAccessToken(all.access_token);
    assert.equal(at2.team, 'data');

    await expectOAuthError(client.clientCredentialsGrant(config, { scope: 'reports:delete' }), 'invalid_scope');
  }
});

test('confidential "web" (client_secret_basic): custom claims from the flow in id_token and userinfo', async () => {
  const config = await client.discovery(new URL(server.issuer), CLIENTS.web.id, undefined, client.ClientSecretBasic(CLIENTS.web.secret), insecure);
  const { tokens, email } = await codeFlow(config, {
    scope: 'openid profile email descope.custom_claims',
    redirectUri: CLIENTS.web.redirect,
  });
  const claims = tokens.claims();
  assert.equal(claims.aud, CLIENTS.web.id);
  assert.equal(claims.plan, 'pro');
  assert.equal(claims.loginEmail, email);
  const idt = await verifyIdToken(tokens.id_token, CLIENTS.web.id);
  assert.equal(idt.plan, 'pro');
  assert.equal(idt.loginEmail, email);
  const at = await verifyAccessToken(tokens.access_token);
  assert.equal(at.client_id, CLIENTS.web.id);
  assert.equal(at.plan, 'pro');

  const info = await client.fetchUserInfo(config, tokens.access_token, claims.sub);
  assert.equal(info.plan, 'pro');
  assert.equal(info.loginEmail, email);
  assert.equal(info.email, email);
  // The claims flow gives its users every profile claim (OIDC Core §5.4).
  for (const c of ['name', 'family_name', 'given_name', 'middle_name', 'nickname', 'preferred_username', 'profile', 'picture', 'website', 'gender', 'birthdate', 'zoneinfo', 'locale', 'updated_at']) {
    assert.ok(c in info, `userinfo lacks ${c}`);
  }
  assert.equal(claims.given_name, undefined, 'profile claims are not in the id_token when an access token is issued');

  // A confidential client refreshes without offline_access; claims survive.
  assert.ok(tokens.refresh_token);
  const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token);
  assert.equal(refreshed.claims().plan, 'pro');
  assert.equal(refreshed.claims().loginEmail, email);

  // Without descope.custom_claims the custom claims stay out.
  const plain = await codeFlow(config, { scope: 'openid email', redirectUri: CLIENTS.web.redirect });
  assert.equal(plain.tokens.claims().plan, undefined);
  assert.equal(plain.tokens.claims().loginEmail, undefined);
  const plainInfo = await client.fetchUserInfo(config, plain.tokens.access_token, plain.tokens.claims().sub);
  assert.equal(plainInfo.plan, undefined);

  // "web" may also use client_credentials: a token for the app itself. No
  // user signs in there, so user scopes (openid, profile, ...) are refused.
  const cc = await client.clientCredentialsGrant(config);
  const ccAt = await verifyAccessToken(cc.access_token);
  assert.equal(ccAt.sub, CLIENTS.web.id);
  assert.equal(ccAt.client_id, CLIENTS.web.id);
  assert.equal(ccAt.plan, undefined);
  await expectOAuthError(client.clientCredentialsGrant(config, { scope: 'openid' }), 'invalid_scope');
});

test('confidential "web-post" (client_secret_post): code flow and refresh', async () => {
  const config = await client.discovery(new URL(server.issuer), CLIENTS.webPost.id, undefined, client.ClientSecretPost(CLIENTS.webPost.secret), insecure);
  const { tokens, email } = await codeFlow(config, { scope: 'openid email', redirectUri: CLIENTS.webPost.redirect });
  assert.equal(tokens.claims().aud, CLIENTS.webPost.id);
  assert.equal(tokens.claims().email, undefined, 'scope claims are at userinfo');
  assert.equal((await client.fetchUserInfo(config, tokens.access_token, tokens.claims().sub)).email, email);
  await verifyIdToken(tokens.id_token, CLIENTS.webPost.id);
  assert.equal((await verifyAccessToken(tokens.access_token)).client_id, CLIENTS.webPost.id);
  const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token);
  assert.equal(refreshed.claims().sub, tokens.claims().sub);

  // The registered method is the only one accepted.
  const basic = await client.discovery(new URL(server.issuer), CLIENTS.webPost.id, undefined, client.ClientSecretBasic(CLIENTS.webPost.secret), insecure);
  await expectOAuthError(client.refreshTokenGrant(basic, refreshed.refresh_token), 'invalid_client', 401);
});

test('"partner" (private_key_jwt, ES256): code flow and refresh with client assertions', async () => {
  const key = await jose.importJWK(partnerJwk(), 'ES256');
  const config = await client.discovery(
    new URL(server.issuer),
    CLIENTS.partner.id,
    undefined,
    client.PrivateKeyJwt({ key, kid: CLIENTS.partner.kid }),
    insecure,
  );
  // The claims parameter (OIDC Core §5.5) asks for the email in the id_token.
  const { tokens, email } = await codeFlow(config, {
    scope: 'openid', redirectUri: CLIENTS.partner.redirect, extra: { claims: JSON.stringify({ id_token: { email: null } }) },
  });
  assert.equal(tokens.claims().aud, CLIENTS.partner.id);
  assert.equal(tokens.claims().email, email);
  await verifyIdToken(tokens.id_token, CLIENTS.partner.id);
  assert.equal((await verifyAccessToken(tokens.access_token)).client_id, CLIENTS.partner.id);
  // Each request signs a new assertion (new jti), so refresh works too.
  const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token);
  assert.equal(refreshed.claims().sub, tokens.claims().sub);
  const again = await client.refreshTokenGrant(config, refreshed.refresh_token);
  assert.ok(again.access_token);

  // A key the partner did not register is refused.
  const { privateKey } = await jose.generateKeyPair('ES256');
  const impostor = await client.discovery(new URL(server.issuer), CLIENTS.partner.id, undefined, client.PrivateKeyJwt({ key: privateKey, kid: CLIENTS.partner.kid }), insecure);
  await expectOAuthError(client.refreshTokenGrant(impostor, again.refresh_token), 'invalid_client');
});

test('acr: names the flow only when it verified the user; acr_values picks another flow the application may run', async () => {
  assert.deepEqual(publicConfig.serverMetadata().acr_values_supported, ['sign-up-or-in', 'claims', 'password']);

  // "e2e" runs sign-up-or-in, which only looks a user up by the email typed:
  // openid-client validates the id_token, and neither token claims an acr.
  const { tokens, result } = await codeFlow(publicConfig, { scope: 'openid email', redirectUri: CLIENTS.public.redirect });
  assert.equal(result.flow.flowId, 'sign-up-or-in');
  assert.equal(tokens.claims().acr, undefined);
  assert.equal((await verifyAccessToken(tokens.access_token)).acr, undefined, 'nor the access token');

  // "web-post" may run sign-up-or-in (its default), claims and password:
  // acr_values=claims runs claims (its custom claim, still no acr) ...
  const config = await client.discovery(new URL(server.issuer), CLIENTS.webPost.id, undefined, client.ClientSecretPost(CLIENTS.webPost.secret), insecure);
  const chosen = await codeFlow(config, {
    scope: 'openid email descope.custom_claims', redirectUri: CLIENTS.webPost.redirect, extra: { acr_values: 'claims' },
  });
  assert.equal(chosen.result.flow.flowId, 'claims', 'the hosted page runs the requested flow');
  assert.equal(chosen.tokens.claims().plan, 'pro', 'a custom claim only the claims flow sets');
  assert.equal(chosen.tokens.claims().acr, undefined);

  // ... and acr_values=password checks a password: both tokens name the flow.
  const email = uniqueEmail('acr');
  const jar = new CookieJar();
  const password = 'correct horse battery staple';
  const checked = await codeFlow(config, {
    scope: 'openid email', redirectUri: CLIENTS.webPost.redirect, jar, email, extra: { acr_values: 'password' },
    answer: { interactionId: 'signUp', input: { email, password } },
  });
  assert.equal(checked.result.flow.flowId, 'password');
  assert.equal(checked.tokens.claims().acr, 'password');
  assert.deepEqual(checked.tokens.claims().amr, ['pwd']);
  assert.equal((await verifyAccessToken(checked.tokens.access_token)).acr, 'password');

  // The session the password flow made answers a request for that flow,
  // even as an essential acr, but not one that asks for another flow.
  const silent = async (extra) => {
    const url = client.buildAuthorizationUrl(config, {
      redirect_uri: CLIENTS.webPost.redirect,
      scope: 'openid',
      prompt: 'none',
      code_challenge: await client.calculatePKCECodeChallenge(client.randomPKCECodeVerifier()),
      code_challenge_method: 'S256',
      state: client.randomState(),
      ...extra,
    });
    const res = await fetchManual(url, jar);
    assert.equal(res.status, 302);
    return new URL(res.headers.get('location')).searchParams;
  };
  const essential = (values) => ({ claims: JSON.stringify({ id_token: { acr: { essential: true, values } } }) });
  assert.ok((await silent({ acr_values: 'password' })).get('code'), 'the same flow: answered at once');
  assert.ok((await silent(essential(['password']))).get('code'), 'an essential acr the session gives');
  assert.equal((await silent({ acr_values: 'sign-up-or-in' })).get('error'), 'login_required', 'another flow: login_required');

  // An essential acr answered by a flow that verified nothing is a failed
  // authentication (OIDC Core §5.5.1.1): openid-client sees the error.
  const unmet = await login(client.buildAuthorizationUrl(config, {
    redirect_uri: CLIENTS.webPost.redirect, scope: 'openid', state: 'st', ...essential(['sign-up-or-in']),
    code_challenge: await client.calculatePKCECodeChallenge(client.randomPKCECodeVerifier()), code_challenge_method: 'S256',
  }), uniqueEmail('unmet'));
  assert.equal(unmet.params.get('error'), 'unmet_authentication_requirements');
  assert.equal(unmet.params.get('code'), null);
  await assert.rejects(
    client.authorizationCodeGrant(config, unmet.url, { pkceCodeVerifier: 'x'.repeat(43), expectedState: 'st' }),
    (e) => e.error === 'unmet_authentication_requirements',
  );
});

/** Decodes the HTML character references a server may use in attribute values. */
function htmlUnescape(s) {
  const named = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };
  return s.replace(/&(?:#(\d+)|#x([0-9a-f]+)|(amp|lt|gt|quot|apos));/gi, (_, dec, hex, name) => {
    if (dec) return String.fromCodePoint(Number(dec));
    if (hex) return String.fromCodePoint(parseInt(hex, 16));
    return named[name.toLowerCase()];
  });
}

/** The auto-submitting form of a form_post page: { method, action, fields }. */
function parseFormPost(html) {
  const form = html.match(/<form\b[^>]*>/i);
  assert.ok(form, `no form in the page: ${html.slice(0, 500)}`);
  const attr = (name) => {
    const m = form[0].match(new RegExp(`\\b${name}="([^"]*)"`, 'i'));
    return m ? htmlUnescape(m[1]) : undefined;
  };
  const fields = {};
  for (const m of html.matchAll(/<input\b[^>]*>/gi)) {
    if (!/\btype="hidden"/i.test(m[0])) continue;
    const name = m[0].match(/\bname="([^"]*)"/i);
    const value = m[0].match(/\bvalue="([^"]*)"/i);
    assert.ok(name && value, `a hidden input without name or value: ${m[0]}`);
    const key = htmlUnescape(name[1]);
    assert.equal(fields[key], undefined, `the form repeats ${key}`);
    fields[key] = htmlUnescape(value[1]);
  }
  return { method: attr('method'), action: attr('action'), fields };
}

test('an authorization error comes back by form_post when asked (Form Post Response Mode §2); openid-client rejects it', async () => {
  // A dedicated configuration whose fetch is recorded: an error response must
  // never reach the token endpoint.
  const calls = [];
  const config = await client.discovery(new URL(server.issuer), CLIENTS.public.id, undefined, client.None(), insecure);
  config[client.customFetch] = (url, options) => {
    calls.push({ url: String(url), method: options?.method });
    return fetch(url, options);
  };
  // Registered as http://127.0.0.1/callback; a loopback port is allowed (RFC 8252 §7.3).
  const redirectUri = 'http://127.0.0.1:8765/callback';
  const verifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const nonce = client.randomNonce();
  const authorizationUrl = async (extra) => client.buildAuthorizationUrl(config, {
    redirect_uri: redirectUri,
    scope: 'openid',
    code_challenge: await client.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    state,
    nonce,
    // An unsigned request object from an application that did not opt in to them (OIDC Core §6.1).
    request: 'eyJhbGciOiJub25lIn0.e30.',
    ...extra,
  });
  const url = await authorizationUrl({ response_mode: 'form_post' });
  assert.equal(url.searchParams.get('response_mode'), 'form_post');
  assert.equal(url.searchParams.get('request'), 'eyJhbGciOiJub25lIn0.e30.');

  const res = await fetchManual(url);
  const html = await res.text();
  assert.equal(res.status, 200, `form_post error page: ${html.slice(0, 500)}`);
  assert.equal(res.headers.get('location'), null, 'a form_post answer is not a redirect');
  assert.match(res.headers.get('content-type') ?? '', /^text\/html/);
  assert.equal(res.headers.get('cache-control'), 'no-store');
  const page = parseFormPost(html);
  assert.equal(page.method?.toLowerCase(), 'post');
  assert.equal(page.action, redirectUri, 'the form posts to the redirect URI of the request');
  assert.equal(page.fields.error, 'invalid_request_object');
  assert.equal(page.fields.state, state);
  assert.equal(page.fields.iss, server.issuer, 'RFC 9207 iss in the form');
  assert.equal(page.fields.code, undefined, 'no code with an error');
  assert.match(html, /<script[^>]*>[^<]*submit\(\)/, 'the page submits itself');

  // What the browser posts to the redirect URI, handed to openid-client as the callback.
  const callback = (fields = page.fields) => new Request(page.action, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(fields),
  });
  const checks = { pkceCodeVerifier: verifier, expectedState: state, expectedNonce: nonce };
  await assert.rejects(client.authorizationCodeGrant(config, callback(), checks), (e) => {
    assert.ok(e instanceof client.AuthorizationResponseError, `${e.name} (${e.code}): ${e.message}`);
    assert.equal(e.code, 'OAUTH_AUTHORIZATION_RESPONSE_ERROR');
    assert.equal(e.error, 'invalid_request_object');
    assert.equal(e.error_description, page.fields.error_description);
    // The parameters openid-client read from the POST body (after checking state and iss).
    assert.equal(e.cause.get('state'), state);
    assert.equal(e.cause.get('iss'), server.issuer);
    return true;
  });
  // state and iss are checked before the error is believed: a response for
  // another request, or from another issuer, is refused as invalid instead.
  await assert.rejects(client.authorizationCodeGrant(config, callback(), { ...checks, expectedState: client.randomState() }), (e) => {
    assert.equal(e.code, 'OAUTH_INVALID_RESPONSE', e.message);
    assert.match(e.cause.message, /"state"/);
    return true;
  });
  await assert.rejects(client.authorizationCodeGrant(config, callback({ ...page.fields, iss: 'http://127.0.0.1:1/other' }), checks), (e) => {
    assert.equal(e.code, 'OAUTH_INVALID_RESPONSE', e.message);
    assert.match(e.cause.message, /"iss"/);
    return true;
  });
  assert.deepEqual(calls, [], 'openid-client made no token request for an error response');

  // The same request without response_mode: the default for code, a 302 with the error in the query.
  const redirected = await fetchManual(await authorizationUrl({}));
  assert.equal(redirected.status, 302);
  const to = new URL(redirected.headers.get('location'));
  assert.equal(`${to.origin}${to.pathname}`, redirectUri);
  assert.equal(to.searchParams.get('error'), 'invalid_request_object');
  assert.equal(to.searchParams.get('state'), state);
  assert.equal(to.searchParams.get('iss'), server.issuer);
  await assert.rejects(client.authorizationCodeGrant(config, to, checks), (e) => {
    assert.ok(e instanceof client.AuthorizationResponseError, `${e.name} (${e.code}): ${e.message}`);
    assert.equal(e.error, 'invalid_request_object');
    return true;
  });
  assert.deepEqual(calls, []);
});

test('the claims parameter (OIDC Core §5.5): name as essential at userinfo, email in the id_token, and nothing unasked', async () => {
  assert.equal(publicConfig.serverMetadata().claims_parameter_supported, true);
  const claims = JSON.stringify({ userinfo: { name: { essential: true } }, id_token: { email: null, acr: { values: ['sign-up-or-in'] } } });
  const { tokens, email } = await codeFlow(publicConfig, { scope: 'openid', redirectUri: CLIENTS.public.redirect, extra: { claims } });
  const idt = tokens.claims();
  assert.equal(idt.email, email, 'asked for in the id_token');
  assert.equal(idt.acr, undefined, 'a voluntary acr is only a wish, and sign-up-or-in verified nothing');
  assert.equal(idt.name, undefined, 'asked for at userinfo only');
  const info = await client.fetchUserInfo(publicConfig, tokens.access_token, idt.sub);
  assert.deepEqual(Object.keys(info).sort(), ['name', 'sub'], JSON.stringify(info));
  assert.equal(info.name, email);

  // Nothing asked (scope openid alone): no claim about the user anywhere.
  const plain = await codeFlow(publicConfig, { scope: 'openid', redirectUri: CLIENTS.public.redirect });
  for (const c of ['email', 'email_verified', 'name', 'preferred_username', 'updated_at']) assert.equal(plain.tokens.claims()[c], undefined, c);
  assert.deepEqual(Object.keys(await client.fetchUserInfo(publicConfig, plain.tokens.access_token, plain.tokens.claims().sub)), ['sub']);

  // A malformed claims parameter comes back to the client as invalid_request.
  await assert.rejects(codeFlow(publicConfig, { scope: 'openid', redirectUri: CLIENTS.public.redirect, extra: { claims: '{"userinfo":[]}' } }), (e) => e.error === 'invalid_request' && /claims\.userinfo/.test(e.error_description));
});

test('request objects (OIDC Core §6.1, RFC 9101): openid-client signs the parameters with the partner key (JAR)', async () => {
  const key = await jose.importJWK(partnerJwk(), 'ES256');
  const config = await client.discovery(new URL(server.issuer), CLIENTS.partner.id, undefined, client.PrivateKeyJwt({ key, kid: CLIENTS.partner.kid }), insecure);
  assert.equal(config.serverMetadata().request_parameter_supported, true);
  assert.ok(config.serverMetadata().request_object_signing_alg_values_supported.includes('ES256'));
  const codeVerifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const nonce = client.randomNonce();
  const parameters = {
    redirect_uri: CLIENTS.partner.redirect,
    scope: 'openid',
    code_challenge: await client.calculatePKCECodeChallenge(codeVerifier),
    code_challenge_method: 'S256',
    state,
    nonce,
    claims: JSON.stringify({ id_token: { email: null } }),
  };
  const url = await client.buildAuthorizationUrlWithJAR(config, parameters, { key, kid: CLIENTS.partner.kid });
  assert.deepEqual([...url.searchParams.keys()].sort(), ['client_id', 'request'], 'everything else is inside the signed object');
  const email = uniqueEmail('jar');
  const result = await login(url, email);
  assert.equal(result.params.get('state'), state);
  const tokens = await client.authorizationCodeGrant(config, result.url, { pkceCodeVerifier: codeVerifier, expectedState: state, expectedNonce: nonce });
  assert.equal(tokens.claims().email, email, "the object's claims parameter was honoured");

  // Signed by a key the partner did not register: the query has no
  // redirect_uri to answer at, so the browser gets the error page.
  const { privateKey } = await jose.generateKeyPair('ES256');
  const forged = await client.buildAuthorizationUrlWithJAR(config, parameters, { key: privateKey, kid: CLIENTS.partner.kid });
  const res = await fetch(forged, { redirect: 'manual' });
  assert.equal(res.status, 400);
  assert.equal(res.headers.get('location'), null);
});
