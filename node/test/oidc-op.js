'use strict'
// A real OP nobody here wrote: the npm `oidc-provider` on 127.0.0.1, with a
// small interaction handler that signs alice in, and a cookie-keeping
// browser. Shared by the OidcClient and SessionManager tests.
const http = require('node:http')
const { Key } = require('..')

const CB = 'http://127.0.0.1:5555/cb'
const SECRET = 'rp-secret-0123456789abcdef'

async function startOp() {
  const { default: Provider } = await import('oidc-provider')
  const server = http.createServer()
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  const issuer = `http://127.0.0.1:${server.address().port}`
  const signing = Key.generate('RS256')
  // The private_key_jwt client's key: its public half is registered below.
  const rpKey = Key.generate('ES256')
  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: 'rp', client_secret: SECRET, redirect_uris: [CB], post_logout_redirect_uris: ['http://127.0.0.1:5555/bye'],
        grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'], token_endpoint_auth_method: 'client_secret_basic',
      },
      {
        client_id: 'rp-jwt', redirect_uris: [CB], grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'],
        token_endpoint_auth_method: 'private_key_jwt', token_endpoint_auth_signing_alg: 'ES256', jwks: { keys: [rpKey.publicKey().toJwk()] },
      },
      {
        client_id: 'rp-post', client_secret: SECRET, redirect_uris: [CB], grant_types: ['authorization_code'],
        response_types: ['code'], token_endpoint_auth_method: 'client_secret_post',
      },
    ],
    jwks: { keys: [signing.toJwk(true)] },
    cookies: { keys: ['test-cookie-key-0123456789'] },
    features: { devInteractions: { enabled: false }, revocation: { enabled: true }, rpInitiatedLogout: { enabled: true } },
    claims: { openid: ['sub'], email: ['email', 'email_verified'] },
    scopes: ['openid', 'email', 'offline_access'],
    issueRefreshToken: async (ctx, client) => client.grantTypeAllowed('refresh_token'),
    findAccount: async (ctx, id) => ({ accountId: id, claims: async () => ({ sub: id, email: `${id}@example.com`, email_verified: true }) }),
    interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  })
  const callback = provider.callback()
  const counts = { token: 0 }
  server.on('request', async (req, res) => {
    if (req.method === 'POST' && req.url === '/token') counts.token++
    if (req.url.startsWith('/interaction/')) {
      // The "login page": sign alice in and grant what was asked.
      try {
        const details = await provider.interactionDetails(req, res)
        const grant = new provider.Grant({ accountId: 'alice', clientId: details.params.client_id })
        grant.addOIDCScope(details.params.scope)
        const grantId = await grant.save()
        await provider.interactionFinished(req, res, { login: { accountId: 'alice' }, consent: { grantId } }, { mergeWithLastSubmission: false })
      } catch (e) {
        res.statusCode = 500
        res.end(String(e))
      }
      return
    }
    callback(req, res)
  })
  return { server, issuer, provider, counts, rpKey }
}

/** A browser with a cookie jar: follows redirects until the client's redirect URI. */
async function browse(url) {
  const jar = new Map()
  for (let i = 0; i < 10; i++) {
    if (url.startsWith(CB) || url.startsWith('http://127.0.0.1:5555/')) return url
    const cookie = [...jar].map(([k, v]) => `${k}=${v}`).join('; ')
    const r = await fetch(url, { redirect: 'manual', headers: cookie ? { cookie } : {} })
    for (const c of r.headers.getSetCookie()) {
      const [pair] = c.split(';')
      const [k, v] = pair.split('=')
      jar.set(k, v)
    }
    const location = r.headers.get('location')
    if (!location) throw new Error(`no redirect from ${url}: ${r.status} ${await r.text()}`)
    url = new URL(location, url).href
  }
  throw new Error('too many redirects')
}

module.exports = { CB, SECRET, startOp, browse }
