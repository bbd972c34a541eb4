'use strict'
// Social login by API with a custom OAuth provider, in an Express app. The
// project file names the provider (oauthProviders); idflow builds the
// upstream request, answers the upstream at {baseUrl}/v1/oauth/callback
// (register that URL there) and hands the app a one-time code.

const express = require('express')
const { Provider } = require('idflow')

function createSocialApp(projectJson, { appUrl }) {
  const provider = new Provider(projectJson)
  const app = express()
  app.use(express.raw({ type: () => true, limit: '64kb' }))

  // Step 1: the upstream's authorization URL (state, nonce, PKCE inside).
  app.get('/login/:name', async (req, res, next) => {
    try {
      res.redirect(await provider.oauthAuthorize(req.params.name, { redirectUrl: `${appUrl}/after-login` }))
    } catch (e) {
      next(e)
    }
  })

  // The upstream's answer goes to idflow, which sends the browser on.
  app.all('/v1/oauth/callback', async (req, res, next) => {
    try {
      const r = await provider.handle(req.method, req.originalUrl, req.headers, Buffer.isBuffer(req.body) ? req.body : undefined)
      res.status(r.status)
      for (const [k, v] of r.headers) res.append(k, v)
      res.end(r.body)
    } catch (e) {
      next(e)
    }
  })

  // Step 2: the one-time code → { sessionJwt, refreshJwt, user }.
  app.get('/after-login', (req, res) => {
    if (req.query.error) return res.status(401).json({ error: req.query.error })
    const auth = provider.oauthExchange(String(req.query.code))
    res.cookie('session', auth.sessionJwt, { httpOnly: true, sameSite: 'lax' })
    res.json({ user: auth.user })
  })

  return app
}

module.exports = { createSocialApp }
