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

/** `name=value` of a provider response's Set-Cookie for `name`, if any. */
function setCookie(r, name) {
  const found = r.headers.find(([k, v]) => k.toLowerCase() === 'set-cookie' && v.startsWith(`${name}=`))
  return found && found[1].split(';')[0]
}

/**
 * The browser at an idflow provider: authorize URL → its flow API ("submit" with `email`) →
 * the delivery of the answer (only to the browser that authorized) → the redirect URL.
 */
async function flowLogin(provider, authorizeUrl, email) {
  const r = await provider.handle('GET', authorizeUrl)
  const location = r.headers.find(([k]) => k.toLowerCase() === 'location')[1]
  // The flow API is where authorize is: at the base URL, or under the issuer
  // of one of several projects (Providers).
  const base = new URL(authorizeUrl, 'http://x').pathname.split('/oauth2/v1/authorize')[0]
  if (!new URL(location).pathname.startsWith(`${base}/login/`)) return location
  // The authorization request is bound to this browser's cookie.
  const cookie = setCookie(r, 'idflow_browser')
  const post = async (path, doc) =>
    JSON.parse((await provider.handle('POST', path, { 'content-type': 'application/json', cookie }, JSON.stringify(doc))).body)
  const s = await post(`${base}/v1/flow/start`, { request: new URL(location).searchParams.get('request') })
  const d = await post(`${base}/v1/flow/next`, { executionId: s.executionId, executionSecret: s.executionSecret, stepId: s.stepId, interactionId: 'submit', input: { email } })
  const done = await provider.handle('GET', d.redirect.url, { cookie })
  if (done.status !== 302) throw new Error(`the delivery of the sign-in answered ${done.status}`)
  return done.headers.find(([k]) => k.toLowerCase() === 'location')[1]
}

/** The names of `obj`'s fields in snake_case, sorted: the spelling of
 *  tests/vectors/result_shapes.json (idToken is id_token). */
module.exports = { loadVectors, b64u, serveProvider, flowLogin, setCookie }
