// Social login through custom OAuth providers, end to end: an application
// signs in at `idflow serve`, whose flow's `oauth` step sends the browser to
// a real upstream OP nobody here wrote (the npm `oidc-provider`), back to
// idflow's /v1/oauth/callback, through custom claims, and to the
// application with a code. Three upstream clients, one per client
// authentication method (client_secret_basic, client_secret_post and
// private_key_jwt registered with idflow's JWKS URL), carry the settings
// under test: attribute mapping, update-on-login on and off, each
// email-handling mode, merging by verified email, and provider tokens kept
// sealed in the database and refreshed through `idflow provider-token`.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { promisify } from 'node:util';
import * as jose from 'jose';
import Provider from 'oidc-provider';
import {
  CookieJar, IDFLOW_BIN, browserSkip, fetchManual, freePort, launchChromium, makeTempDir, pkcePair, removeTempDir, startCallbackServer, startServer, stopServer,
} from '../lib/helpers.js';

const run = promisify(execFile);
const SECRET = 'upstream-secret-0123456789abcdef';
const APP_CB = 'http://127.0.0.1/app/cb';
const API_AFTER = 'http://127.0.0.1/api/after';

// The upstream's users; tests edit them between logins.
const accounts = {
  alice: { email: 'alice@example.com', email_verified: true, name: 'Alice Liddell', given_name: 'Alice' },
  bob: { email: 'bob@example.com', email_verified: false, name: 'Bob One' },
  carol: { email: 'carol@example.com', email_verified: true, name: 'Carol' },
  dave: { email: 'dave@example.com', email_verified: false, name: 'Dave' },
};
let signingIn = 'alice';
let lastCallback;

let upstream;
let customPage;
let idflow;
let tempDir;
let configFile;
let JWKS;
let metadata;

