'use strict'
// Provider on PostgreSQL (`database: 'postgres://...'`): two providers on one
// database, as two app servers behind a balancer, are one provider; several
// projects share a database with a schema each. The test command starts a
// private PostgreSQL (IDFLOW_TEST_POSTGRES); without it the tests are skipped,
// except in CI.
const test = require('node:test')
const assert = require('node:assert/strict')
const crypto = require('node:crypto')
const fs = require('node:fs')
const path = require('node:path')
const { Provider, Providers, pkce } = require('..')
const { flowLogin } = require('./helpers')

const URL_ = process.env.IDFLOW_TEST_POSTGRES
if (!URL_ && process.env.CI === 'true') throw new Error('IDFLOW_TEST_POSTGRES is not set: tests/run.sh starts a private PostgreSQL for these tests')
const skip = URL_ ? false : 'IDFLOW_TEST_POSTGRES is not set (bash tests/run.sh starts a private PostgreSQL)'

const E2E = path.join(__dirname, '..', '..', 'tests', 'e2e')
const BASE = 'http://127.0.0.1:18181'
const CB = 'http://127.0.0.1/callback'
const DATA_KEY = 'AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8='

const database = (schema) => `${URL_}${URL_ && URL_.includes('?') ? '&' : '?'}schema=${schema}`
function project(id, key = true) {
  const doc = JSON.parse(fs.readFileSync(path.join(E2E, 'project.json'), 'utf8'))
  return JSON.stringify({ ...doc, projectId: id, baseUrl: BASE, ...(key ? { encryption: { key: DATA_KEY } } : {}) })
}
const json = (r) => JSON.parse(r.body.toString('utf8'))
const FORM = { 'content-type': 'application/x-www-form-urlencoded' }

test('two providers on one database are one provider', { skip }, async () => {
  const db = database(`node_${crypto.randomBytes(4).toString('hex')}`)
  const a = new Provider(project('acme'), { baseDir: E2E, database: db })
  const b = new Provider(project('acme'), { baseDir: E2E, database: db })
  assert.deepEqual(json(await a.handle('GET', '/acme/.well-known/jwks.json')), json(await b.handle('GET', '/acme/.well-known/jwks.json')))
  const pair = pkce.generate()
  const q = new URLSearchParams({ response_type: 'code', client_id: 'e2e', redirect_uri: CB, scope: 'openid offline_access', state: 's', nonce: 'n', code_challenge: pair.challenge, code_challenge_method: 'S256' })
  // The sign-in on a; its code redeemed on b, its refresh on a, userinfo on b.
  const landed = new URL(await flowLogin(a, `/oauth2/v1/authorize?${q}`, 'pg@example.com'))
  const code = { grant_type: 'authorization_code', code: landed.searchParams.get('code'), redirect_uri: CB, client_id: 'e2e', code_verifier: pair.verifier }
  const r = await b.handle('POST', '/oauth2/v1/token', FORM, new URLSearchParams(code).toString())
  assert.equal(r.status, 200, r.body.toString())
  const refreshed = await a.handle('POST', '/oauth2/v1/token', FORM, new URLSearchParams({ grant_type: 'refresh_token', refresh_token: json(r).refresh_token, client_id: 'e2e' }).toString())
  assert.equal(refreshed.status, 200)
  const bearer = { authorization: `Bearer ${json(refreshed).access_token}` }
  assert.equal((await b.handle('GET', '/oauth2/v1/userinfo', bearer)).status, 200)
  // The code replayed on the other server: refused, and its grant revoked everywhere.
  const again = await a.handle('POST', '/oauth2/v1/token', FORM, new URLSearchParams(code).toString())
  assert.equal(json(again).error, 'invalid_grant')
  assert.equal((await b.handle('GET', '/oauth2/v1/userinfo', bearer)).status, 401)
})

test('a PostgreSQL store needs the project\'s data key', { skip }, () => {
  assert.throws(() => new Provider(project('acme', false), { baseDir: E2E, database: database(`node_${crypto.randomBytes(4).toString('hex')}`) }),
    (e) => e.code === 'config' && e.message.includes('encryption.key'))
})

test('several projects share a database with a schema each', { skip }, async () => {
  const run = crypto.randomBytes(4).toString('hex')
  const p = new Providers([project('acme'), project('globex')], { baseDir: E2E, database: database(`node${run}_{project}`) })
  const acme = new Provider(project('acme'), { baseDir: E2E, database: database(`node${run}_acme`) })
  assert.deepEqual(json(await acme.handle('GET', '/acme/.well-known/jwks.json')), json(await p.handle('GET', '/acme/.well-known/jwks.json')))
  assert.notDeepEqual(json(await p.handle('GET', '/globex/.well-known/jwks.json')), json(await p.handle('GET', '/acme/.well-known/jwks.json')))
})
