// Shared helpers for the end-to-end tests: start/stop `idflow serve`, a tiny
// cookie jar, a browserless login through the flow API, and a loopback
// callback server for the browser test. No test lives here.

import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import assert from 'node:assert/strict';
import { before, after } from 'node:test';
import * as oidcClient from 'openid-client';

const here = path.dirname(fileURLToPath(import.meta.url));
export const REPO_ROOT = path.resolve(here, '../../../..');
export const E2E_DIR = path.join(REPO_ROOT, 'tests/e2e');
export const NODE_DIR = path.join(E2E_DIR, 'node');
export const PROJECT_FILE = path.join(E2E_DIR, 'project.json');
export const PROJECT_ID = 'e2e';

/** The idflow binary: $IDFLOW_BIN (relative paths resolve against the repo root). */
export const IDFLOW_BIN = path.resolve(
  REPO_ROOT,
  process.env.IDFLOW_BIN || 'target/x86_64-unknown-linux-gnu/debug/idflow',
);

// Applications and secrets from tests/e2e/project.json.
export const CLIENTS = {
  public: { id: 'e2e', redirect: 'http://127.0.0.1/callback', postLogout: 'http://127.0.0.1/logged-out' },
  web: { id: 'web', secret: 'web-secret-0123456789abcdef', redirect: 'http://127.0.0.1/cb', postLogout: 'http://127.0.0.1/bye' },
  webPost: { id: 'web-post', secret: 'post-secret-0123456789abcdef', redirect: 'http://127.0.0.1/cb' },
  partner: { id: 'partner', kid: 'partner-key-1', redirect: 'http://127.0.0.1/partner/cb' },
  implicit: { id: 'implicit', redirect: 'http://127.0.0.1/implicit/cb' },
  accessKey: { id: 'K-reporting', secret: 'reporting-secret-0123456789' },
  // For a downstream idflow that signs users in here (its custom OAuth provider).
  socialRp: { id: 'social-rp', secret: 'social-rp-secret-0123456789' },
};

export function partnerJwk() {
  return JSON.parse(fs.readFileSync(path.join(E2E_DIR, 'partner-key.json'), 'utf8'));
}

