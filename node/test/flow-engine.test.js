'use strict'
const test = require('node:test')
const assert = require('node:assert/strict')
const http = require('node:http')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { FlowEngine, Key, jwt } = require('..')

const FLOWS = path.join(__dirname, '..', '..', 'tests', 'flows')
const RANDOM_USER = { first_name: 'Jerrold', email: 'jerrold.kerluke@email.com', date_of_birth: '1979-10-03' }

function startApi() {
  const server = http.createServer((req, res) => {
    const ok = req.url.startsWith('/api/users')
    res.writeHead(ok ? 200 : 500, { 'content-type': 'application/json' })
    res.end(JSON.stringify(ok ? RANDOM_USER : { error: 'boom' }))
  })
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)))
}

const project = (port) =>
  JSON.stringify({
    projectId: 'local',
    baseUrl: 'http://127.0.0.1:8080',
    connectors: [{ id: 'random', type: 'http', baseUrl: `http://127.0.0.1:${port}/api` }],
    flows: ['random-user.json', 'sign-up-or-in.json'],
  })

test('the documented connector flow, screens and persistence', async () => {
  const server = await startApi()
  try {
    const port = server.address().port
    const key = Key.generate('ES256')
    const engine = new FlowEngine(project(port), key, { baseDir: FLOWS })
    const r = await engine.start('random-user')
    assert.equal(r.status, 'completed')
    assert.equal(jwt.decodeUnverified(r.authInfo.sessionJwt).header.typ, 'session+jwt')
    const claims = jwt.verify(r.authInfo.sessionJwt, key.publicKey(), { algorithms: ['ES256'], issuer: 'http://127.0.0.1:8080/local', audience: 'local' })
    assert.equal(claims.dob, '1979-10-03')
    assert.equal(claims.aud, 'local')
    assert.equal(claims.amr, undefined, 'no step verified anything (RFC 8176)')
    const t = await engine.testConnector('random', 'GET', '/users?size=1')
    assert.equal(t.status, 200)
    assert.equal(t.body.first_name, 'Jerrold')
    const bad = await engine.testConnector('random', 'GET', '/broken')
    assert.equal(bad.ok, false)
    assert.equal(bad.error.code, 'connector_failed')

    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'idflow-node-'))
    const database = path.join(dir, 'idflow.db')
    const first = new FlowEngine(project(port), key, { baseDir: FLOWS, database })
    const w = await first.start('sign-up-or-in')
    assert.equal(w.status, 'waiting')
    assert.equal(w.screen.inputs[0].name, 'email')
    const again = new FlowEngine(project(port), key, { baseDir: FLOWS, database })
    const done = await again.next(w.executionId, w.stepId, 'submit', { email: 'node@example.com' })
    assert.equal(done.status, 'completed')
    assert.deepEqual(done.authInfo.user.loginIds, ['node@example.com'])
    await assert.rejects(again.next(w.executionId, w.stepId, 'submit', { email: 'x@example.com' }), { code: 'invalid_request' })
    await assert.rejects(engine.start('nope'), { code: 'flow_not_found' })
    assert.throws(() => new FlowEngine('{"projectId":"x"}', key), { code: 'config' })
    fs.rmSync(dir, { recursive: true, force: true })
  } finally {
    await new Promise((r) => server.close(r))
  }
})

test('user management', async () => {
  const engine = new FlowEngine('{"projectId":"p","baseUrl":"http://127.0.0.1:8080"}', Key.generate('ES256'))
  const ann = await engine.createUser('Ann@Example.com', { name: 'Ann', customAttributes: { plan: 'pro' } })
  assert.deepEqual(ann.loginIds, ['ann@example.com'])
  await assert.rejects(engine.createUser('ann@example.com'), { code: 'user_exists' })
  assert.equal((await engine.getUser(ann.userId)).name, 'Ann')
  assert.equal((await engine.updateUser(ann.userId, { status: 'disabled' })).status, 'disabled')
  await assert.rejects(engine.updateUser(ann.userId, { colour: 'red' }), { code: 'invalid_request' })
  await engine.createUser('bob@example.com')
  assert.equal((await engine.searchUsers({ text: 'EXAMPLE' })).length, 2)
  assert.equal((await engine.searchUsers({ status: 'disabled' })).length, 1)
  assert.equal(await engine.deleteUser(ann.userId), null)
  await assert.rejects(engine.getUser(ann.userId), { code: 'user_not_found' })
})

test('bring your own IdP: a login API as a connector', async () => {
  let reply = { status: 200, body: { valid: true, displayName: 'Ann Example', department: 'R&D' } }
  const seen = []
  const server = http.createServer((req, res) => {
    const chunks = []
    req.on('data', (c) => chunks.push(c))
    req.on('end', () => {
      seen.push(JSON.parse(Buffer.concat(chunks).toString('utf8')))
      res.writeHead(reply.status, { 'content-type': 'application/json' })
      res.end(JSON.stringify(reply.body))
    })
  })
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  try {
    const doc = JSON.stringify({ projectId: 'local', baseUrl: 'http://127.0.0.1:8080',
      connectors: [{ id: 'auth', type: 'http', baseUrl: `http://127.0.0.1:${server.address().port}/auth` }], flows: ['byo-idp.json'] })
    const key = Key.generate('ES256')
    const engine = new FlowEngine(doc, key, { baseDir: FLOWS })
    const ann = await engine.createUser('ann@example.com')
    let s = await engine.start('byo-idp')
    let r = await engine.next(s.executionId, 'login', 'submit', { email: 'nobody@example.com', password: 'pw' })
    assert.equal(r.status, 'failed')
    assert.equal(r.error.code, 'user_not_found')
    s = await engine.start('byo-idp')
    r = await engine.next(s.executionId, 'login', 'submit', { email: 'Ann@Example.com', password: 'p&ss "word"' })
    assert.equal(r.status, 'completed')
    assert.equal(r.authInfo.user.userId, ann.userId)
    assert.equal(r.authInfo.user.name, 'Ann Example')
    assert.equal(r.authInfo.user.customAttributes.department, 'R&D')
    const claims = jwt.verify(r.authInfo.sessionJwt, key.publicKey(), { algorithms: ['ES256'], issuer: 'http://127.0.0.1:8080/local', audience: 'local' })
    assert.equal(claims.amr, undefined, 'the API checked the password, not idflow: no RFC 8176 method to name')
    assert.deepEqual(seen.at(-1), { username: 'Ann@Example.com', password: 'p&ss "word"' })
    reply = { status: 200, body: { valid: false } }
    s = await engine.start('byo-idp')
    r = await engine.next(s.executionId, 'login', 'submit', { email: 'ann@example.com', password: 'x' })
    assert.equal(r.status, 'completed')
    assert.equal(r.authInfo, undefined)
    reply = { status: 500, body: {} }
    s = await engine.start('byo-idp')
    r = await engine.next(s.executionId, 'login', 'submit', { email: 'ann@example.com', password: 'x' })
    assert.equal(r.authInfo, undefined)
  } finally {
    server.close()
  }
})