async function startUpstream(idflowBase) {
  const server = http.createServer();
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const issuer = `http://127.0.0.1:${server.address().port}`;
  const { privateKey } = await jose.generateKeyPair('RS256', { extractable: true });
  const jwk = { ...(await jose.exportJWK(privateKey)), kid: 'upstream-1', alg: 'RS256', use: 'sig' };
  const redirect = `${idflowBase}/v1/oauth/callback`;
  const common = { redirect_uris: [redirect], grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'] };
  const provider = new Provider(issuer, {
    clients: [
      { client_id: 'idf-basic', client_secret: SECRET, token_endpoint_auth_method: 'client_secret_basic', ...common },
      { client_id: 'idf-post', client_secret: SECRET, token_endpoint_auth_method: 'client_secret_post', ...common },
      {
        client_id: 'idf-jwt', token_endpoint_auth_method: 'private_key_jwt', token_endpoint_auth_signing_alg: 'RS256',
        jwks_uri: `${idflowBase}/social/.well-known/jwks.json`, ...common,
      },
    ],
    jwks: { keys: [jwk] },
    cookies: { keys: ['upstream-cookie-key-0123456789'] },
    features: { devInteractions: { enabled: false }, revocation: { enabled: true } },
    claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name', 'given_name', 'family_name'] },
    scopes: ['openid', 'email', 'profile', 'offline_access'],
    // Short-lived access tokens, so idflow has to refresh the kept ones.
    ttl: { AccessToken: 3 },
    issueRefreshToken: async (ctx, client) => client.grantTypeAllowed('refresh_token'),
    findAccount: async (ctx, id) => ({ accountId: id, claims: async () => ({ sub: id, ...accounts[id] }) }),
    interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
    // oidc-provider refuses to fetch from special-use addresses (its SSRF
    // guard); idflow's JWKS is on 127.0.0.1 here, so let loopback through.
    fetch: (url, options) => {
      const { dispatcher, ...rest } = options;
      return globalThis.fetch(url, new URL(url).hostname === '127.0.0.1' ? rest : options);
    },
  });
  const callback = provider.callback();
  server.on('request', async (req, res) => {
    if (req.url.startsWith('/interaction/')) {
      // The upstream's "login page": sign `signingIn` in and grant the scopes.
      try {
        const details = await provider.interactionDetails(req, res);
        const grant = new provider.Grant({ accountId: signingIn, clientId: details.params.client_id });
        grant.addOIDCScope(details.params.scope);
        const grantId = await grant.save();
        await provider.interactionFinished(req, res, { login: { accountId: signingIn }, consent: { grantId } }, { mergeWithLastSubmission: false });
      } catch (e) {
        res.statusCode = 500;
        res.end(String(e));
      }
      return;
    }
    callback(req, res);
  });
  return { server, issuer };
}

// The custom page's site: another site than idflow's (Chromium maps this
// name to 127.0.0.1), so idflow's cookies never reach the page's requests.
const PAGE_HOST = 'login.app.test';

/**
 * A team's own login page (the `custom` application's flowHostingUrl) on
 * its own site. Its backend forwards /api/flow/start to idflow's flow API
 * server-side (idflow's flow API sends no CORS headers), with no cookies:
 * the page proves the execution is its own with `executionSecret` alone,
 * kept in sessionStorage. `secrets` records what idflow answered;
 * `onResume`, when set, runs once before a resume is forwarded.
 */
async function startCustomPage(idflowBase) {
  const site = { secrets: new Map(), onResume: null };
  const script = `
    const q = new URLSearchParams(location.search);
    const show = (x) => { document.getElementById('out').textContent = JSON.stringify(x); };
    async function api(body) {
      const r = await fetch('/api/flow/start', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
      return { status: r.status, json: await r.json() };
    }
    (async () => {
      let answer;
      if (q.get('request')) {
        answer = await api({ request: q.get('request') });
        if (answer.json.executionSecret) sessionStorage.setItem('idflow:' + answer.json.executionId, answer.json.executionSecret);
      } else {
        const executionId = q.get('execution');
        answer = await api({ executionId, executionSecret: sessionStorage.getItem('idflow:' + executionId) || '', resume: q.get('resume') || undefined });
      }
      show(answer);
      if (answer.json.redirect && answer.json.redirect.url) location.assign(answer.json.redirect.url);
    })().catch((e) => show({ error: String(e) }));`;
  const server = http.createServer(async (req, res) => {
    const url = new URL(req.url, 'http://x');
    if (req.method === 'GET' && url.pathname === '/local') {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
      res.end('<!doctype html><title>Sign in</title><pre id="out"></pre><script src="/local.js"></script>');
    } else if (req.method === 'GET' && url.pathname === '/local.js') {
      res.writeHead(200, { 'content-type': 'text/javascript' });
      res.end(script);
    } else if (req.method === 'POST' && url.pathname === '/api/flow/start') {
      const chunks = [];
      for await (const c of req) chunks.push(c);
      const hook = site.onResume;
      if (hook && JSON.parse(Buffer.concat(chunks)).resume) {
        site.onResume = null;
        await hook();
      }
      const upstreamRes = await fetch(`${idflowBase}/v1/flow/start`, {
        method: 'POST', headers: { 'content-type': 'application/json' }, body: Buffer.concat(chunks),
      });
      const text = await upstreamRes.text();
      try {
        const answer = JSON.parse(text);
        if (answer.executionSecret) site.secrets.set(answer.executionId, answer.executionSecret);
      } catch { /* shown to the page as it is */ }
      res.writeHead(upstreamRes.status, { 'content-type': 'application/json' });
      res.end(text);
    } else {
      res.writeHead(404).end();
    }
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return Object.assign(site, { server, origin: `http://${PAGE_HOST}:${server.address().port}` });
}

function project(upstreamIssuer, baseUrl, pageOrigin) {
  const discoveryUrl = `${upstreamIssuer}/.well-known/openid-configuration`;
  const flow = (id, provider) => ({
    id, name: `Sign in with ${provider}`, start: 'sso',
    steps: {
      sso: { type: 'oauth', provider, next: 'claims' },
      claims: {
        type: 'customClaims', next: 'done',
        claims: [
          { key: 'upstreamIss', type: 'dynamic', value: `oauth.${provider}.claims.iss` },
          { key: 'loginIds', type: 'dynamic', value: 'user.loginIds' },
          { key: 'upstreamName', type: 'dynamic', value: 'user.customAttributes.upstreamName' },
          { key: 'userName', type: 'dynamic', value: 'user.name' },
        ],
      },
      done: { type: 'end' },
    },
  });
  const scopes = ['openid', 'email', 'profile'];
  return {
    projectId: 'social',
    baseUrl,
    // Where social login by API may land (origins approve every path).
    redirectUrls: [API_AFTER, 'http://127.0.0.1'],
    flows: [flow('via-basic', 'up-basic'), flow('via-post', 'up-post'), flow('via-jwt', 'up-jwt')],
    applications: [
      { clientId: 'app', public: true, redirectUris: [APP_CB], flow: 'via-basic', flows: ['via-basic', 'via-post', 'via-jwt'] },
      // A team's own login page on another site, driving the flow API.
      { clientId: 'custom', public: true, redirectUris: [APP_CB], flow: 'via-basic', flowHostingUrl: `${pageOrigin}/local` },
    ],
    oauthProviders: [
      {
        name: 'up-basic', clientId: 'idf-basic', clientSecret: SECRET, discoveryUrl, scopes, triggerMethod: 'flowsOnly',
        emailHandling: 'promoteIfVerified', manageProviderTokens: true,
        attributeMapping: { customAttributes: { upstreamName: 'name' } },
      },
      {
        name: 'up-post', clientId: 'idf-post', clientSecret: SECRET, clientAuth: 'client_secret_post', discoveryUrl, scopes,
        emailHandling: 'promoteAlways', updateUserOnLogin: false,
      },
      {
        name: 'up-jwt', clientId: 'idf-jwt', clientAuth: 'private_key_jwt', discoveryUrl, scopes,
        emailHandling: 'attributeOnly', mergeUsersByEmail: true,
      },
    ],
  };
}

before(async () => {
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  upstream = await startUpstream(base);
  customPage = await startCustomPage(base);
  tempDir = makeTempDir('idflow-social-');
  configFile = path.join(tempDir, 'social.json');
  fs.writeFileSync(configFile, JSON.stringify(project(upstream.issuer, base, customPage.origin), null, 2));
  idflow = await startServer({ db: path.join(tempDir, 'idflow.db'), port, config: configFile, projectId: 'social' });
  metadata = await (await fetch(`${idflow.issuer}/.well-known/openid-configuration`)).json();
  JWKS = jose.createRemoteJWKSet(new URL(metadata.jwks_uri));
});

after(async () => {
  await stopServer(idflow);
  upstream?.server.close();
  customPage?.server.close();
  removeTempDir(tempDir);
});

const b64u = (buf) => Buffer.from(buf).toString('base64url');

/** An authorization request at idflow for the app, with PKCE, state and nonce. */
function authorizationRequest(flow, redirectUri = APP_CB, clientId = 'app') {
  const verifier = b64u(randomBytes(32));
  const challenge = b64u(createHash('sha256').update(verifier).digest());
  const url = new URL(metadata.authorization_endpoint);
  const state = b64u(randomBytes(12));
  const nonce = b64u(randomBytes(12));
  url.search = new URLSearchParams({
    response_type: 'code', client_id: clientId, redirect_uri: redirectUri, scope: 'openid email profile descope.custom_claims',
    state, nonce, code_challenge: challenge, code_challenge_method: 'S256', flow,
  }).toString();
  return { url, verifier, state, nonce, redirectUri, clientId };
}

/** Redeems the app's code at idflow; resolves to the verified id_token claims over userinfo's. */
async function redeem(request, code) {
  const tokenRes = await fetch(metadata.token_endpoint, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: request.redirectUri, client_id: request.clientId, code_verifier: request.verifier }),
  });
  const tokens = await tokenRes.json();
  assert.equal(tokenRes.status, 200, JSON.stringify(tokens));
  const { payload } = await jose.jwtVerify(tokens.id_token, JWKS, { issuer: idflow.issuer, audience: request.clientId });
  assert.equal(payload.nonce, request.nonce);
  assert.equal(payload.upstreamIss, upstream.issuer, 'custom claims see the upstream claims');
  // The email and profile scopes' claims are at userinfo (OIDC Core §5.4).
  assert.equal(payload.email, undefined);
  const info = await (await fetch(metadata.userinfo_endpoint, { headers: { authorization: `Bearer ${tokens.access_token}` } })).json();
  assert.equal(info.sub, payload.sub);
  return { ...info, ...payload };
}

