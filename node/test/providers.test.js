'use strict'
// Providers: several projects in one app, each at its own issuer with every
// endpoint under it and a store of its own; nothing of one is accepted by another.
const test = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { Providers, pkce } = require('..')
const { flowLogin } = require('./helpers')

const E2E = path.join(__dirname, '..', '..', 'tests', 'e2e')
const BASE = 'http://127.0.0.1:18181'
const CB = 'http://127.0.0.1/callback'

function projectJson(id) {
  const doc = JSON.parse(fs.readFileSync(path.join(E2E, 'project.json'), 'utf8'))
  return JSON.stringify({ ...doc, projectId: id, baseUrl: BASE })
}

const header = (r, name) => (r.headers.find(([k]) => k.toLowerCase() === name) || [])[1]
const json = (r) => JSON.parse(r.body.toString('utf8'))
const claims = (jwt) => JSON.parse(Buffer.from(jwt.split('.')[1], 'base64url').toString('utf8'))

async function tokens(p, pid, email) {
  const pair = pkce.generate()
  const q = new URLSearchParams({
    response_type: 'code', client_id: 'e2e', redirect_uri: CB, scope: 'openid offline_access',
    state: 's1', nonce: 'n1', code_challenge: pair.challenge, code_challenge_method: 'S256',
  })
  const landed = new URL(await flowLogin(p, `/${pid}/oauth2/v1/authorize?${q}`, email))
  assert.equal(landed.searchParams.get('iss'), `${BASE}/${pid}`)
  const body = new URLSearchParams({ grant_type: 'authorization_code', code: landed.searchParams.get('code'), redirect_uri: CB, client_id: 'e2e', code_verifier: pair.verifier })
  const r = await p.handle('POST', `/${pid}/oauth2/v1/token`, { 'content-type': 'application/x-www-form-urlencoded' }, body.toString())
  assert.equal(r.status, 200, r.body.toString())
  return json(r)
}

test('several projects are served apart, each under its issuer', async () => {
  const p = new Providers([projectJson('acme'), projectJson('globex')], { baseDir: E2E })
  assert.deepEqual(p.issuers, [`${BASE}/acme`, `${BASE}/globex`])
  assert.equal(p.provider('acme').issuer, `${BASE}/acme`)
  assert.equal(p.provider('initech'), null)
  const d = json(await p.handle('GET', '/globex/.well-known/openid-configuration'))
  assert.equal(d.token_endpoint, `${BASE}/globex/oauth2/v1/token`)
  assert.equal((await p.handle('GET', '/oauth2/v1/token')).status, 404)

  const a = await tokens(p, 'acme', 'ann@example.com')
  const g = await tokens(p, 'globex', 'ann@example.com')
  assert.notEqual(claims(a.id_token).sub, claims(g.id_token).sub, 'the same email is two users')
  const bearer = { authorization: `Bearer ${a.access_token}` }
  assert.equal((await p.handle('GET', '/acme/oauth2/v1/userinfo', bearer)).status, 200)
  const refused = await p.handle('GET', '/globex/oauth2/v1/userinfo', bearer)
  assert.equal(refused.status, 401)
  assert.match(header(refused, 'www-authenticate'), /invalid_token/)

  const text = p.metrics()
  assert.ok(text.includes('idflow_tokens_issued_total{project="acme",grant="authorization_code"} 1'), text)
  assert.ok(text.includes('idflow_tokens_issued_total{project="globex",grant="authorization_code"} 1'), text)
})

test('several projects never share a store', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'idflow-providers-'))
  try {
    const two = [projectJson('acme'), projectJson('globex')]
    assert.throws(() => new Providers(two, { baseDir: E2E, database: path.join(dir, 'one.db') }),
      (e) => e.code === 'config' && e.message.includes('{project}'))
    assert.throws(() => new Providers([projectJson('acme'), projectJson('acme')], { baseDir: E2E }), (e) => e.code === 'config')
    assert.throws(() => new Providers([], { baseDir: E2E }), (e) => e.code === 'config')
    const p = new Providers(two, { baseDir: E2E, database: path.join(dir, '{project}.db') })
    assert.equal(p.issuers.length, 2)
    assert.ok(fs.existsSync(path.join(dir, 'acme.db')) && fs.existsSync(path.join(dir, 'globex.db')))
    // A folder of project files.
    const folder = path.join(dir, 'projects')
    fs.mkdirSync(folder)
    for (const id of ['globex', 'acme']) {
      const doc = JSON.parse(projectJson(id))
      doc.flows = doc.flows.map((f) => path.resolve(E2E, f))
      fs.writeFileSync(path.join(folder, `${id}.json`), JSON.stringify(doc))
    }
    const fromFolder = Providers.fromFiles([folder], { baseUrl: 'https://id.example.com' })
    assert.deepEqual(fromFolder.issuers, ['https://id.example.com/acme', 'https://id.example.com/globex'])
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
})

test('one project is served as Provider serves it', async () => {
  const p = new Providers([projectJson('acme')], { baseDir: E2E })
  const d = json(await p.handle('GET', '/acme/.well-known/openid-configuration'))
  assert.equal(d.token_endpoint, `${BASE}/oauth2/v1/token`)
})
