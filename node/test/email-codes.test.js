'use strict'
// One-time codes by email through tests/flows/email-code.json, mailed to a
// real SMTP server on 127.0.0.1 (the smtp-server package), with the results
// the Python and Rust suites get.
const test = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const path = require('node:path')
const { SMTPServer } = require('smtp-server')
const { FlowEngine, Key, jwt } = require('..')

const FLOWS = path.join(__dirname, '..', '..', 'tests', 'flows')

async function startInbox() {
  const messages = []
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS'],
    logger: false,
    onData(stream, session, callback) {
      let text = ''
      stream.on('data', (c) => { text += c })
      stream.on('end', () => {
        messages.push({ to: session.envelope.rcptTo.map((r) => r.address), text })
        callback()
      })
    },
  })
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    messages,
    port: server.server.address().port,
    lastCode() { return /Subject: .*?(\d{6})/.exec(messages[messages.length - 1].text)[1] },
    // The link in the newest message (quoted-printable decoded) and its query.
    lastLink() {
      const text = messages[messages.length - 1].text.replace(/=\r?\n/g, '').replace(/=([0-9A-F]{2})/g, (_, h) => String.fromCharCode(parseInt(h, 16)))
      const link = new URL(/https?:\/\/\S+/.exec(text)[0])
      return { link: link.href, execution: link.searchParams.get('execution'), token: link.searchParams.get('link') }
    },
    close: () => new Promise((resolve) => server.close(resolve)),
  }
}

function engine(inbox) {
  const doc = JSON.parse(fs.readFileSync(path.join(FLOWS, 'password-project.json'), 'utf8'))
  doc.flows = ['email-code.json', 'password.json', 'step-up.json', 'magic-link.json']
  doc.email = { transport: 'smtp', from: 'Example <no-reply@example.com>', smtp: { host: '127.0.0.1', port: inbox.port, tls: 'none' } }
  return new FlowEngine(JSON.stringify(doc), Key.generate('ES256'), { baseDir: FLOWS })
}

async function ask(e, address) {
  const s = await e.start('email-code')
  const r = await e.next(s.executionId, 'ask', 'send', { email: address })
  assert.equal(r.stepId, 'enter')
  return s.executionId
}

test('a mailed code signs in once, verifies the email, and wrong codes are refused', async (t) => {
  const inbox = await startInbox()
  t.after(() => inbox.close())
  const e = engine(inbox)
  const execution = await ask(e, 'Kim@Example.com')
  assert.deepEqual(inbox.messages[0].to, ['kim@example.com'])
  const code = inbox.lastCode()
  const wrong = code === '000000' ? '000001' : '000000'
  assert.equal((await e.next(execution, 'enter', 'signIn', { code: wrong })).error.code, 'invalid_code')
  const done = await e.next(execution, 'enter', 'signIn', { code })
  assert.equal(done.status, 'completed')
  assert.deepEqual(jwt.decodeUnverified(done.authInfo.sessionJwt).claims.amr, ['otp'])
  const [user] = await e.searchUsers({ text: 'kim@example.com' })
  assert.equal(user.verifiedEmail, true)
})

test('a code resets a forgotten password', async (t) => {
  const inbox = await startInbox()
  t.after(() => inbox.close())
  const e = engine(inbox)
  const pw = await e.start('password')
  assert.equal((await e.next(pw.executionId, 'welcome', 'signUp', { email: 'pat@example.com', password: 'old long password' })).status, 'completed')
  const execution = await ask(e, 'pat@example.com')
  const done = await e.next(execution, 'enter', 'reset', { code: inbox.lastCode(), newPassword: 'a new long password' })
  assert.equal(done.status, 'completed')
  const again = await e.start('password')
  assert.equal((await e.next(again.executionId, 'welcome', 'signIn', { email: 'pat@example.com', password: 'a new long password' })).status, 'completed')
})