/**
 * The whole round trip for `account` through flow `flow`, browserless:
 * authorize at idflow → flow start (the oauth step's redirect) → the
 * upstream (with its own cookies) → idflow's callback → the application's
 * redirect URI with a code → idflow's token endpoint. Resolves to the
 * verified id_token claims.
 */
async function socialLogin(flow, account) {
  signingIn = account;
  const authz = authorizationRequest(flow);
  const jar = new CookieJar();
  const r = await fetchManual(authz.url, jar);
  assert.equal(r.status, 302, await r.text());
  const request = new URL(r.headers.get('location'), idflow.url).searchParams.get('request');
  assert.ok(request, 'authorize sends the browser to the hosted page');
  const startRes = await fetchManual(`${idflow.url}/v1/flow/start`, jar, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ request }),
  });
  const started = await startRes.json();
  assert.equal(started.status, 'waiting', JSON.stringify(started));
  let url = started.redirect.url;
  assert.ok(url.startsWith(`${upstream.issuer}/`), `the oauth step redirects to the upstream: ${url}`);
  // The browser at the upstream, then back at idflow.
  url = await throughUpstream(url, upstream.issuer);
  assert.ok(url.startsWith(`${idflow.url}/v1/oauth/callback?`), url);
  lastCallback = url;
  const back = await fetchManual(url, jar);
  assert.equal(back.status, 302, await back.text());
  let landed = new URL(back.headers.get('location'));
  if (landed.searchParams.get('execution')) {
    // Back at the hosted page: the oauth step failed; show why.
    const state = await fetchManual(`${idflow.url}/v1/flow/start`, jar, {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ executionId: landed.searchParams.get('execution'), executionSecret: started.executionSecret }),
    });
    assert.fail(`the flow did not complete: ${await state.text()}`);
  }
  // The completion URL delivers the answer to this browser (its idflow_browser cookie) only.
  assert.equal(`${landed.origin}${landed.pathname}`, `${idflow.url}/oauth2/v1/authorize/complete`, landed.href);
  assert.equal((await fetchManual(landed)).status, 403, 'another browser gets nothing');
  const delivered = await fetchManual(landed, jar);
  assert.equal(delivered.status, 302, await delivered.text());
  landed = new URL(delivered.headers.get('location'));
  assert.equal(`${landed.origin}${landed.pathname}`, APP_CB, landed.href);
  assert.equal(landed.searchParams.get('state'), authz.state);
  const code = landed.searchParams.get('code');
  assert.ok(code, landed.href);
  return redeem(authz, code);
}

