'use strict'
const test = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const path = require('node:path')
const { validateFlow } = require('..')

const FLOWS = path.join(__dirname, '..', '..', 'tests', 'flows')
const read = (name) => fs.readFileSync(path.join(FLOWS, name), 'utf8')

test('valid flows have no problems', () => {
  assert.deepEqual(validateFlow(read('random-user.json')), [])
  assert.deepEqual(validateFlow(read('sign-up-or-in.json')), [])
})

test('every problem is reported with step and field', () => {
  const problems = validateFlow(read('invalid.json'))
  const expected = JSON.parse(read('invalid.expected.json')).problems
  const key = ([s, f]) => `${s ?? ''}|${f}`
  assert.deepEqual(problems.map((p) => key([p.step, p.field])).sort(), expected.map(key).sort())
  assert.ok(problems.every((p) => p.message.length > 0))
})

test('garbage is one problem, not an exception', () => {
  assert.match(validateFlow('{not json')[0].message, /not valid JSON/)
})
