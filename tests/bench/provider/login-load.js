// Full authorization-code logins per second against idflow or oidc-provider,
// with one load generator for both (tests/bench/provider/run.sh).
//
//   node login-load.js --target idflow --base http://127.0.0.1:18291 \
//        [--seconds 10] [--warmup 2] [--concurrency 16] [--emails 16]
//
// Each of --concurrency workers runs logins back to back over a shared
// keep-alive agent, each login a fresh "browser" (own cookie jar, no session),
// public client "bench" with PKCE S256, scope "openid email reports:read":
//   idflow:        GET /oauth2/v1/authorize -> 302 /login/bench?...&request=ID
//                    (sets the idflow_browser cookie that binds the request)
//                  POST /v1/flow/start {"request": ID} -> executionSecret
//                  POST /v1/flow/next {email, executionSecret} -> redirect.url
//                  GET redirect.url (/oauth2/v1/authorize/complete, cookie)
//                    -> 302 redirect_uri?code=
//                  POST /oauth2/v1/token (authorization_code + code_verifier)
//   oidc-provider: GET /auth -> 303 /interaction/UID (cookies)
//                  GET /interaction/UID (the pending interaction, JSON)
//                  POST /interaction/UID/login {email} -> {"redirect":{"url"}}
//                  GET /auth/UID (resume) -> 303 redirect_uri?code=
//                  POST /token (authorization_code + code_verifier)
// A login counts when the token response has an access_token and an id_token
// and the state came back. Emails cycle through a fixed set (--emails), so
// after the warm-up every login signs an existing user in. The warm-up runs
// the same loop and is not counted. Prints one JSON line: logins, seconds,
// logins_per_s, p50_ms, p99_ms, errors, server_cpu_s (with --pid),
// generator_cpu_s (this process), machine_cpu_s (all CPUs), first_error, and
// the JOSE headers of one access token and id_token (to show both sides sign
// with the same alg).

import fs from 'node:fs';
import http from 'node:http';
import crypto from 'node:crypto';
import { parseArgs } from 'node:util';

const { values: args } = parseArgs({
  options: {
    target: { type: 'string' },
    base: { type: 'string' },
    seconds: { type: 'string', default: '10' },
    warmup: { type: 'string', default: '2' },
    concurrency: { type: 'string', default: '16' },
    emails: { type: 'string', default: '16' },
    pid: { type: 'string' },
  },
});
if (!['idflow', 'oidc-provider'].includes(args.target) || !args.base) {
  console.error('usage: node login-load.js --target idflow|oidc-provider --base URL [--seconds N] [--warmup N] [--concurrency N] [--emails N]');
  process.exit(2);
}
const base = new URL(args.base);
const REDIRECT_URI = 'http://127.0.0.1/callback';
const CLIENT_ID = 'bench';
const SCOPE = 'openid email reports:read';
const agent = new http.Agent({ keepAlive: true, maxSockets: Infinity });
const emails = Array.from({ length: Number(args.emails) }, (_, i) => `bench-user-${i}@example.com`);

const b64url = (buf) => buf.toString('base64url');

class Jar {
  constructor() {
    this.cookies = new Map();
  }
  take(setCookie) {
    for (const line of setCookie || []) {
      const [pair, ...attrs] = line.split(';');
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      let path = '/';
      let expired = false;
      for (const a of attrs) {
        const [k, v = ''] = a.trim().split('=');
        if (k.toLowerCase() === 'path') path = v;
        if (k.toLowerCase() === 'max-age' && Number(v) <= 0) expired = true;
        if (k.toLowerCase() === 'expires' && Date.parse(v) < Date.now()) expired = true;
      }
      const key = `${name}\n${path}`;
      if (expired || value === '') this.cookies.delete(key);
      else this.cookies.set(key, { name, value, path });
    }
  }
  header(pathname) {
    const out = [];
    for (const c of this.cookies.values()) {
      if (pathname === c.path || pathname.startsWith(c.path.endsWith('/') ? c.path : `${c.path}/`) || c.path === '/') out.push(`${c.name}=${c.value}`);
    }
    return out.join('; ');
  }
}

