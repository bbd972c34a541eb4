'use strict'
// index.d.ts as a TypeScript app sees it: a consumer project with
// `strict` and Node's module resolution imports idflow by name, from an ES
// module and from CommonJS, and `tsc --noEmit` must accept both files and
// refuse a misuse.
const test = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { spawnSync } = require('node:child_process')

const NODE_DIR = path.join(__dirname, '..')

function consumer(files) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'idflow-ts-'))
  fs.mkdirSync(path.join(dir, 'node_modules', '@types'), { recursive: true })
  fs.symlinkSync(NODE_DIR, path.join(dir, 'node_modules', 'idflow'), 'dir')
  fs.symlinkSync(path.join(NODE_DIR, 'node_modules', '@types', 'node'), path.join(dir, 'node_modules', '@types', 'node'), 'dir')
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }))
  fs.writeFileSync(path.join(dir, 'tsconfig.json'), JSON.stringify({
    compilerOptions: { strict: true, noEmit: true, module: 'nodenext', moduleResolution: 'nodenext', target: 'es2022', skipLibCheck: false, types: ['node'] },
    include: Object.keys(files),
  }))
  for (const [name, text] of Object.entries(files)) fs.writeFileSync(path.join(dir, name), text)
  const tsc = path.join(NODE_DIR, 'node_modules', 'typescript', 'bin', 'tsc')
  const out = spawnSync(process.execPath, [tsc, '-p', dir], { encoding: 'utf8' })
  fs.rmSync(dir, { recursive: true, force: true })
  return { status: out.status, output: out.stdout + out.stderr }
}

test('a strict TypeScript consumer type-checks against index.d.ts from ESM and CommonJS', () => {
  const { status, output } = consumer({
    'esm.mts': `import idflow, { jwt, Key, pkce, type VerifyOptions } from 'idflow'
const key: Key = Key.generate('EdDSA')
const options: VerifyOptions = { algorithms: ['EdDSA'] }
const token: string = jwt.sign({ sub: 'u1', exp: 4102444800 }, key)
const claims = jwt.verify(token, key.publicKey(), options)
const pair = pkce.generate()
export const ok: boolean = pkce.verify(pair.verifier, pair.challenge) && typeof claims.sub === 'string' && idflow.jwt === jwt
`,
    'cjs.cts': `import idflow = require('idflow')
const key = idflow.Key.generate('ES256')
export const token: string = idflow.jwt.sign({ sub: 'u2' }, key)
`,
  })
  assert.equal(status, 0, output)
})

test('the types refuse a misuse', () => {
  const { status, output } = consumer({
    'bad.mts': `import { jwt, Key } from 'idflow'
const key = Key.generate('EdDSA')
jwt.verify(42, key.publicKey(), { algorithms: ['EdDSA'] })
`,
  })
  assert.notEqual(status, 0)
  assert.match(output, /bad\.mts.*error TS2345/s)
})
