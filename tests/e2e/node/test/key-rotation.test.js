// A signing key rotated while three `idflow serve` processes run on one
// database as one issuer (as behind a load balancer), SQLite and then
// PostgreSQL (the test command's, IDFLOW_TEST_POSTGRES): `idflow keys
// rotate --prepublish` reaches every server within seconds, with no
// restart; the new key is published before it signs; and a relying party
// using jose's createRemoteJWKSet (its cache shorter than the prepublish
// time) verifies tokens from before and after the rotation, whichever
// server issued them.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import * as jose from 'jose';
import { E2E_DIR, IDFLOW_BIN, PROJECT_FILE, PROJECT_ID, basicAuth, makeTempDir, postForm, removeTempDir, startServer, stopServer } from '../lib/helpers.js';

const KEY = basicAuth('K-reporting', 'reporting-secret-0123456789');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function token(server) {
  const { res, json } = await postForm(`${server.loopback}/oauth2/v1/token`, { grant_type: 'client_credentials' }, { headers: { authorization: KEY } });
  assert.equal(res.status, 200);
  return json.access_token;
}

const kidOf = (jwt) => jose.decodeProtectedHeader(jwt).kid;

async function publishedKids(server) {
  const res = await fetch(`${server.loopback}/${PROJECT_ID}/.well-known/jwks.json`);
  return (await res.json()).keys.map((k) => k.kid);
}

/** Polls `check` every 250 ms until it is true or `ms` pass. */
async function eventually(check, ms) {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) return false;
    await sleep(250);
  }
  return true;
}

/** Three servers on `db` with project file `config`, a rotation, and jose across it. */
async function rotateAcrossThreeServers(t, dir, db, config) {
  const baseUrl = 'http://127.0.0.1:9'; // the one public URL; each server listens on its own port
  const servers = [];
  t.after(async () => {
    for (const s of servers) await stopServer(s, { keepDb: true });
    removeTempDir(dir);
  });
  for (let i = 0; i < 3; i++) servers.push(await startServer({ db, baseUrl, config }));
  const issuer = `${baseUrl}/${PROJECT_ID}`;
  assert.ok(servers.every((s) => s.issuer === issuer));
  // The relying party reads the JWKS of the third server, caching it 2 s.
  const jwks = jose.createRemoteJWKSet(new URL(`${servers[2].loopback}/${PROJECT_ID}/.well-known/jwks.json`), { cacheMaxAge: 2000, cooldownDuration: 500 });
  const verify = (jwt) => jose.jwtVerify(jwt, jwks, { issuer, audience: PROJECT_ID });
  const before = await token(servers[0]);
  const oldKid = kidOf(before);
  await verify(before);

  const prepublish = 12;
  const rotated = spawnSync(IDFLOW_BIN, ['keys', 'rotate', '--db', db, '--config', config, '--alg', 'ES256', '--prepublish', String(prepublish)], { encoding: 'utf8' });
  assert.equal(rotated.status, 0, rotated.stderr);
  const { kid, alg, signsFrom } = JSON.parse(rotated.stdout);
  assert.equal(alg, 'ES256');
  // Every server publishes it within seconds (each reloads its keys every 5 s)...
  for (const s of servers) {
    assert.ok(await eventually(async () => (await publishedKids(s))[0] === kid, 8000), `server ${s.port} publishes ${kid}`);
    assert.deepEqual(await publishedKids(s), [kid, oldKid]);
  }
  // ...and none signs with it before its time.
  if (Date.now() / 1000 < signsFrom - 1) {
    for (const s of servers) assert.equal(kidOf(await token(s)), oldKid);
  }
  // Once it signs, every server uses it; the relying party's cache (renewed
  // during the prepublish time) already holds it, and the old token still verifies.
  for (const s of servers) {
    assert.ok(await eventually(async () => kidOf(await token(s)) === kid, (prepublish + 10) * 1000), `server ${s.port} signs with ${kid}`);
  }
  const after = await token(servers[1]);
  const { protectedHeader } = await verify(after);
  assert.deepEqual([protectedHeader.alg, protectedHeader.kid], ['ES256', kid]);
  await verify(before);
}

test('a key rotated under three running servers on SQLite is published by all, then signs; jose verifies across it', { timeout: 90000 }, async (t) => {
  const dir = makeTempDir('idflow-e2e-rotate-');
  await rotateAcrossThreeServers(t, dir, path.join(dir, 'idflow.db'), PROJECT_FILE);
});

const PG = process.env.IDFLOW_TEST_POSTGRES;
const pgSkip = PG || process.env.CI === 'true' ? false : 'IDFLOW_TEST_POSTGRES is not set (bash tests/run.sh starts a private PostgreSQL)';

test('the same on PostgreSQL', { timeout: 90000, skip: pgSkip }, async (t) => {
  assert.ok(PG, 'IDFLOW_TEST_POSTGRES is set (CI runs this test)');
  const dir = makeTempDir('idflow-e2e-rotate-pg-');
  // A PostgreSQL store needs the project's data key; flow paths are made absolute.
  const doc = JSON.parse(fs.readFileSync(PROJECT_FILE, 'utf8'));
  doc.flows = doc.flows.map((f) => path.resolve(E2E_DIR, f));
  doc.encryption = { key: randomBytes(32).toString('base64') };
  const config = path.join(dir, 'project.json');
  fs.writeFileSync(config, JSON.stringify(doc));
  const db = `${PG}${PG.includes('?') ? '&' : '?'}schema=e2e_rotate_${randomBytes(4).toString('hex')}`;
  await rotateAcrossThreeServers(t, dir, db, config);
});
