'use strict'
// The README's Node example is run as written, so it cannot rot.
const test = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const path = require('node:path')
const vm = require('node:vm')

// The repository's README and the npm package's (node/README.md).
for (const readmePath of [path.join(__dirname, '..', '..', 'README.md'), path.join(__dirname, '..', 'README.md')]) test(`${path.relative(path.join(__dirname, '..', '..'), readmePath)} js blocks run`, () => {
  const readme = fs.readFileSync(readmePath, 'utf8')
  const blocks = [...readme.matchAll(/```js\n([\s\S]*?)```/g)].map((m) => m[1])
  assert.ok(blocks.length > 0)
  for (const code of blocks) {
    const failures = []
    const sandbox = {
      require: (name) => require(name === 'idflow' ? '..' : name),
      console: { ...console, assert: (cond, ...msg) => { if (!cond) failures.push(msg.join(' ') || 'console.assert failed') } },
      Date,
      Math,
    }
    vm.runInNewContext(code, sandbox, { filename: readmePath })
    assert.deepEqual(failures, [])
  }
})

test('README social login snippets are the tested files', () => {
  const readme = fs.readFileSync(path.join(__dirname, '..', '..', 'README.md'), 'utf8')
  for (const name of ['social-login.js', 'session-manager.js']) {
    const file = fs.readFileSync(path.join(__dirname, '..', '..', 'examples', 'express', name), 'utf8')
    assert.ok(readme.includes('```javascript\n' + file + '```'), `README shows examples/express/${name} as it is`)
  }
})
