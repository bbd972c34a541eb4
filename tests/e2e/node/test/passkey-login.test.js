// Passkeys on the hosted login page in a real browser (headless Chromium
// with a CDP virtual authenticator, WebAuthn.addVirtualAuthenticator): sign
// up with a password and add a passkey, then sign in username-less with it
// (amr hwk, user); a counterfeit assertion (a signature changed on its way)
// and a passkey this server never registered are refused. The flow is
// tests/flows/passkey.json. The server is named `localhost`: browsers take
// no IP address as a WebAuthn RP ID.
//
// Needs /usr/bin/chromium (or $CHROMIUM_PATH). Without it the tests are
// skipped, unless CI=true, where a missing browser is a failure.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import dns from 'node:dns';
import path from 'node:path';
import { authorization, E2E_DIR, hostedPageSuite, printed, startServer, stopServer, tokensAt } from '../lib/helpers.js';

// `localhost` is 127.0.0.1 here, where the server listens.
dns.setDefaultResultOrder('ipv4first');

const FLOWS = path.join(E2E_DIR, '..', 'flows');
const PASSWORD = 'correct horse battery';

const suite = hostedPageSuite((callbackUrl) => ({
  projectId: 'pk',
  baseUrl: 'http://localhost:9', // replaced by the server's own URL
  flows: [path.join(FLOWS, 'passkey.json')],
  passwords: { minLength: 10, hashing: { memoryKiB: 8192, iterations: 1 } },
  applications: [{ clientId: 'pk-app', public: true, redirectUris: [callbackUrl], grantTypes: ['authorization_code'], flow: 'passkey' }],
}), { host: 'localhost' });
const { skip } = suite;

function authorize() {
  return authorization(suite.server.issuer, 'pk-app', suite.callback.url);
}

/** A browser tab with a platform authenticator that verifies its user. */
async function pageWithAuthenticator(context) {
  const page = await context.newPage();
  const cdp = await context.newCDPSession(page);
  await cdp.send('WebAuthn.enable');
  const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
    options: { protocol: 'ctap2', transport: 'internal', hasResidentKey: true, hasUserVerification: true, isUserVerified: true, automaticPresenceSimulation: true },
  });
  return { page, cdp, authenticatorId };
}

async function usePasskey(page, req) {
  await page.goto(req.url.href);
  const button = page.getByRole('button', { name: 'Sign in with a passkey' });
  await button.waitFor({ state: 'visible', timeout: 10000 });
  await button.click();
  await page.getByRole('button', { name: 'Use my passkey' }).click();
}

test('add a passkey after a password sign-up, then sign in with it alone; amr is hwk user', { skip, timeout: 120000 }, async (t) => {
  const context = await suite.browser.newContext();
  t.after(() => context.close());
  const { page, cdp, authenticatorId } = await pageWithAuthenticator(context);
  const up = await authorize();
  await page.goto(up.url.href);
  await page.getByLabel('Email').fill('pia@example.com');
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Create an account' }).click();
  await page.getByRole('button', { name: 'Add a passkey' }).click();
  await page.getByRole('button', { name: 'Create the passkey' }).click();
  const first = await tokensAt(page, up);
  assert.deepEqual(first.claims().amr, ['pwd']);
  const { credentials } = await cdp.send('WebAuthn.getCredentials', { authenticatorId });
  assert.equal(credentials.length, 1);
  assert.equal(credentials[0].isResidentCredential, true, 'a discoverable credential, for username-less sign-in');

  // Signed out (no provider session), the passkey alone signs in.
  await context.clearCookies();
  const again = await authorize();
  await usePasskey(page, again);
  const second = await tokensAt(page, again);
  assert.equal(second.claims().sub, first.claims().sub);
  assert.deepEqual(second.claims().amr, ['hwk', 'user']);
  const after = await cdp.send('WebAuthn.getCredentials', { authenticatorId });
  assert.ok(after.credentials[0].signCount > credentials[0].signCount, 'the authenticator counted the use');

  // A counterfeit assertion: the signature is changed on its way.
  await context.clearCookies();
  const forged = await authorize();
  await page.route('**/v1/flow/next', async (route) => {
    const body = JSON.parse(route.request().postData());
    if (body.input?.credential) {
      const c = JSON.parse(body.input.credential);
      const sig = Buffer.from(c.response.signature, 'base64url');
      sig[sig.length - 1] ^= 1;
      c.response.signature = sig.toString('base64url');
      body.input.credential = JSON.stringify(c);
    }
    await route.continue({ postData: JSON.stringify(body) });
  });
  await usePasskey(page, forged);
  await page.getByRole('alert').filter({ hasText: 'passkey was not accepted' }).waitFor({ timeout: 10000 });
  assert.ok(!page.url().startsWith(suite.callback.url));
  await page.unroute('**/v1/flow/next');
});

test('a passkey this server never registered is refused', { skip, timeout: 60000 }, async (t) => {
  const context = await suite.browser.newContext();
  t.after(() => context.close());
  const { page, cdp, authenticatorId } = await pageWithAuthenticator(context);
  const { privateKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
  await cdp.send('WebAuthn.addCredential', {
    authenticatorId,
    credential: {
      credentialId: crypto.randomBytes(16).toString('base64'),
      isResidentCredential: true,
      rpId: 'localhost',
      privateKey: privateKey.export({ type: 'pkcs8', format: 'der' }).toString('base64'),
      userHandle: crypto.randomBytes(16).toString('base64'),
      signCount: 1,
    },
  });
  const req = await authorize();
  await usePasskey(page, req);
  await page.getByRole('alert').filter({ hasText: 'not registered here' }).waitFor({ timeout: 10000 });
  assert.ok(!page.url().startsWith(suite.callback.url));
});

test('the demo (idflow serve alone) signs up, verifies the email, adds a passkey and signs in with it', { skip, timeout: 120000 }, async (t) => {
  const demo = await startServer({ config: null });
  t.after(async () => assert.deepEqual(await stopServer(demo), { code: 0, signal: null }));
  assert.equal(demo.issuer, `http://localhost:${demo.port}/local`);
  const context = await suite.browser.newContext();
  t.after(() => context.close());
  const { page } = await pageWithAuthenticator(context);
  const up = await authorization(demo.issuer, 'local', suite.callback.url);
  await page.goto(up.url.href);
  await page.getByLabel('Email').fill('dana@example.com');
  await page.getByLabel('Password').fill(PASSWORD);
  const seen = demo.stderr.length;
  await page.getByRole('button', { name: 'Create an account' }).click();
  await page.getByLabel('The code we sent you').waitFor({ state: 'visible', timeout: 10000 });
  const code = await printed(demo, seen, /Your sign-in code: (\d{6})/);
  await page.getByLabel('The code we sent you').fill(code);
  await page.getByRole('button', { name: 'Verify my email' }).click();
  await page.getByRole('button', { name: 'Add a passkey' }).click();
  await page.getByRole('button', { name: 'Create the passkey' }).click();
  const first = await tokensAt(page, up);
  assert.deepEqual(first.claims().amr, ['pwd', 'otp', 'mfa']);
  await context.clearCookies();
  const again = await authorization(demo.issuer, 'local', suite.callback.url);
  await usePasskey(page, again);
  const second = await tokensAt(page, again);
  assert.equal(second.claims().sub, first.claims().sub);
  assert.deepEqual(second.claims().amr, ['hwk', 'user']);
});
