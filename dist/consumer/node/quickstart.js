'use strict'
// Writes the README's js blocks into the current folder (an app that has
// installed the packed idflow) as CommonJS (quickstart.cjs), as an ES module
// (quickstart.mjs) and as TypeScript (quickstart.mts), for dist/check.sh.
// Usage: node quickstart.js README.md PLATFORM (the platform package that
// must provide the native module, e.g. linux-x64-gnu).
const fs = require('node:fs')

const [readmePath, platform] = process.argv.slice(2)
const readme = fs.readFileSync(readmePath, 'utf8')
const blocks = [...readme.matchAll(/```js\n([\s\S]*?)```/g)].map((m) => m[1])
if (blocks.length === 0) throw new Error('the README has no js block')
const cjs = blocks.join('\n')
// The quickstart's `const X = require('m')` lines become imports.
const esm = cjs.replace(/^const (.+?) = require\(('[^']+')\)$/gm, 'import $1 from $2')
if (/require\(/.test(esm)) throw new Error('a require() that the ES module form cannot translate')
// The CommonJS run also checks where the native module came from.
const whence = `
const loaded = Object.keys(require.cache).filter((f) => f.endsWith('.node'))
if (loaded.length !== 1 || !loaded[0].endsWith('/node_modules/idflow-${platform}/idflow.${platform}.node')) {
  throw new Error('the native module came from ' + loaded)
}
`
fs.writeFileSync('quickstart.cjs', cjs + whence)
fs.writeFileSync('quickstart.mjs', esm)
fs.writeFileSync('quickstart.mts', esm)
