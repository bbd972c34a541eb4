'use strict'
// A signed-in session in a desktop or command-line app: the user signs in
// once in the browser; the refresh token is kept in a file only the user can
// read (use the OS keychain where there is one).

const fs = require('node:fs/promises')
const { OidcClient, SessionManager } = require('idflow')

// idflow's SessionStorage in a 0600 file, replaced atomically.
class FileStorage {
  constructor(path) {
    this.path = path
  }

  async load() {
    try {
      return await fs.readFile(this.path, 'utf8')
    } catch (e) {
      if (e.code === 'ENOENT') return null
      throw e
    }
  }

  async save(session) {
    await fs.writeFile(`${this.path}.tmp`, session, { mode: 0o600 })
    await fs.rename(`${this.path}.tmp`, this.path)
  }

  async clear() {
    await fs.rm(this.path, { force: true })
  }
}

async function sessionManager(discoveryUrl, clientId, redirectUri, path) {
  const client = await OidcClient.discover(discoveryUrl, { clientId, redirectUri, scopes: ['openid', 'email', 'offline_access'] })
  return { client, manager: new SessionManager(client, new FileStorage(path)) }
}

// `browser` opens the URL and resolves to the redirect it ends on (your
// loopback redirect URI receives it).
async function signIn(manager, client, browser) {
  const request = client.authorizationRequest()
  return manager.complete(await browser(request.url), request)
}

// The access token for an API call, refreshed first when due. A rejection
// with code 'invalid_grant' means the user was signed out.
async function authorization(manager) {
  return `Bearer ${await manager.accessToken()}`
}

module.exports = { FileStorage, sessionManager, signIn, authorization }