function request(jar, method, url, { body, type } = {}) {
  const u = new URL(url, base);
  const headers = { Host: u.host };
  const cookie = jar.header(u.pathname);
  if (cookie) headers.Cookie = cookie;
  let payload;
  if (body !== undefined) {
    payload = Buffer.from(body);
    headers['Content-Type'] = type;
    headers['Content-Length'] = payload.length;
  }
  return new Promise((resolve, reject) => {
    const req = http.request(
      { agent, host: u.hostname, port: u.port, method, path: u.pathname + u.search, headers },
      (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => {
          jar.take(res.headers['set-cookie']);
          resolve({ status: res.statusCode, headers: res.headers, text: Buffer.concat(chunks).toString('utf8') });
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    if (payload) req.end(payload);
    else req.end();
  });
}

function expect(cond, what, res) {
  if (!cond) {
    const detail = res ? ` (HTTP ${res.status}: ${res.text.slice(0, 200)})` : '';
    throw new Error(`${what}${detail}`);
  }
}

function authorizeQuery(state, challenge) {
  return new URLSearchParams({
    response_type: 'code',
    client_id: CLIENT_ID,
    redirect_uri: REDIRECT_URI,
    scope: SCOPE,
    state,
    nonce: b64url(crypto.randomBytes(12)),
    code_challenge: challenge,
    code_challenge_method: 'S256',
  }).toString();
}

function codeFrom(url, state) {
  const u = new URL(url, base);
  expect(u.origin + u.pathname === REDIRECT_URI, `redirected to ${u.origin}${u.pathname}, not the redirect URI`);
  expect(u.searchParams.get('state') === state, 'the state did not come back');
  const code = u.searchParams.get('code');
  expect(code, `no code at the redirect URI: ${u.search.slice(0, 200)}`);
  return code;
}

async function redeem(jar, tokenPath, code, verifier) {
  const body = new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: REDIRECT_URI, client_id: CLIENT_ID, code_verifier: verifier }).toString();
  const res = await request(jar, 'POST', tokenPath, { body, type: 'application/x-www-form-urlencoded' });
  expect(res.status === 200, 'token', res);
  const tokens = JSON.parse(res.text);
  expect(tokens.access_token && tokens.id_token, 'token response lacks access_token or id_token', res);
  return tokens;
}

async function loginIdflow(email) {
  const jar = new Jar();
  const verifier = b64url(crypto.randomBytes(32));
  const challenge = b64url(crypto.createHash('sha256').update(verifier).digest());
  const state = b64url(crypto.randomBytes(12));
  let res = await request(jar, 'GET', `/oauth2/v1/authorize?${authorizeQuery(state, challenge)}`);
  expect(res.status === 302 && res.headers.location, 'authorize', res);
  const requestId = new URL(res.headers.location, base).searchParams.get('request');
  expect(requestId, `authorize redirected without request=: ${res.headers.location}`);
  res = await request(jar, 'POST', '/v1/flow/start', { body: JSON.stringify({ request: requestId }), type: 'application/json' });
  expect(res.status === 200, 'flow/start', res);
  const step = JSON.parse(res.text);
  expect(step.status === 'waiting', 'flow/start did not wait for the email', res);
  const next = {
    executionId: step.executionId, executionSecret: step.executionSecret, stepId: step.stepId, interactionId: step.screen.interactions[0].id, input: { email },
  };
  res = await request(jar, 'POST', '/v1/flow/next', { body: JSON.stringify(next), type: 'application/json' });
  expect(res.status === 200, 'flow/next', res);
  const done = JSON.parse(res.text);
  expect(done.status === 'completed' && done.redirect?.url, 'flow/next did not complete', res);
  // The answer is delivered to this browser (its idflow_browser cookie) only.
  res = await request(jar, 'GET', done.redirect.url);
  expect(res.status === 302 && res.headers.location, 'authorize/complete', res);
  return redeem(jar, '/oauth2/v1/token', codeFrom(res.headers.location, state), verifier);
}

async function loginOidcProvider(email) {
  const jar = new Jar();
  const verifier = b64url(crypto.randomBytes(32));
  const challenge = b64url(crypto.createHash('sha256').update(verifier).digest());
  const state = b64url(crypto.randomBytes(12));
  let res = await request(jar, 'GET', `/auth?${authorizeQuery(state, challenge)}`);
  expect((res.status === 302 || res.status === 303) && res.headers.location, 'authorize', res);
  const interactionUrl = res.headers.location;
  res = await request(jar, 'GET', interactionUrl);
  expect(res.status === 200, 'interaction', res);
  res = await request(jar, 'POST', `${new URL(interactionUrl, base).pathname}/login`, { body: JSON.stringify({ email }), type: 'application/json' });
  expect(res.status === 200, 'interaction login', res);
  const done = JSON.parse(res.text);
  expect(done.redirect?.url, 'interaction login gave no redirect', res);
  res = await request(jar, 'GET', done.redirect.url);
  expect((res.status === 302 || res.status === 303) && res.headers.location, 'resume', res);
  return redeem(jar, '/token', codeFrom(res.headers.location, state), verifier);
}

const login = args.target === 'idflow' ? loginIdflow : loginOidcProvider;

async function run(seconds, record) {
  const deadline = performance.now() + seconds * 1000;
  const latencies = [];
  let errors = 0;
  let firstError;
  let sample;
  let n = 0;
  const worker = async () => {
    while (performance.now() < deadline) {
      const t0 = performance.now();
      try {
        const tokens = await login(emails[n++ % emails.length]);
        if (record) latencies.push(performance.now() - t0);
        sample ||= tokens;
      } catch (e) {
        errors += 1;
        firstError ||= e.message;
      }
    }
  };
  const t0 = performance.now();
  await Promise.all(Array.from({ length: Number(args.concurrency) }, () => worker()));
  return { latencies, errors, firstError, sample, elapsed: (performance.now() - t0) / 1000 };
}

// The server's user+system CPU seconds (Linux /proc), when --pid names it.
function serverCpu() {
  if (!args.pid) return null;
  try {
    const f = fs.readFileSync(`/proc/${args.pid}/stat`, 'utf8').replace(/^.*\) /s, '').split(' ');
    return (Number(f[11]) + Number(f[12])) / 100; // utime, stime in USER_HZ (100 on Linux)
  } catch {
    return null;
  }
}

