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

/** Serves `makeProvider(baseUrl)` over HTTP on 127.0.0.1: { server, base, provider }. */
async function serveProvider(makeProvider) {
  const http = require('node:http')
  const server = http.createServer()
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  const base = `http://127.0.0.1:${server.address().port}`
  const provider = makeProvider(base)
  server.on('request', (req, res) => {
    const chunks = []
    req.on('data', (c) => chunks.push(c))
    req.on('end', async () => {
      const r = await provider.handle(req.method, req.url, req.headers, Buffer.concat(chunks))
      res.statusCode = r.status
      for (const [k, v] of r.headers) res.appendHeader(k, v)
      res.end(r.body)
    })
  })
  return { server, base, provider }
}

/** The browser at an idflow provider: authorize URL → its flow API ("submit" with `email`) → the redirect URL. */
async function flowLogin(provider, authorizeUrl, email) {
  const r = await provider.handle('GET', authorizeUrl)
  const location = r.headers.find(([k]) => k.toLowerCase() === 'location')[1]
  const post = async (path, doc) => JSON.parse((await provider.handle('POST', path, { 'content-type': 'application/json' }, JSON.stringify(doc))).body)
  const s = await post('/v1/flow/start', { request: new URL(location).searchParams.get('request') })
  const d = await post('/v1/flow/next', { executionId: s.executionId, stepId: s.stepId, interactionId: 'submit', input: { email } })
  return d.redirect.url
}

module.exports = { loadVectors, b64u, serveProvider, flowLogin }
