// Passwords and email codes on the hosted login page in a real browser
// (headless Chromium): sign up with a password through an authorization
// request, get a code whose id_token says amr ["pwd"], then sign in again in
// a fresh browser, first with a wrong password (the page says why and
// stays), then right; and sign in by a code mailed through the console
// transport (read from idflow serve's terminal); and enroll an
// authenticator app from the QR code's key on the page, then sign in with
// its codes (computed by the otpauth package). The flows are
// tests/flows/password.json, email-code.json and totp.json, shared with the
// Python and Node suites.
//
// Needs /usr/bin/chromium (or $CHROMIUM_PATH). Without it the tests are
// skipped, unless CI=true, where a missing browser is a failure.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import * as OTPAuth from 'otpauth';
import { authorization, E2E_DIR, hostedPageSuite, openSignIn, printed, tokensAt } from '../lib/helpers.js';

const FLOWS = path.join(E2E_DIR, '..', 'flows');
const PASSWORD = 'correct horse battery';

const suite = hostedPageSuite((callbackUrl) => ({
  projectId: 'pw',
  baseUrl: 'http://127.0.0.1:9', // replaced by the server's own URL
  flows: [path.join(FLOWS, 'password.json'), path.join(FLOWS, 'email-code.json'), path.join(FLOWS, 'totp.json')],
  passwords: { minLength: 10, hashing: { memoryKiB: 8192, iterations: 1 }, lockout: { maxFailures: 5 } },
  email: { transport: 'console', from: 'idflow e2e <no-reply@idflow.invalid>' },
  applications: [
    { clientId: 'pw-app', public: true, redirectUris: [callbackUrl], grantTypes: ['authorization_code'], flow: 'password' },
    { clientId: 'code-app', public: true, redirectUris: [callbackUrl], grantTypes: ['authorization_code'], flow: 'email-code' },
    { clientId: 'totp-app', public: true, redirectUris: [callbackUrl], grantTypes: ['authorization_code'], flow: 'totp' },
  ],
}));
const { skip } = suite;

function authorize(clientId = 'pw-app') {
  return authorization(suite.server.issuer, clientId, suite.callback.url);
}

async function fill(page, email, password) {
  const field = page.getByLabel('Email');
  await field.waitFor({ state: 'visible', timeout: 10000 });
  await field.fill(email);
  await page.getByLabel('Password').fill(password);
}

test('sign up and sign in with a password on the hosted page; amr is pwd', { skip, timeout: 90000 }, async (t) => {
  const email = 'pat@example.com';
  // Sign up.
  const up = await authorize();
  const first = await suite.browser.newContext();
  t.after(() => first.close());
  const page = await first.newPage();
  await page.goto(up.url.href);
  await fill(page, email, PASSWORD);
  assert.equal(await page.getByLabel('Password').getAttribute('type'), 'password');
  await page.getByRole('button', { name: 'Create an account' }).click();
  const tokens = await tokensAt(page, up);
  assert.deepEqual(tokens.claims().amr, ['pwd']);
  assert.equal(tokens.claims().acr, 'password', 'a flow that checked a password names itself as acr');

  // Sign in in another browser: a wrong password is shown and changes nothing.
  const again = await authorize();
  const second = await suite.browser.newContext();
  t.after(() => second.close());
  const page2 = await second.newPage();
  await page2.goto(again.url.href);
  await fill(page2, email, 'correct horse batterz');
  await page2.getByRole('button', { name: 'Sign in' }).click();
  await page2.getByRole('alert').filter({ hasText: 'wrong' }).waitFor({ timeout: 10000 });
  assert.match(await page2.getByRole('alert').textContent(), /login id or password is wrong/);
  assert.equal(new URL(page2.url()).pathname, '/login/pw');
  await fill(page2, email, PASSWORD);
  await page2.getByRole('button', { name: 'Sign in' }).click();
  const tokens2 = await tokensAt(page2, again);
  assert.equal(tokens2.claims().sub, tokens.claims().sub);
  assert.deepEqual(tokens2.claims().amr, ['pwd']);
});