/** A fresh temporary directory, removed by `removeTempDir`. */
export function makeTempDir(prefix = 'idflow-e2e-') {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

export function removeTempDir(dir) {
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
}

/** A port that was free a moment ago (listen on 0, read it, close). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

const running = new Set();
process.on('exit', () => {
  // Never leave a server behind if a test file dies early.
  for (const child of running) {
    try {
      child.kill('SIGKILL');
    } catch {
      // already gone
    }
  }
});

function spawnOnce(db, port, config = PROJECT_FILE, projectId = PROJECT_ID, host = '127.0.0.1', baseUrl = undefined) {
  // `host` names the server in its base URL (passkeys need a domain name:
  // localhost); it always listens on 127.0.0.1. `config` null is the demo
  // project, which names itself localhost.
  // `baseUrl` gives several servers one issuer (as behind a load balancer).
  const base = baseUrl ?? `http://${config === null ? 'localhost' : host}:${port}`;
  // An array of configs serves several projects in one process.
  const project = config === null ? [] : [...[config].flat().flatMap((c) => ['--config', c]), '--base-url', base];
  const args = ['serve', ...project, '--db', db, '--addr', `127.0.0.1:${port}`];
  if (config === null) projectId = 'local';
  const child = spawn(IDFLOW_BIN, args, { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NO_COLOR: '1' } });
  running.add(child);
  const server = {
    child,
    port,
    db,
    url: base,
    loopback: `http://127.0.0.1:${port}`,
    issuer: `${base}/${projectId}`,
    stdout: '',
    stderr: '',
    exited: null,
  };
  server.exitPromise = new Promise((resolve) => {
    child.on('exit', (code, signal) => {
      running.delete(child);
      server.exited = { code, signal };
      resolve(server.exited);
    });
  });
  child.stdout.setEncoding('utf8');
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (d) => {
    server.stderr = (server.stderr + d).slice(-20000);
  });
  const listening = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`idflow serve did not start within 20 s\nstderr:\n${server.stderr}`)), 20000);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(new Error(`cannot run ${IDFLOW_BIN}: ${e.message} (set IDFLOW_BIN)`));
    });
    child.stdout.on('data', (d) => {
      server.stdout += d;
      if (server.stdout.includes('idflow serve: listening on')) {
        clearTimeout(timer);
        resolve();
      }
    });
    server.exitPromise.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(Object.assign(new Error(`idflow serve exited (code ${code}, signal ${signal}) before listening\nstdout:\n${server.stdout}\nstderr:\n${server.stderr}`), { exitedEarly: true }));
    });
  });
  return { server, listening };
}

/**
 * Starts `idflow serve` on the e2e project. `db` defaults to a new temporary
 * directory's idflow.db; `port` defaults to a free port (and is retried on a
 * lost race). `config` and `projectId` default to the e2e project (`config:
 * null` runs the demo project, as `idflow serve` alone does). Resolves
 * once /health answers {"status":"ok"}.
 */
export async function startServer({ db, port, config, projectId, host, baseUrl } = {}) {
  let tempDir = null;
  if (!db) {
    tempDir = makeTempDir();
    db = path.join(tempDir, 'idflow.db');
  }
  const fixedPort = port !== undefined;
  for (let attempt = 0; ; attempt++) {
    const p = fixedPort ? port : await freePort();
    const { server, listening } = spawnOnce(db, p, config, projectId, host, baseUrl);
    try {
      await listening;
    } catch (e) {
      // Another process may have taken the port between freePort() and bind.
      if (e.exitedEarly && !fixedPort && attempt < 3 && /cannot listen/.test(server.stderr + server.stdout + e.message)) continue;
      if (!server.exited) {
        server.child.kill('SIGKILL');
        await server.exitPromise;
      }
      throw e;
    }
    server.tempDir = tempDir;
    const res = await fetch(`${server.loopback}/health`);
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { status: 'ok' });
    return server;
  }
}

/**
 * Starts `idflow serve` on a project given as an object (written as JSON to
 * a new temporary directory, removed by `stopServer`); `baseUrl` is
 * overridden by the server's own loopback URL.
 */
export async function startServerWithProject(doc, { host } = {}) {
  const dir = makeTempDir('idflow-e2e-project-');
  try {
    const config = path.join(dir, 'project.json');
    fs.writeFileSync(config, JSON.stringify(doc, null, 2));
    const server = await startServer({ db: path.join(dir, 'idflow.db'), config, projectId: doc.projectId, host });
    server.tempDir = dir;
    return server;
  } catch (e) {
    removeTempDir(dir);
    throw e;
  }
}

/**
 * Stops a server with SIGTERM (graceful) and resolves to its exit status.
 * Removes the temporary directory startServer made unless `keepDb`.
 */
export async function stopServer(server, { keepDb = false } = {}) {
  if (!server) return null;
  if (!server.exited) {
    server.child.kill('SIGTERM');
    let timer;
    const timeout = new Promise((resolve) => {
      timer = setTimeout(() => resolve('timeout'), 10000);
    });
    const outcome = await Promise.race([server.exitPromise, timeout]);
    clearTimeout(timer);
    if (outcome === 'timeout') {
      server.child.kill('SIGKILL');
      await server.exitPromise;
      throw new Error('idflow serve did not stop within 10 s of SIGTERM');
    }
  }
  if (!keepDb) removeTempDir(server.tempDir);
  return server.exited;
}

/** A tiny cookie jar: one origin, name → value, honouring Max-Age=0. */
export class CookieJar {
  constructor() {
    this.cookies = new Map();
  }