/** A fresh browser at the upstream: follows its redirects until they leave it. */
async function throughUpstream(url, issuer) {
  const upJar = new CookieJar();
  for (let i = 0; i < 10 && url.startsWith(issuer); i++) {
    const res = await fetchManual(url, upJar);
    const location = res.headers.get('location');
    assert.ok(location, `upstream ${res.status}: ${await res.text()}`);
    url = new URL(location, url).href;
  }
  return url;
}

test('client_secret_basic upstream: mapping, verified email promoted, update on login, provider tokens sealed and refreshed', async () => {
  const first = await socialLogin('via-basic', 'alice');
  assert.equal(first.email, 'alice@example.com');
  assert.equal(first.upstreamName, 'Alice Liddell', 'customAttributes from any claim path');
  assert.deepEqual(first.loginIds, ['up-basic:alice', 'alice@example.com'], 'a verified email becomes a login id');
  // The upstream changes the name; updateUserOnLogin (default on) applies it.
  accounts.alice.name = 'Alice Pleasance';
  const second = await socialLogin('via-basic', 'alice');
  assert.equal(second.sub, first.sub, 'the same upstream user is the same idflow user');
  assert.equal(second.userName, 'Alice Pleasance');
  // manageProviderTokens: the upstream's tokens are kept, sealed.
  const cli = ['provider-token', '--config', configFile, '--db', idflow.db, '--user', first.sub, '--provider', 'up-basic'];
  const kept = JSON.parse((await run(IDFLOW_BIN, cli)).stdout);
  assert.equal(kept.provider, 'up-basic');
  assert.ok(kept.accessToken.length > 10);
  const info = await fetch(`${upstream.issuer}/me`, { headers: { authorization: `Bearer ${kept.accessToken}` } });
  assert.equal(info.status, 200, 'the kept token works at the upstream');
  for (const file of [idflow.db, `${idflow.db}-wal`]) {
    if (!fs.existsSync(file)) continue;
    assert.equal(fs.readFileSync(file).includes(Buffer.from(kept.accessToken)), false, `${path.basename(file)} holds no token text`);
  }
  // The upstream's access tokens live 3 s: the next read refreshes.
  await new Promise((resolve) => setTimeout(resolve, 3500));
  const fresh = JSON.parse((await run(IDFLOW_BIN, cli)).stdout);
  assert.notEqual(fresh.accessToken, kept.accessToken);
  assert.ok(fresh.expiresAt > Date.now() / 1000);
  const again = await fetch(`${upstream.issuer}/me`, { headers: { authorization: `Bearer ${fresh.accessToken}` } });
  assert.equal(again.status, 200, 'the refreshed token works at the upstream');
  // An unverified email is not promoted under promoteIfVerified.
  const dave = await socialLogin('via-basic', 'dave');
  assert.deepEqual(dave.loginIds, ['up-basic:dave']);
});

