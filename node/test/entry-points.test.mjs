// The package's entry points: ESM `import` and CommonJS `require` by the
// package's own name (the "exports" map) give the very same objects.
import test from 'node:test'
import assert from 'node:assert/strict'
import { createRequire } from 'node:module'
import idflow, { jwt, Key, pkce, ERROR_CODES, Provider, SessionManager } from 'idflow'

const require = createRequire(import.meta.url)

test('import and require share one module', () => {
  const cjs = require('idflow')
  assert.equal(idflow, cjs)
  assert.equal(jwt, cjs.jwt)
  assert.equal(Key, cjs.Key)
  assert.equal(Provider, cjs.Provider)
  assert.equal(SessionManager, cjs.SessionManager)
  for (const name of Object.keys(cjs).filter((n) => !n.startsWith('_'))) {
    assert.ok(name in idflow, name)
  }
})

test('the ESM entry works end to end', () => {
  const key = Key.generate('EdDSA')
  const token = jwt.sign({ sub: 'esm', exp: Math.floor(Date.now() / 1000) + 60 }, key)
  assert.equal(jwt.verify(token, key.publicKey(), { algorithms: ['EdDSA'] }).sub, 'esm')
  const { verifier, challenge } = pkce.generate()
  assert.ok(pkce.verify(verifier, challenge))
  assert.ok(ERROR_CODES.includes('rate_limited'))
})

test('only the entry points are exported: no deep imports', () => {
  assert.throws(() => require('idflow/index.js'), { code: 'ERR_PACKAGE_PATH_NOT_EXPORTED' })
  assert.equal(require('idflow/package.json').name, 'idflow')
})