// Busy CPU seconds of the whole machine (all CPUs), from /proc/stat.
function machineCpu() {
  try {
    const f = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).map(Number);
    return (f[1] + f[2] + f[3] + f[6] + f[7] + f[8]) / 100; // user nice system irq softirq steal
  } catch {
    return null;
  }
}

const header = (jwt) => JSON.parse(Buffer.from(jwt.split('.')[0], 'base64url').toString('utf8'));
const pct = (sorted, p) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] : null);

if (Number(args.warmup) > 0) {
  const w = await run(Number(args.warmup), false);
  if (!w.sample) {
    console.log(JSON.stringify({ target: args.target, logins: 0, errors: w.errors, first_error: w.firstError }));
    process.exit(1);
  }
}
const cpu0 = serverCpu();
const machine0 = machineCpu();
const own0 = process.cpuUsage();
const r = await run(Number(args.seconds), true);
const own = process.cpuUsage(own0);
const cpu1 = serverCpu();
const machine1 = machineCpu();
const sorted = r.latencies.sort((a, b) => a - b);
const round = (v) => (v === null ? null : Math.round(v * 100) / 100);
console.log(JSON.stringify({
  target: args.target,
  logins: sorted.length,
  seconds: round(r.elapsed),
  logins_per_s: round(sorted.length / r.elapsed),
  p50_ms: round(pct(sorted, 50)),
  p99_ms: round(pct(sorted, 99)),
  errors: r.errors,
  server_cpu_s: cpu0 === null || cpu1 === null ? null : round(cpu1 - cpu0),
  generator_cpu_s: round((own.user + own.system) / 1e6),
  machine_cpu_s: machine0 === null || machine1 === null ? null : round(machine1 - machine0),
  first_error: r.firstError,
  access_token_header: r.sample && header(r.sample.access_token),
  id_token_header: r.sample && header(r.sample.id_token),
}));
agent.destroy();