  /** Records the Set-Cookie headers of a fetch Response. */
  store(response) {
    for (const line of response.headers.getSetCookie()) {
      const [pair, ...attrs] = line.split(';');
      const i = pair.indexOf('=');
      const name = pair.slice(0, i).trim();
      const value = pair.slice(i + 1).trim();
      const maxAge = attrs.map((a) => a.trim().split('=')).find(([k]) => k.toLowerCase() === 'max-age');
      if (value === '' || (maxAge && Number(maxAge[1]) <= 0)) this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
    return response;
  }

  get(name) {
    return this.cookies.get(name);
  }

  set(name, value) {
    this.cookies.set(name, value);
  }

  /** The Cookie header value, or undefined when empty. */
  header() {
    if (this.cookies.size === 0) return undefined;
    return [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  }

  /** fetch headers with the jar's cookies added. */
  headers(extra = {}) {
    const h = { ...extra };
    const c = this.header();
    if (c) h.cookie = c;
    return h;
  }
}

/** fetch without following redirects, sending and recording cookies. */
export async function fetchManual(url, jar, init = {}) {
  const res = await fetch(url, { ...init, redirect: 'manual', headers: jar ? jar.headers(init.headers) : init.headers });
  if (jar) jar.store(res);
  return res;
}

/** POST of a JSON body (sending and recording the jar's cookies): { res, json }. */
export async function postJson(url, body, jar) {
  const res = await fetchManual(url, jar, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  let json;
  try {
    json = JSON.parse(text);
  } catch {
    throw new Error(`${url} answered ${res.status} with a non-JSON body: ${text.slice(0, 500)}`);
  }
  return { res, json };
}

/**
 * Signs in through the provider without a browser: GET the authorize URL,
 * follow its 302 to the hosted login page's URL, drive the flow API
 * (start, then answer the welcome screen with `answer`, by default
 * "submit" with `{ email }`, proving the
 * execution is ours with its `executionSecret` and the jar's
 * `idflow_browser` cookie), then GET the `redirect.url` it answers (the
 * provider's completion URL, which delivers the answer only to the browser
 * whose cookie bound the authorization request, and sets `idflow_session`).
 *
 * Resolves to { url, params, redirect, flow, start, next, completion } where
 * `url` is the final redirect target (the client's redirect URI with
 * code/state/iss, or, for form_post, the completion page's URL, whose
 * one-time answer is `completion`: { res, html }), `params` its query
 * parameters and `redirect` true when the provider answered the authorize
 * request at once (an existing session), in which case `start`/`next` are
 * absent.
 */
export async function login(authorizeUrl, email, jar = new CookieJar(), answer = { interactionId: 'submit', input: { email } }) {
  const authorize = await fetchManual(String(authorizeUrl), jar);
  const location = authorize.headers.get('location');
  assert.equal(authorize.status, 302, `authorize should redirect, got ${authorize.status}: ${await authorize.text()}`);
  assert.ok(location, 'authorize redirect has a Location');
  const hosting = new URL(location, String(authorizeUrl));
  // The hosted page, the flow API and the completion URL are at the base
  // URL, or under the issuer of one of several projects in one process.
  const base = /^(.*?)\/login\/[^/]+$/.exec(hosting.pathname)?.[1];
  if (base === undefined) {
    // Answered at once (session cookie) or with an error.
    return { url: hosting, params: hosting.searchParams, redirect: true, jar };
  }
  const flowId = hosting.searchParams.get('flow');
  const request = hosting.searchParams.get('request');
  assert.ok(flowId && request, `login page URL carries flow and request: ${hosting}`);
  const origin = hosting.origin;
  const start = await postJson(`${origin}${base}/v1/flow/start`, { flowId, request }, jar);
  assert.equal(start.res.status, 200, `flow/start: ${JSON.stringify(start.json)}`);
  assert.equal(start.json.status, 'waiting', `flow/start: ${JSON.stringify(start.json)}`);
  assert.equal(start.json.stepId, 'welcome');
  assert.ok(start.json.executionSecret, `flow/start answers an executionSecret: ${JSON.stringify(start.json)}`);
  const next = await postJson(
    `${origin}${base}/v1/flow/next`,
    { executionId: start.json.executionId, executionSecret: start.json.executionSecret, stepId: start.json.stepId, ...answer },
    jar,
  );
  assert.equal(next.res.status, 200, `flow/next: ${JSON.stringify(next.json)}`);
  assert.equal(next.json.status, 'completed', `flow/next: ${JSON.stringify(next.json)}`);
  assert.ok(next.json.redirect?.url, `flow/next has redirect.url: ${JSON.stringify(next.json)}`);
  const complete = new URL(next.json.redirect.url);
  assert.equal(complete.pathname, `${base}/oauth2/v1/authorize/complete`, `redirect.url is the completion URL: ${complete}`);
  const delivery = await fetchManual(complete, jar);
  let url = complete;
  let completion;
  if (delivery.status === 302) {
    await delivery.arrayBuffer();
    url = new URL(delivery.headers.get('location'), complete);
  } else {
    // form_post: the auto-submitting page (one time).
    const html = await delivery.text();
    assert.equal(delivery.status, 200, `the completion URL answered ${delivery.status}: ${html.slice(0, 500)}`);
    completion = { res: delivery, html };
  }
  return {
    url, params: url.searchParams, redirect: false, flow: { flowId, request }, start: start.json, next: next.json, nextResponse: next.res, completion, jar,
  };
}

/** application/x-www-form-urlencoded POST, answering { res, json, text }. */
export async function postForm(url, fields, { headers = {} } = {}) {
  const res = await fetch(url, {
    method: 'POST',
    redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
    body: new URLSearchParams(fields).toString(),
  });
  const text = await res.text();
  let json;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  return { res, json, text };
}

export function basicAuth(id, secret) {
  const enc = (s) => encodeURIComponent(s);
  return `Basic ${Buffer.from(`${enc(id)}:${enc(secret)}`).toString('base64')}`;
}

/**
 * A loopback HTTP server standing in for a client's redirect URI. Records
 * every request; answers 200 with a small HTML page.
 */
export async function startCallbackServer(pathname = '/callback') {
  const requests = [];
  const waiters = [];
  const srv = http.createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (d) => {
      body += d;
    });
    req.on('end', () => {
      const entry = { method: req.method, url: new URL(req.url, `http://127.0.0.1:${srv.address().port}`), body };
      requests.push(entry);
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
      res.end('<!doctype html><title>Callback</title><p>Signed in; you can close this window.</p>');
      for (const w of waiters.splice(0)) w(entry);
    });
  });
  await new Promise((resolve, reject) => {
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', resolve);
  });
  const { port } = srv.address();
  return {
    port,
    url: `http://127.0.0.1:${port}${pathname}`,
    requests,
    /** The next request (or the first one already received after `from`). */
    next(from = 0) {
      if (requests.length > from) return Promise.resolve(requests[from]);
      return new Promise((resolve) => waiters.push(resolve));
    },
    close() {
      return new Promise((resolve) => {
        srv.closeAllConnections?.();
        srv.close(() => resolve());
      });
    },
  };
}

