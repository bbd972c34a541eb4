// The management API over plain HTTP against `idflow serve`: refused
// without a management key, then users, passwords, sign-out everywhere and
// key rotation with the bindings' error codes. The key rotated here is
// published at the JWKS the same moment, with no restart.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServerWithProject, stopServer } from '../lib/helpers.js';

const SECRET = 'e2e-management-secret-0123456789abcdef';
let server;

after(async () => {
  if (server) assert.deepEqual(await stopServer(server), { code: 0, signal: null });
});

async function mgmt(method, path, body, secret = SECRET) {
  const headers = { 'content-type': 'application/json' };
  if (secret) headers.authorization = `Bearer ${secret}`;
  const res = await fetch(`${server.loopback}/v1/mgmt/${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  return { status: res.status, json: text ? JSON.parse(text) : null, res };
}

test('the management API over HTTP', async () => {
  server = await startServerWithProject({
    projectId: 'mgmt',
    baseUrl: 'http://127.0.0.1:9', // replaced by the server's own URL
    passwords: { minLength: 12, hashing: { memoryKiB: 8192, iterations: 1 } },
    management: { keys: [{ id: 'ops', secret: SECRET }] },
  });
  const denied = await mgmt('GET', 'users', undefined, null);
  assert.equal(denied.status, 401);
  assert.equal(denied.json.error.code, 'invalid_client');
  assert.match(denied.res.headers.get('www-authenticate'), /^Bearer/);
  assert.equal((await mgmt('GET', 'users', undefined, 'not-the-management-secret-0123456789')).status, 401);

  const created = await mgmt('POST', 'users', { loginId: 'nia@example.com', name: 'Nia', tenants: [{ tenantId: 'acme', roles: ['admin'] }] });
  assert.equal(created.status, 201);
  const id = created.json.userId;
  assert.equal((await mgmt('POST', 'users', { loginId: 'nia@example.com' })).json.error.code, 'user_exists');
  assert.equal((await mgmt('GET', `users/${id}`)).json.name, 'Nia');
  assert.equal((await mgmt('PATCH', `users/${id}`, { givenName: 'Nia' })).json.givenName, 'Nia');
  assert.equal((await mgmt('GET', 'users?text=nia')).json.users.length, 1);
  const weak = await mgmt('PUT', `users/${id}/password`, { password: 'short' });
  assert.deepEqual([weak.status, weak.json.error.code], [400, 'weak_password']);
  assert.equal((await mgmt('PUT', `users/${id}/password`, { password: 'a long management password' })).status, 204);
  assert.equal((await mgmt('POST', `users/${id}/sign-out-everywhere`)).status, 204);
  assert.deepEqual((await mgmt('GET', `users/${id}/passkeys`)).json, { passkeys: [] });

  const rotated = await mgmt('POST', 'keys/rotate', { alg: 'ES256', prepublish: 0 });
  assert.equal(rotated.status, 201);
  const jwks = await (await fetch(`${server.loopback}/mgmt/.well-known/jwks.json`)).json();
  assert.equal(jwks.keys[0].kid, rotated.json.kid);
  assert.equal(jwks.keys.length, 2);

  assert.equal((await mgmt('DELETE', `users/${id}`)).status, 204);
  const gone = await mgmt('GET', `users/${id}`);
  assert.deepEqual([gone.status, gone.json.error.code], [404, 'user_not_found']);
});
