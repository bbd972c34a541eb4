'use strict'
// Passwords through the shared flows of tests/flows (password.json,
// change-password.json), with the results the Python suite gets.
const test = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const path = require('node:path')
const { FlowEngine, Key, jwt, password } = require('..')

const FLOWS = path.join(__dirname, '..', '..', 'tests', 'flows')
const PASSWORD = 'correct horse battery'

function engine() {
  const project = fs.readFileSync(path.join(FLOWS, 'password-project.json'), 'utf8')
  return new FlowEngine(project, Key.generate('ES256'), { baseDir: FLOWS })
}

async function answer(e, interaction, email, pw) {
  const s = await e.start('password')
  return e.next(s.executionId, 'welcome', interaction, { email, password: pw })
}

// The error a failed step showed on the screen the flow went back to.
function shown(r) {
  assert.equal(r.status, 'waiting')
  assert.equal(r.stepId, 'welcome')
  return r.error.code
}

const amr = (r) => jwt.decodeUnverified(r.authInfo.sessionJwt).claims.amr

test('sign up, sign in, and every refusal has its code', async () => {
  const e = engine()
  const up = await answer(e, 'signUp', 'ann@example.com', PASSWORD)
  assert.equal(up.status, 'completed')
  assert.deepEqual(amr(up), ['pwd'])
  assert.equal(shown(await answer(e, 'signUp', 'ANN@example.com', PASSWORD)), 'user_exists')
  const weak = await answer(e, 'signUp', 'bob@example.com', 'password123')
  assert.equal(shown(weak), 'weak_password')
  assert.match(weak.error.message, /common/)
  assert.deepEqual(await e.searchUsers({ text: 'bob' }), [])
  const signedIn = await answer(e, 'signIn', 'Ann@Example.com', PASSWORD)
  assert.equal(signedIn.status, 'completed')
  assert.deepEqual(amr(signedIn), ['pwd'])
  const wrong = await answer(e, 'signIn', 'ann@example.com', 'correct horse batterz')
  const unknown = await answer(e, 'signIn', 'nobody@example.com', PASSWORD)
  assert.equal(shown(wrong), 'invalid_credentials')
  assert.equal(shown(unknown), 'invalid_credentials')
  assert.equal(wrong.error.message, unknown.error.message)
})

test('the lockout counts known and unknown login ids alike', async () => {
  const e = engine()
  await answer(e, 'signUp', 'ann@example.com', PASSWORD)
  for (const login of ['ann@example.com', 'nobody@example.com']) {
    const codes = []
    for (let i = 0; i < 3; i++) codes.push(shown(await answer(e, 'signIn', login, `wrong password ${i}`)))
    assert.deepEqual(codes, ['invalid_credentials', 'invalid_credentials', 'user_locked'], login)
    assert.equal(shown(await answer(e, 'signIn', login, PASSWORD)), 'user_locked')
  }
  await e.unlockLoginId('ann@example.com')
  assert.equal((await answer(e, 'signIn', 'ann@example.com', PASSWORD)).status, 'completed')
})

test('a password change needs the current password and meets the policy', async () => {
  const e = engine()
  await answer(e, 'signUp', 'ann@example.com', PASSWORD)
  const change = async (current, next) => {
    const s = await e.start('change-password')
    return e.next(s.executionId, 'form', 'submit', { email: 'ann@example.com', password: current, newPassword: next })
  }
  assert.equal((await change('not my password', 'a brand new secret')).error.code, 'invalid_credentials')
  assert.equal((await change(PASSWORD, 'qwertyuiop')).error.code, 'weak_password')
  assert.equal((await change(PASSWORD, 'a brand new secret')).status, 'completed')
  assert.equal(shown(await answer(e, 'signIn', 'ann@example.com', PASSWORD)), 'invalid_credentials')
  assert.equal((await answer(e, 'signIn', 'ann@example.com', 'a brand new secret')).status, 'completed')
})

test('users API: set, import, remove, and hashes made by idflow', async () => {
  const e = engine()
  const user = await e.createUser('ann@example.com')
  assert.equal(await e.hasPassword(user.userId), false)
  await assert.rejects(e.setPassword(user.userId, 'short'), (err) => err.code === 'weak_password')
  await e.setPassword(user.userId, PASSWORD)
  assert.equal((await answer(e, 'signIn', 'ann@example.com', PASSWORD)).status, 'completed')
  const h = password.hash(PASSWORD, { memoryKib: 8192, iterations: 1 })
  assert.match(h, /^\$argon2id\$v=19\$m=8192,t=1,p=1\$/)
  assert.equal(password.verify(PASSWORD, h), true)
  assert.equal(password.verify('correct horse batterz', h), false)
  assert.match(password.hash(PASSWORD), /^\$argon2id\$v=19\$m=19456,t=2,p=1\$/)
  assert.throws(() => password.verify(PASSWORD, 'plain text'), (err) => err.code === 'invalid_request')
  const other = await e.createUser('old@example.com')
  await e.importPasswordHash(other.userId, h)
  assert.equal((await answer(e, 'signIn', 'old@example.com', PASSWORD)).status, 'completed')
  await e.removePassword(other.userId)
  assert.equal(shown(await answer(e, 'signIn', 'old@example.com', PASSWORD)), 'invalid_credentials')
  await assert.rejects(e.importPasswordHash(other.userId, '$1$md5$nope'), (err) => err.code === 'invalid_request')
  await assert.rejects(e.hasPassword('U-nobody'), (err) => err.code === 'user_not_found')
})