/** A fresh PKCE pair (RFC 7636, S256): { verifier, challenge }. */
export function pkcePair() {
  const verifier = randomBytes(32).toString('base64url');
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') };
}

/** Decodes a JWT's payload without verifying it (for assertions only). */
export function jwtPayload(token) {
  return JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString('utf8'));
}

export function jwtHeader(token) {
  return JSON.parse(Buffer.from(token.split('.')[0], 'base64url').toString('utf8'));
}

/** A unique test email address per call. */
let counter = 0;
export function uniqueEmail(tag = 'user') {
  counter += 1;
  return `${tag}-${process.pid}-${Date.now()}-${counter}@example.com`;
}

/** Debian's Chromium, or $CHROMIUM_PATH. */
export const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';

/**
 * Why a file's browser tests are skipped (no Chromium, outside CI), or
 * false: in CI (CI=true) a missing browser fails the tests instead.
 */
export function browserSkip() {
  const skip = !fs.existsSync(CHROMIUM) && process.env.CI !== 'true'
    ? `${CHROMIUM} is not installed (apt-get install chromium); skipping the browser tests` : false;
  if (skip) console.log(`# SKIP: ${skip}`);
  return skip;
}

/** Headless Chromium through playwright-core (asserting it is there), with `extraArgs`. */
export async function launchChromium(extraArgs = []) {
  assert.ok(fs.existsSync(CHROMIUM), `${CHROMIUM} is missing and CI=true: the browser tests must run in CI`);
  const { chromium } = await import('playwright-core');
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', ...extraArgs],
  });
}

