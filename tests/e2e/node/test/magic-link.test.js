// Sign-in links mailed by the console transport (read from idflow serve's
// terminal) on the hosted login page in a real browser (headless
// Chromium): a link opened in the browser that asked signs it in; opened
// in another browser it is refused there and used up nothing; a
// crossDevice link opened in another browser approves the waiting sign-in,
// which then continues. The flow is tests/flows/magic-link.json with its
// links leading to the hosted page.
//
// Needs /usr/bin/chromium (or $CHROMIUM_PATH). Without it the tests are
// skipped, unless CI=true, where a missing browser is a failure.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { authorization, E2E_DIR, hostedPageSuite, openSignIn, printed, tokensAt } from '../lib/helpers.js';

const FLOWS = path.join(E2E_DIR, '..', 'flows');

const suite = hostedPageSuite((callbackUrl) => {
  const flow = JSON.parse(fs.readFileSync(path.join(FLOWS, 'magic-link.json'), 'utf8'));
  flow.steps.send.link = true;
  flow.steps.sendAnyDevice.link = true;
  return {
    projectId: 'ml',
    baseUrl: 'http://127.0.0.1:9', // replaced by the server's own URL
    flows: [flow],
    email: { transport: 'console', from: 'idflow e2e <no-reply@idflow.invalid>' },
    applications: [{ clientId: 'link-app', public: true, redirectUris: [callbackUrl], grantTypes: ['authorization_code'], flow: 'magic-link' }],
  };
});
const { skip } = suite;

/** In a new browser, asks for a link for `email` by pressing `button`; the page and the mailed link. */
async function askForLink(t, req, email, button) {
  const { context, page } = await openSignIn(t, suite.browser, req.url.href, email);
  const seen = suite.server.stderr.length;
  await page.getByRole('button', { name: button, exact: true }).click();
  await page.getByLabel('Code').waitFor({ state: 'visible', timeout: 10000 });
  const link = await printed(suite.server, seen, /^\s+(http:\/\/\S+[?&]link=\S+)$/m);
  assert.ok(link.startsWith(`${suite.server.issuer.replace(/\/ml$/, '')}/login/ml?execution=`), link);
  return { context, page, link };
}

/** Opens `link` in a browser that did not ask for it; the page. */
async function openElsewhere(t, link) {
  const other = await suite.browser.newContext();
  t.after(() => other.close());
  const page = await other.newPage();
  await page.goto(link);
  await page.getByRole('heading', { name: 'This link was opened in another browser' }).waitFor({ timeout: 10000 });
  assert.ok(!page.url().includes('link='), 'the token left the address bar');
  return page;
}

test('a link signs in the browser that asked, and only that one', { skip, timeout: 90000 }, async (t) => {
  const req = await authorization(suite.server.issuer, 'link-app', suite.callback.url);
  const { context, link } = await askForLink(t, req, 'lin@example.com', 'Email me a link');
  // Another browser: the page offers to approve, and the server refuses.
  const elsewhere = await openElsewhere(t, link);
  await elsewhere.getByRole('button', { name: 'Approve the sign-in on my other device' }).click();
  await elsewhere.getByRole('heading', { name: 'This link cannot be used here' }).waitFor({ timeout: 10000 });
  assert.match(await elsewhere.locator('#error').textContent(), /only in the browser that asked/);
  // The asking browser, in a new tab (as from a mail client): signed in, nothing was used up.
  const tab = await context.newPage();
  await tab.goto(link);
  const tokens = await tokensAt(tab, req);
  assert.deepEqual(tokens.claims().amr, ['otp']);
});

test('a crossDevice link approves the waiting sign-in from another browser', { skip, timeout: 90000 }, async (t) => {
  const req = await authorization(suite.server.issuer, 'link-app', suite.callback.url);
  const { page, link } = await askForLink(t, req, 'dee@example.com', 'Email me a link I can open on another device');
  // Continue before the approval: the page says what to do and stays.
  await page.getByRole('button', { name: 'Continue' }).click();
  await page.locator('#error').filter({ hasText: 'open the link' }).waitFor({ timeout: 10000 });
  const phone = await openElsewhere(t, link);
  await phone.getByRole('button', { name: 'Approve the sign-in on my other device' }).click();
  await phone.getByRole('heading', { name: 'Sign-in approved' }).waitFor({ timeout: 10000 });
  await page.getByRole('button', { name: 'Continue' }).click();
  const tokens = await tokensAt(page, req);
  assert.deepEqual(tokens.claims().amr, ['otp']);
});
