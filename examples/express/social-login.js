'use strict'
// Social login by API with a custom OAuth provider, in an Express app. The
// project file names the provider (oauthProviders) and approves where a
// login may land (redirectUrls); idflow builds the upstream request,
// answers the upstream at {baseUrl}/v1/oauth/callback (register that URL
// there) and hands the app a one-time code that only the browser which
// started the login can spend: the exchange needs the PKCE verifier kept
// for that browser.

const crypto = require('node:crypto')
const express = require('express')
const { Provider } = require('idflow')

const LOGIN_COOKIE = 'idflow_login'
const LOGIN_TTL_MS = 10 * 60 * 1000

function cookie(req, name) {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const [k, ...v] = part.trim().split('=')
    if (k === name) return v.join('=')
  }
  return undefined
}

function createSocialApp(projectJson, { appUrl }) {
  const provider = new Provider(projectJson)
  const app = express()
  app.use(express.raw({ type: () => true, limit: '64kb' }))
  // Verifiers of logins in progress, by a random id in the browser's cookie
  // (one process: keep them in your session store when you run several).
  const logins = new Map()

  // Step 1: the upstream's authorization URL, and the verifier to keep.
  app.get('/login/:name', async (req, res, next) => {
    try {
      const { url, codeVerifier } = await provider.oauthAuthorize(req.params.name, { redirectUrl: `${appUrl}/after-login` })
      const id = crypto.randomBytes(32).toString('base64url')
      logins.set(id, codeVerifier)
      setTimeout(() => logins.delete(id), LOGIN_TTL_MS).unref()
      res.cookie(LOGIN_COOKIE, id, { httpOnly: true, sameSite: 'lax', secure: appUrl.startsWith('https:'), maxAge: LOGIN_TTL_MS })
      res.redirect(url)
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

  // Step 2: the one-time code and this browser's verifier → { sessionJwt, refreshJwt, user }.
  app.get('/after-login', (req, res) => {
    const id = cookie(req, LOGIN_COOKIE)
    const codeVerifier = id === undefined ? undefined : logins.get(id)
    if (id !== undefined) logins.delete(id)
    res.clearCookie(LOGIN_COOKIE)
    if (req.query.error) return res.status(401).json({ error: req.query.error })
    if (codeVerifier === undefined || !req.query.code) return res.status(400).json({ error: 'no sign-in was started in this browser' })
    const auth = provider.oauthExchange(String(req.query.code), codeVerifier)
    res.cookie('session', auth.sessionJwt, { httpOnly: true, sameSite: 'lax', secure: appUrl.startsWith('https:') })
    res.json({ user: auth.user })
  })

  return app
}

module.exports = { createSocialApp }
