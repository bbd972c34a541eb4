'use strict'
// Passkeys through the flow API (tests/flows/passkey.json): the ceremony
// options and the refusals, as the Python suite checks; the full
// ceremonies run in Chromium with a virtual authenticator (tests/e2e).
const test = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const path = require('node:path')
const { FlowEngine, Key } = require('..')

const FLOWS = path.join(__dirname, '..', '..', 'tests', 'flows')

function engine() {
  const doc = JSON.parse(fs.readFileSync(path.join(FLOWS, 'password-project.json'), 'utf8'))
  doc.flows = ['passkey.json']
  doc.baseUrl = 'https://id.example.com'
  return new FlowEngine(JSON.stringify(doc), Key.generate('ES256'), { baseDir: FLOWS })
}

test('registration and sign-in options, and forged answers refused', async () => {
  const e = engine()
  const s = await e.start('passkey')
  const up = await e.next(s.executionId, 'welcome', 'signUp', { email: 'pia@example.com', password: 'a long enough secret' })
  const create = await e.next(s.executionId, up.stepId, 'add', {})
  assert.equal(create.screen.passkey.ceremony, 'create')
  assert.equal(create.screen.passkey.publicKey.rp.id, 'id.example.com')
  assert.equal(create.screen.passkey.publicKey.authenticatorSelection.residentKey, 'required')
  const forged = await e.next(s.executionId, 'create', 'create', { credential: '{"id":"x"}' })
  assert.equal(forged.error.code, 'invalid_credentials')
  const [user] = await e.searchUsers({ text: 'pia@' })
  assert.deepEqual(await e.listPasskeys(user.userId), [])
  await assert.rejects(e.removePasskey(user.userId, 'nope'), { code: 'invalid_request' })

  const t = await e.start('passkey')
  const get = await e.next(t.executionId, 'welcome', 'usePasskey', {})
  assert.equal(get.screen.passkey.ceremony, 'get')
  assert.equal(get.screen.passkey.publicKey.rpId, 'id.example.com')
  const refused = await e.next(t.executionId, 'get', 'use', { credential: '{}' })
  assert.equal(refused.error.code, 'invalid_credentials')
})