/**
 * An authorization request (PKCE, state, nonce) of the public client
 * `clientId` at `issuer` back to `redirectUri`, for a browser to open at `url`.
 */
export async function authorization(issuer, clientId, redirectUri) {
  const insecure = { execute: [oidcClient.allowInsecureRequests] };
  const config = await oidcClient.discovery(new URL(issuer), clientId, undefined, oidcClient.None(), insecure);
  const verifier = oidcClient.randomPKCECodeVerifier();
  const state = oidcClient.randomState();
  const nonce = oidcClient.randomNonce();
  const url = oidcClient.buildAuthorizationUrl(config, {
    redirect_uri: redirectUri, scope: 'openid email', state, nonce,
    code_challenge: await oidcClient.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256',
  });
  return { config, verifier, state, nonce, url, redirectUri };
}

/** The tokens for `req` (from {@link authorization}) once `page` reaches its redirect URI. */
export async function tokensAt(page, req) {
  await page.waitForURL((u) => u.href.startsWith(`${req.redirectUri}?`), { timeout: 20000 });
  return oidcClient.authorizationCodeGrant(req.config, new URL(page.url()), {
    pkceCodeVerifier: req.verifier, expectedState: req.state, expectedNonce: req.nonce,
  });
}

/**
 * The hosted-page browser tests' shared setup: before the file's tests, a
 * callback server on 127.0.0.1, `idflow serve` on the project that
 * `project(callbackUrl)` returns (see {@link startServerWithProject}), and
 * headless Chromium; after them, all three closed (the server must stop
 * cleanly). Returns `{ skip, server, browser, callback }`, filled in by then.
 */
export function hostedPageSuite(project, { host } = {}) {
  const suite = { skip: browserSkip(), server: null, browser: null, callback: null };
  before(async () => {
    if (suite.skip) return;
    suite.callback = await startCallbackServer('/callback');
    suite.server = await startServerWithProject(project(suite.callback.url), { host });
    suite.browser = await launchChromium();
  });
  after(async () => {
    await suite.browser?.close();
    await suite.callback?.close();
    if (suite.server) assert.deepEqual(await stopServer(suite.server), { code: 0, signal: null });
  });
  return suite;
}

/** A new browser context (closed after test `t`) on `url`, with `email` typed into the Email field. */
export async function openSignIn(t, browser, url, email) {
  const context = await browser.newContext();
  t.after(() => context.close());
  const page = await context.newPage();
  await page.goto(url);
  const field = page.getByLabel('Email');
  await field.waitFor({ state: 'visible', timeout: 10000 });
  await field.fill(email);
  return { context, page };
}

/** The first group of `pattern` in what `server` printed to stderr after `since` characters, waiting up to 5 s. */
export async function printed(server, since, pattern) {
  for (let i = 0; i < 50; i++) {
    const found = pattern.exec(server.stderr.slice(since))?.[1];
    if (found) return found;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.fail(`idflow serve printed no ${pattern}: ${server.stderr.slice(since)}`);
}
