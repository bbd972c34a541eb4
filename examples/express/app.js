'use strict'
// An Express app that mounts the idflow OpenID Connect provider: every
// request it does not route itself goes to provider.handle (discovery, JWKS,
// authorize, token, userinfo, revoke, logout, the flow API, the login page).
//
// Run it:  npm install express idflow
//          IDFLOW_PROJECT=project.json node examples/express/app.js

const express = require('express')
const { Provider } = require('idflow')

function createApp(projectPath, options = {}) {
  const provider = Provider.fromFile(projectPath, options)
  const app = express()
  // The provider reads raw bodies (forms and JSON) itself.
  app.use(express.raw({ type: () => true, limit: '64kb' }))

  app.get('/admin/users', async (req, res, next) => {
    try {
      res.json(await provider.engine.searchUsers({ text: req.query.q }))
    } catch (e) {
      next(e)
    }
  })

  app.use(async (req, res, next) => {
    try {
      const body = Buffer.isBuffer(req.body) ? req.body : undefined
      const r = await provider.handle(req.method, req.originalUrl, req.headers, body, { peer: req.socket.remoteAddress })
      res.status(r.status)
      for (const [name, value] of r.headers) res.append(name, value)
      res.end(r.body)
    } catch (e) {
      next(e)
    }
  })
  app.locals.provider = provider
  return app
}

module.exports = { createApp }

if (require.main === module) {
  const port = Number(process.env.PORT || 8080)
  const app = createApp(process.env.IDFLOW_PROJECT, {
    database: process.env.IDFLOW_DB || 'idflow.db',
    baseUrl: process.env.IDFLOW_BASE_URL || `http://127.0.0.1:${port}`,
  })
  app.listen(port, '127.0.0.1', () => console.log(`idflow provider on http://127.0.0.1:${port}`))
}
