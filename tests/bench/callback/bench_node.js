'use strict'
// The client-side cost of one OIDC callback, network excluded: state check,
// token-response parse, id_token validation (RS256, iss, aud, exp, nonce,
// at_hash). idflow's OidcClient.completeCallback vs openid-client's
// authorizationCodeGrant with a customFetch that answers from memory.
// Prints one JSON line per library: {"lib", "ops"}.
const path = require('node:path')
const { OidcClient, Key, KeySet, jwt } = require(path.join(__dirname, '..', '..', '..', 'node'))

const ISS = 'https://op.example'
const SECONDS = Number(process.env.BENCH_SECONDS || 1)

function atHash(token) {
  const d = require('node:crypto').createHash('sha256').update(token).digest()
  return d.subarray(0, 16).toString('base64url')
}

// Synchronous calls are timed synchronously, Promises awaited one by one.
async function measure(fn) {
  const isAsync = fn() instanceof Promise
  const once = isAsync ? fn : null
  for (let i = 0; i < 200; i++) isAsync ? await once() : fn() // warm up
  let n = 0
  const end = process.hrtime.bigint() + BigInt(Math.round(SECONDS * 1e9))
  while (process.hrtime.bigint() < end) {
    if (isAsync) for (let i = 0; i < 50; i++) await once()
    else for (let i = 0; i < 50; i++) fn()
    n += 50
  }
  return n / SECONDS
}

async function main() {
  const key = Key.generate('RS256')
  const jwks = new KeySet([key.publicKey()]).toJwks()
  const now = Math.floor(Date.now() / 1000)
  const idflowClient = new OidcClient({ clientId: 'rp', redirectUri: 'https://rp.example/cb', clientSecret: 'rp-secret-0123456789abcdef',
    issuer: ISS, authorizationEndpoint: `${ISS}/authorize`, tokenEndpoint: `${ISS}/token`, jwksUri: `${ISS}/jwks` })
  const request = idflowClient.authorizationRequest()
  const accessToken = 'at-' + 'x'.repeat(40)
  const idToken = jwt.sign({ iss: ISS, sub: 'u1', aud: 'rp', iat: now, exp: now + 3600, nonce: request.nonce, at_hash: atHash(accessToken) }, key)
  const body = Buffer.from(JSON.stringify({ access_token: accessToken, token_type: 'Bearer', expires_in: 3600, id_token: idToken }))
  const callback = `https://rp.example/cb?code=c0de&state=${request.state}&iss=${encodeURIComponent(ISS)}`
  const keys = KeySet.fromJwks(jwks)
  const idflowOps = await measure(() => idflowClient.completeCallback(callback, request, 200, body, keys))
  console.log(JSON.stringify({ lib: 'idflow', ops: idflowOps }))

  // The peers live in tests/bench/node (npm ci there).
  const peer = require.resolve('openid-client', { paths: [path.join(__dirname, '..', 'node')] })
  const oc = await import(require('node:url').pathToFileURL(peer).href)
  const metadata = { issuer: ISS, authorization_endpoint: `${ISS}/authorize`, token_endpoint: `${ISS}/token`, jwks_uri: `${ISS}/jwks`,
    id_token_signing_alg_values_supported: ['RS256'], authorization_response_iss_parameter_supported: true }
  const config = new oc.Configuration(metadata, 'rp', { redirect_uris: ['https://rp.example/cb'] }, oc.ClientSecretPost('rp-secret-0123456789abcdef'))
  const jwksText = JSON.stringify(jwks)
  config[oc.customFetch] = async (url) => url.endsWith('/jwks')
    ? new Response(jwksText, { status: 200, headers: { 'content-type': 'application/json' } })
    : new Response(body, { status: 200, headers: { 'content-type': 'application/json', 'cache-control': 'no-store' } })
  const checks = { pkceCodeVerifier: request.codeVerifier, expectedState: request.state, expectedNonce: request.nonce, idTokenExpected: true }
  const url = new URL(callback)
  const peerOps = await measure(() => oc.authorizationCodeGrant(config, url, checks))
  console.log(JSON.stringify({ lib: 'openid-client', ops: peerOps }))
}

main().catch((e) => { console.error(e); process.exit(1) })