test('client_secret_post upstream: promoteAlways, and updateUserOnLogin off keeps the first mapping', async () => {
  const first = await socialLogin('via-post', 'bob');
  assert.deepEqual(first.loginIds, ['up-post:bob', 'bob@example.com'], 'promoteAlways promotes an unverified email');
  assert.equal(first.userName, 'Bob One');
  accounts.bob.name = 'Bob Two';
  const second = await socialLogin('via-post', 'bob');
  assert.equal(second.sub, first.sub);
  assert.equal(second.userName, 'Bob One', 'the mapping applies only when the user is created');
});

test('private_key_jwt upstream (idflow JWKS registered there): attributeOnly, and merging by verified email', async () => {
  const carol = await socialLogin('via-jwt', 'carol');
  assert.deepEqual(carol.loginIds, ['up-jwt:carol'], 'attributeOnly keeps the email out of the login ids');
  assert.equal(carol.email, 'carol@example.com');
  // alice already signed in through up-basic (her verified email is a login
  // id there); through up-jwt she merges into that same user.
  const viaBasic = await socialLogin('via-basic', 'alice');
  const merged = await socialLogin('via-jwt', 'alice');
  assert.equal(merged.sub, viaBasic.sub, 'merged into the user who owns the verified email');
  assert.ok(merged.loginIds.includes('up-jwt:alice') && merged.loginIds.includes('up-basic:alice'), JSON.stringify(merged.loginIds));
});

test('a replayed callback fails and provisions nothing twice; flowsOnly refuses the API path', async () => {
  const carol = await socialLogin('via-jwt', 'carol');
  const replay = await fetch(lastCallback, { redirect: 'manual' });
  assert.equal(replay.status, 400, 'the second callback finds nothing to resume');
  assert.equal(replay.headers.get('location'), null, 'and sends nobody on with a code');
  assert.deepEqual((await socialLogin('via-jwt', 'carol')).loginIds, carol.loginIds, 'still one user');
  const { challenge } = pkcePair();
  const r = await apiAuthorize({ provider: 'up-basic', redirectUrl: 'http://127.0.0.1/after', codeChallenge: challenge });
  assert.equal(r.status, 403);
  assert.equal((await r.json()).error.code, 'access_denied');
  const unknown = await fetch(`${idflow.url}/v1/oauth/callback?code=forged&state=forged`, { redirect: 'manual' });
  assert.equal(unknown.status, 400);
});

