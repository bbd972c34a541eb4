'use strict'
// Authenticator apps through tests/flows/totp.json, with codes computed by
// the otpauth package from the URI idflow shows (what an app does with the
// QR code), as the Python and Rust suites do.
const test = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const path = require('node:path')
const OTPAuth = require('otpauth')
const { FlowEngine, Key, jwt } = require('..')

const FLOWS = path.join(__dirname, '..', '..', 'tests', 'flows')
const PASSWORD = 'a long enough secret'

async function engine() {
  const doc = JSON.parse(fs.readFileSync(path.join(FLOWS, 'password-project.json'), 'utf8'))
  doc.flows = ['totp.json']
  const e = new FlowEngine(JSON.stringify(doc), Key.generate('ES256'), { baseDir: FLOWS })
  const user = await e.createUser('ann@example.com')
  await e.setPassword(user.userId, PASSWORD)
  return { e, userId: user.userId }
}

async function signIn(e) {
  const s = await e.start('totp')
  const r = await e.next(s.executionId, 'welcome', 'submit', { email: 'ann@example.com', password: PASSWORD })
  return { execution: s.executionId, r }
}

test('an app enrolled by its URI signs in once per code, and recovery codes once', async () => {
  const { e, userId } = await engine()
  const { execution, r: scan } = await signIn(e)
  assert.equal(scan.stepId, 'scan')
  const app = OTPAuth.URI.parse(scan.screen.totp.uri)
  assert.equal(app.issuer, 'local')
  assert.equal(app.label, 'ann@example.com')
  assert.equal(app.secret.base32, scan.screen.totp.secret)
  const now = Date.now()
  const recovery = await e.next(execution, 'scan', 'submit', { code: app.generate({ timestamp: now }) })
  assert.equal(recovery.screen.recoveryCodes.length, 10)
  const done = await e.next(execution, 'recovery', 'continue', {})
  assert.equal(done.status, 'completed')
  assert.deepEqual(jwt.decodeUnverified(done.authInfo.sessionJwt).claims.amr, ['pwd', 'otp', 'mfa'])
  assert.equal(await e.hasTotp(userId), true)

  const second = await signIn(e)
  assert.equal(second.r.stepId, 'ask-code')
  const replay = await e.next(second.execution, 'ask-code', 'submit', { code: app.generate({ timestamp: now }) })
  assert.equal(replay.error.code, 'invalid_code')
  const later = app.generate({ timestamp: now + 30000 })
  assert.equal((await e.next(second.execution, 'ask-code', 'submit', { code: later })).status, 'completed')
  const third = await signIn(e)
  assert.equal((await e.next(third.execution, 'ask-code', 'submit', { code: later })).error.code, 'invalid_code')
  assert.equal((await e.next(third.execution, 'ask-code', 'submit', { code: recovery.screen.recoveryCodes[2] })).status, 'completed')
  assert.equal(await e.recoveryCodesLeft(userId), 9)
  await e.removeTotp(userId)
  assert.equal(await e.hasTotp(userId), false)
  await assert.rejects(e.hasTotp('U-nobody'), { code: 'user_not_found' })
})