test('sign in by a code mailed to the address (console transport); amr is otp', { skip, timeout: 90000 }, async (t) => {
  const req = await authorize('code-app');
  const { page } = await openSignIn(t, suite.browser, req.url.href, 'cody@example.com');
  const seen = suite.server.stderr.length;
  await page.getByRole('button', { name: 'Email me a code' }).click();
  await page.getByLabel('Code').waitFor({ state: 'visible', timeout: 10000 });
  const code = await printed(suite.server, seen, /to c\*\*\*@example\.com: Your sign-in code: (\d{6})/);
  assert.doesNotMatch(suite.server.stderr, /cody@example\.com/, 'the terminal shows a masked address');
  await page.getByLabel('Code').fill(code);
  await page.getByRole('button', { name: 'Sign in' }).click();
  const tokens = await tokensAt(page, req);
  assert.deepEqual(tokens.claims().amr, ['otp']);
});

test('enroll an authenticator app from the page, then sign in with its codes; amr is pwd otp mfa', { skip, timeout: 120000 }, async (t) => {
  const email = 'tia@example.com';
  // An account with a password first.
  const up = await authorize();
  const context = await suite.browser.newContext();
  t.after(() => context.close());
  const page = await context.newPage();
  await page.goto(up.url.href);
  await fill(page, email, PASSWORD);
  await page.getByRole('button', { name: 'Create an account' }).click();
  await page.waitForURL((u) => u.href.startsWith(`${suite.callback.url}?`), { timeout: 20000 });

  // The password, then the app is enrolled: QR code and key on the page.
  const req = await authorize('totp-app');
  await page.goto(req.url.href);
  await fill(page, email, PASSWORD);
  await page.getByRole('button', { name: 'Continue' }).click();
  const qr = page.getByAltText('QR code to scan with your authenticator app');
  await qr.waitFor({ state: 'visible', timeout: 10000 });
  assert.match(await qr.getAttribute('src'), /^data:image\/svg\+xml;base64,/);
  assert.ok(await qr.evaluate((img) => img.complete && img.naturalWidth > 0), 'the QR code renders');
  const secret = (await page.locator('#totp-secret').textContent()).trim();
  const uri = await page.getByRole('link', { name: 'Open in an authenticator app on this device' }).getAttribute('href');
  const app = OTPAuth.URI.parse(uri);
  assert.equal(app.secret.base32, secret);
  const now = Date.now();
  await page.getByLabel('Code from the app').fill(app.generate({ timestamp: now }));
  await page.getByRole('button', { name: 'Continue' }).click();
  const codes = page.locator('#recovery-codes li');
  await codes.first().waitFor({ state: 'visible', timeout: 10000 });
  assert.equal(await codes.count(), 10);
  await page.getByRole('button', { name: 'I have saved them' }).click();
  const tokens = await tokensAt(page, req);
  assert.deepEqual(tokens.claims().amr, ['pwd', 'otp', 'mfa']);

  // Another browser: the password, then the next code from the app.
  const again = await authorize('totp-app');
  const other = await suite.browser.newContext();
  t.after(() => other.close());
  const page2 = await other.newPage();
  await page2.goto(again.url.href);
  await fill(page2, email, PASSWORD);
  await page2.getByRole('button', { name: 'Continue' }).click();
  const field = page2.getByLabel('Code', { exact: true });
  await field.waitFor({ state: 'visible', timeout: 10000 });
  assert.equal(await page2.locator('#totp-qr').count(), 0, 'no enrollment is shown at sign-in');
  await field.fill(app.generate({ timestamp: now + 30000 }));
  await page2.getByRole('button', { name: 'Continue' }).click();
  const tokens2 = await tokensAt(page2, again);
  assert.equal(tokens2.claims().sub, tokens.claims().sub);
  assert.deepEqual(tokens2.claims().amr, ['pwd', 'otp', 'mfa']);
});