function apiAuthorize(body) {
  return fetch(`${idflow.url}/v1/auth/oauth/authorize`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
}

function apiExchange(body) {
  return fetch(`${idflow.url}/v1/auth/oauth/exchange`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
}

/** Social login by API for `account` through `provider`: the code idflow sends to `redirectUrl`. */
async function apiLogin(provider, account, challenge, redirectUrl = API_AFTER) {
  signingIn = account;
  const r = await apiAuthorize({ provider, redirectUrl, codeChallenge: challenge, codeChallengeMethod: 'S256' });
  const started = await r.json();
  assert.equal(r.status, 200, JSON.stringify(started));
  let url = started.url;
  assert.ok(url.startsWith(`${upstream.issuer}/`), url);
  url = await throughUpstream(url, upstream.issuer);
  assert.ok(url.startsWith(`${idflow.url}/v1/oauth/callback?`), url);
  const back = await fetch(url, { redirect: 'manual' });
  assert.equal(back.status, 302, await back.text());
  const landed = new URL(back.headers.get('location'));
  assert.equal(`${landed.origin}${landed.pathname}`, redirectUrl, landed.href);
  const code = landed.searchParams.get('code');
  assert.ok(code, landed.href);
  return code;
}

test('social login by API: PKCE binds the code to whoever started it; only approved redirect URLs', async () => {
  const { verifier, challenge } = pkcePair();
  const code = await apiLogin('up-post', 'bob', challenge);
  // The code without its verifier gives nothing.
  const missing = await apiExchange({ code });
  assert.equal(missing.status, 400);
  assert.equal((await missing.json()).error.code, 'invalid_request');
  const ok = await apiExchange({ code, codeVerifier: verifier });
  const info = await ok.json();
  assert.equal(ok.status, 200, JSON.stringify(info));
  assert.ok(info.sessionJwt && info.user.loginIds.includes('up-post:bob'), JSON.stringify(info.user));
  const replay = await apiExchange({ code, codeVerifier: verifier });
  assert.equal((await replay.json()).error.code, 'invalid_grant', 'one time');
  // A stolen code with another verifier gets nothing, and is spent.
  const other = pkcePair();
  const stolen = await apiLogin('up-post', 'bob', other.challenge, 'http://127.0.0.1/elsewhere');
  assert.equal((await (await apiExchange({ code: stolen, codeVerifier: verifier })).json()).error.code, 'invalid_grant');
  assert.equal((await (await apiExchange({ code: stolen, codeVerifier: other.verifier })).json()).error.code, 'invalid_grant');
  // Unapproved redirect URLs, a missing or malformed challenge, plain: refused.
  for (const body of [
    { provider: 'up-post', redirectUrl: 'https://attacker.example/after', codeChallenge: challenge },
    { provider: 'up-post', redirectUrl: API_AFTER },
    { provider: 'up-post', redirectUrl: API_AFTER, codeChallenge: 'short' },
    { provider: 'up-post', redirectUrl: API_AFTER, codeChallenge: challenge, codeChallengeMethod: 'plain' },
  ]) {
    const res = await apiAuthorize(body);
    const err = await res.json();
    assert.equal(res.status, 400, JSON.stringify(body));
    assert.equal(err.error.code, 'invalid_request');
    if (body.redirectUrl !== API_AFTER) assert.match(err.error.message, /redirectUrls/);
  }
});

const noBrowser = browserSkip();

test('the hosted login page follows the oauth step to the upstream and back, in Chromium', { skip: noBrowser, timeout: 60000 }, async (t) => {
  const browser = await launchChromium();
  t.after(() => browser.close());
  const cb = await startCallbackServer('/app/cb');
  t.after(() => cb.close());
  signingIn = 'carol';
  const authz = authorizationRequest('via-basic', cb.url);
  const page = await (await browser.newContext()).newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  const seen = cb.requests.length;
  const hosted = page.waitForResponse((r) => new URL(r.url()).pathname === '/login/social');
  await page.goto(authz.url.href);
  assert.equal((await hosted).status(), 200, 'the hosted page loaded first');
  // Its script starts the flow, meets the oauth step and follows redirect.url.
  await page.waitForURL((u) => u.href.startsWith(`${cb.url}?`), { timeout: 20000 });
  const landed = await cb.next(seen);
  assert.equal(landed.url.searchParams.get('state'), authz.state);
  const claims = await redeem(authz, landed.url.searchParams.get('code'));
  assert.equal(claims.email, 'carol@example.com');
  assert.deepEqual(errors, []);
});

test('a custom flowHostingUrl page on another site finishes an oauth step with resume + executionSecret, in Chromium', { skip: noBrowser, timeout: 60000 }, async (t) => {
  const browser = await launchChromium([`--host-resolver-rules=MAP ${PAGE_HOST} 127.0.0.1`]);
  t.after(() => browser.close());
  const cb = await startCallbackServer('/app/cb');
  t.after(() => cb.close());
  signingIn = 'dave';
  const authz = authorizationRequest('via-basic', cb.url, 'custom');
  const page = await (await browser.newContext()).newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  const visited = [];
  // Every URL the tab went to, redirects included.
  page.on('request', (r) => { if (r.isNavigationRequest() && r.frame() === page.mainFrame()) visited.push(r.url()); });

  // The upstream's answer comes back to idflow's callback in a browser that
  // holds no proof of the execution (the page's requests carried no idflow
  // cookie), so idflow keeps it under a one-time `resume` id and sends the
  // browser to the owner's page. Before that page's resume reaches idflow,
  // another browser (no secret in its sessionStorage) opens the same URL.
  let resumeUrl;
  let intruder;
  customPage.onResume = async () => {
    resumeUrl = new URL(visited.findLast((u) => u.startsWith(`${customPage.origin}/local?`)));
    const other = await (await browser.newContext()).newPage();
    await other.goto(resumeUrl.href);
    await other.waitForFunction(() => document.getElementById('out')?.textContent, null, { timeout: 10000 });
    intruder = JSON.parse(await other.textContent('#out'));
    await other.context().close();
  };
  t.after(() => { customPage.onResume = null; });

  const seen = cb.requests.length;
  await page.goto(authz.url.href);
  await page.waitForURL((u) => u.href.startsWith(`${cb.url}?`), { timeout: 20000 });
  assert.ok(visited.some((u) => u.startsWith(`${customPage.origin}/local?request=`)), `authorize sent the browser to the custom page: ${visited}`);
  assert.ok(visited.some((u) => u.startsWith(`${upstream.issuer}/`)), `the oauth step went to the upstream: ${visited}`);
  assert.ok(resumeUrl, `the callback sent the browser back to the custom page: ${visited}`);
  const executionId = resumeUrl.searchParams.get('execution');
  const resume = resumeUrl.searchParams.get('resume');
  assert.ok(executionId && resume, resumeUrl.href);
  assert.equal(intruder.status, 403, JSON.stringify(intruder));
  assert.equal(intruder.json.error.code, 'access_denied');

  // The page resumed with its secret, and the completion URL delivered the
  // code to this browser, whose idflow_browser cookie bound the request.
  const landed = await cb.next(seen);
  assert.equal(landed.url.searchParams.get('state'), authz.state);
  assert.ok(visited.some((u) => u.startsWith(`${idflow.url}/oauth2/v1/authorize/complete?`)), `${visited}`);
  const claims = await redeem(authz, landed.url.searchParams.get('code'));
  assert.equal(claims.email, 'dave@example.com');
  assert.equal(claims.acr, 'via-basic');
  assert.deepEqual(errors, []);

  // The resume id was good once: with the right secret it now resumes nothing.
  const secret = customPage.secrets.get(executionId);
  assert.ok(secret, 'the custom page received an executionSecret');
  const again = await fetchManual(`${idflow.url}/v1/flow/start`, undefined, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ executionId, executionSecret: secret, resume }),
  });
  const againBody = await again.json();
  assert.notEqual(again.status, 200, JSON.stringify(againBody));
  assert.equal(againBody.status, 'failed', JSON.stringify(againBody));
});
