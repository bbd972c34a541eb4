'use strict'
const fs = require('node:fs')
const path = require('node:path')

const VECTORS = path.join(__dirname, '..', '..', 'tests', 'vectors')

function loadVectors(name) {
  return JSON.parse(fs.readFileSync(path.join(VECTORS, name), 'utf8'))
}

function b64u(text) {
  return Buffer.from(text, 'base64url')
}

module.exports = { loadVectors, b64u }
