'use strict'
// The npm layout: the `idflow` package carries no native code; each platform's
// module is its own package `idflow-<platform>` (node/npm/<platform>/), an
// optional dependency that npm installs only where os/cpu/libc match. These
// tests install copies of the entry point into throwaway folders and check
// which module the loader takes and what it says when none is there.
const test = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { execFileSync } = require('node:child_process')

const NODE = path.join(__dirname, '..')
const pkg = JSON.parse(fs.readFileSync(path.join(NODE, 'package.json'), 'utf8'))
const platformDirs = fs.readdirSync(path.join(NODE, 'npm')).sort()
const here = `linux-${process.arch}-${process.report.getReport().header.glibcVersionRuntime ? 'gnu' : 'musl'}`
const built = path.join(NODE, `idflow.${here}.node`)

// An app folder with `idflow` (the entry point only, no .node beside it) in
// node_modules, and optionally a platform package holding the built module.
const roots = []
test.after(() => roots.forEach((r) => fs.rmSync(r, { recursive: true, force: true })))

function app(withPlatformPackage) {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'idflow-npm-'))
  roots.push(root)
  const dir = path.join(root, 'node_modules', 'idflow')
  fs.mkdirSync(dir, { recursive: true })
  for (const f of pkg.files) fs.copyFileSync(path.join(NODE, f), path.join(dir, f))
  fs.copyFileSync(path.join(NODE, 'package.json'), path.join(dir, 'package.json'))
  if (withPlatformPackage) {
    const platformDir = path.join(root, 'node_modules', `idflow-${here}`)
    fs.mkdirSync(platformDir)
    fs.copyFileSync(path.join(NODE, 'npm', here, 'package.json'), path.join(platformDir, 'package.json'))
    fs.copyFileSync(built, path.join(platformDir, `idflow.${here}.node`))
  }
  return root
}

// Runs `script` as CommonJS in `cwd`; returns its stdout, or the error's JSON.
function run(cwd, script) {
  return execFileSync(process.execPath, ['-e', script], { cwd, encoding: 'utf8' })
}

const report = `
try { const m = require('idflow'); console.log(JSON.stringify({ ok: typeof m.jwt.sign, file: require.resolve('idflow') })) }
catch (e) { console.log(JSON.stringify({ code: e.code, message: e.message, package: e.package, platform: e.platform })) }`

test('one package folder per prebuilt platform, all with the package version', () => {
  assert.deepEqual(platformDirs, ['linux-arm64-gnu', 'linux-x64-gnu', 'linux-x64-musl'])
  const triples = { 'linux-x64-gnu': 'x86_64-unknown-linux-gnu', 'linux-arm64-gnu': 'aarch64-unknown-linux-gnu', 'linux-x64-musl': 'x86_64-unknown-linux-musl' }
  assert.deepEqual([...pkg.napi.targets].sort(), platformDirs.map((d) => triples[d]).sort())
  for (const dir of platformDirs) {
    const p = JSON.parse(fs.readFileSync(path.join(NODE, 'npm', dir, 'package.json'), 'utf8'))
    const [platform, cpu, abi] = dir.split('-')
    assert.equal(p.name, `idflow-${dir}`)
    assert.equal(p.version, pkg.version, `${dir} has the version of idflow`)
    assert.equal(p.main, `idflow.${dir}.node`)
    assert.deepEqual(p.files, [p.main])
    assert.deepEqual([p.os, p.cpu, p.libc], [[platform], [cpu], [abi === 'gnu' ? 'glibc' : 'musl']])
    assert.deepEqual(p.engines, pkg.engines)
  }
  // The source package names no platform packages (they do not exist until a
  // release); dist/build.sh adds them as optionalDependencies when it packs.
  assert.equal(pkg.optionalDependencies, undefined)
  assert.ok(!pkg.files.some((f) => f.endsWith('.node')), 'the idflow package ships no native module')
})

test('the loader takes the platform package when no source build is beside it', { skip: !fs.existsSync(built) && 'no source build' }, () => {
  const root = app(true)
  const out = JSON.parse(run(root, report))
  assert.equal(out.ok, 'function', JSON.stringify(out))
  // It really is the copy in node_modules/idflow-<platform> that was loaded.
  const loaded = run(root, `require('idflow'); console.log(Object.keys(require.cache).find((f) => f.endsWith('.node')))`).trim()
  assert.equal(loaded, path.join(fs.realpathSync(root), 'node_modules', `idflow-${here}`, `idflow.${here}.node`))
})

test('a missing platform package is named in the error', () => {
  const out = JSON.parse(run(app(false), report))
  assert.equal(out.code, 'ERR_IDFLOW_NATIVE_MISSING')
  assert.equal(out.package, `idflow-${here}`)
  assert.equal(out.platform, here)
  assert.match(out.message, new RegExp(`install the package "idflow-${here}"`))
  assert.match(out.message, /--omit=optional/)
})

test('a platform without a prebuilt module gets the list of those there are', () => {
  const out = JSON.parse(run(app(false), `Object.defineProperty(process, 'arch', { value: 'riscv64' })\n${report}`))
  assert.equal(out.code, 'ERR_IDFLOW_NATIVE_MISSING')
  assert.equal(out.platform, 'linux-riscv64-gnu')
  for (const dir of platformDirs) assert.match(out.message, new RegExp(dir))
  assert.match(out.message, /build from source/)
})

test('a platform package that is there but broken keeps its own error', () => {
  const root = app(true)
  fs.writeFileSync(path.join(root, 'node_modules', `idflow-${here}`, `idflow.${here}.node`), 'not an ELF file')
  const out = JSON.parse(run(root, report))
  assert.notEqual(out.code, 'ERR_IDFLOW_NATIVE_MISSING')
  assert.match(out.message, /invalid ELF header|file too short/)
})