test('a password sign-in is stepped up to a mailed code (tests/flows/step-up.json)', async (t) => {
  const inbox = await startInbox()
  t.after(() => inbox.close())
  const e = engine(inbox)
  const user = await e.createUser('ann@example.com')
  await e.setPassword(user.userId, 'a long enough secret')
  const s = await e.start('step-up')
  const r = await e.next(s.executionId, 'ask', 'submit', { email: 'ann@example.com', password: 'a long enough secret' })
  assert.equal(r.stepId, 'enter')
  const done = await e.next(s.executionId, 'enter', 'submit', { code: inbox.lastCode() })
  assert.equal(done.status, 'completed')
  assert.deepEqual(jwt.decodeUnverified(done.authInfo.sessionJwt).claims.amr, ['pwd', 'otp', 'mfa'])
})

test('codes go through a mail API by HTTP (the http transport)', async (t) => {
  const http = require('node:http')
  const received = []
  const api = http.createServer((req, res) => {
    let text = ''
    req.on('data', (c) => { text += c })
    req.on('end', () => {
      received.push({ path: req.url, auth: req.headers.authorization, body: JSON.parse(text) })
      res.writeHead(202, { 'content-type': 'application/json' }).end('{"id":"msg-1"}')
    })
  })
  await new Promise((resolve) => api.listen(0, '127.0.0.1', resolve))
  t.after(() => new Promise((resolve) => api.close(resolve)))
  const doc = JSON.parse(fs.readFileSync(path.join(FLOWS, 'password-project.json'), 'utf8'))
  doc.flows = ['email-code.json', 'password.json']
  doc.connectors = [{ id: 'mailer', type: 'http', baseUrl: `http://127.0.0.1:${api.address().port}`, auth: { type: 'bearer', token: 'k-1' } }]
  doc.email = { transport: 'http', from: 'no-reply@example.com', http: { connector: 'mailer', endpoint: '/send', body: { to: '{{to}}', subject: '{{subject}}', text: '{{text}}' } } }
  const e = new FlowEngine(JSON.stringify(doc), Key.generate('ES256'), { baseDir: FLOWS })
  const execution = await ask(e, 'lee@example.com')
  const { path: sentTo, auth, body } = received[received.length - 1]
  assert.equal(sentTo, '/send')
  assert.equal(auth, 'Bearer k-1')
  assert.deepEqual(Object.keys(body).sort(), ['subject', 'text', 'to'])
  assert.equal(body.to, 'lee@example.com')
  const code = /\d{6}/.exec(body.subject)[0]
  assert.ok(body.text.includes(code))
  assert.equal((await e.next(execution, 'enter', 'signIn', { code })).status, 'completed')
})

async function askLink(e, inbox, address, how = 'send') {
  const s = await e.start('magic-link')
  const r = await e.next(s.executionId, 'ask', how, { email: address })
  assert.equal(r.stepId, 'wait')
  const { link, execution, token } = inbox.lastLink()
  assert.ok(link.startsWith('https://app.example.com/sign-in/link?'), link)
  assert.equal(execution, s.executionId)
  return { execution, token }
}

test('a mailed link (tests/flows/magic-link.json) signs in once and only where it was asked', async (t) => {
  const inbox = await startInbox()
  t.after(() => inbox.close())
  const e = engine(inbox)
  const { execution, token } = await askLink(e, inbox, 'Lin@Example.com')
  await assert.rejects(e.approveLink(execution, token), { code: 'access_denied' })
  const done = await e.next(execution, 'wait', 'continue', { token })
  assert.equal(done.status, 'completed')
  assert.deepEqual(jwt.decodeUnverified(done.authInfo.sessionJwt).claims.amr, ['otp'])
  const other = await askLink(e, inbox, 'lin@example.com')
  assert.equal((await e.next(other.execution, 'wait', 'continue', { token })).error.code, 'invalid_code')
})

test('a cross-device link approves the sign-in that asked', async (t) => {
  const inbox = await startInbox()
  t.after(() => inbox.close())
  const e = engine(inbox)
  const { execution, token } = await askLink(e, inbox, 'dee@example.com', 'sendAnyDevice')
  assert.equal((await e.next(execution, 'wait', 'continue', {})).error.code, 'invalid_request')
  await assert.rejects(e.approveLink(execution, 'Lwrong'), { code: 'invalid_code' })
  await e.approveLink(execution, token)
  await assert.rejects(e.approveLink(execution, token), { code: 'invalid_code' })
  assert.equal((await e.next(execution, 'wait', 'continue', {})).status, 'completed')
})
