// The peer for tests/bench/provider: oidc-provider (see package.json for the
// pinned version) configured like the idflow project files next to it.
//
//   node oidc-server.js --port 18292 --alg RS256 --jwks keys.json
//
// - client "K-bench" (client_secret_basic, client_credentials only) mirrors
//   idflow's access key K-bench: scope reports:read, claim team=data, and an
//   RS256/ES256 JWT access token (RFC 9068) through features.resourceIndicators
//   (defaultResource + getResourceServerInfo with accessTokenFormat "jwt").
// - client "bench" (public, PKCE S256, authorization_code) mirrors idflow's
//   application "bench"; the login's access token is a JWT for the same
//   resource server and the id_token uses the same algorithm.
// - /interaction/{uid} is a minimal login+consent handler, the counterpart of
//   idflow's flow API: GET answers the pending interaction as JSON (like
//   POST /v1/flow/start), POST /interaction/{uid}/login with {"email"} signs
//   the account up or in, grants the scopes and answers {"redirect":{"url"}}
//   (the resume URL; like POST /v1/flow/next).
// - State lives in oidc-provider's default in-memory adapter (idflow uses
//   SQLite on disk): the peer's most favourable configuration.
// Prints "listening <url>" on stdout when ready.

import http from 'node:http';
import fs from 'node:fs';
import { parseArgs } from 'node:util';
import Provider from 'oidc-provider';

const { values: args } = parseArgs({
  options: {
    port: { type: 'string', default: '18292' },
    alg: { type: 'string', default: 'RS256' },
    jwks: { type: 'string' },
  },
});
const port = Number(args.port);
const alg = args.alg;
const issuer = `http://127.0.0.1:${port}`;
const RESOURCE = 'urn:idflow-bench:api';
const jwks = JSON.parse(fs.readFileSync(args.jwks, 'utf8'));
if (!jwks.keys) throw new Error('--jwks must be a JWK Set with private keys');

// Accounts signed up by email (idflow's signUpOrIn).
const accounts = new Map();
function account(email) {
  let a = accounts.get(email);
  if (!a) {
    a = {
      accountId: `U${accounts.size + 1}`,
      email,
      async claims() {
        return { sub: this.accountId, email: this.email, email_verified: true };
      },
    };
    accounts.set(email, a);
  }
  return a;
}
const byId = new Map();

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: 'bench',
      token_endpoint_auth_method: 'none',
      redirect_uris: ['http://127.0.0.1/callback'],
      grant_types: ['authorization_code'],
      response_types: ['code'],
      id_token_signed_response_alg: alg,
    },
    {
      client_id: 'K-bench',
      client_secret: 'bench-secret-0123456789abcdef',
      token_endpoint_auth_method: 'client_secret_basic',
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
      id_token_signed_response_alg: alg,
    },
  ],
  jwks,
  cookies: { keys: ['idflow-bench-cookie-key-0123456789abcdef'] },
  scopes: ['openid', 'email'],
  claims: { openid: ['sub'], email: ['email', 'email_verified'] },
  findAccount: async (_ctx, id) => byId.get(id),
  interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
  pkce: { required: () => true },
  enabledJWA: { idTokenSigningAlgValues: [alg] },
  ttl: {
    AccessToken: 600,
    ClientCredentials: 600,
    AuthorizationCode: 60,
    IdToken: 600,
    Interaction: 600,
    Session: 86400,
    Grant: 86400,
  },
  extraTokenClaims: async (_ctx, token) => (token.kind === 'ClientCredentials' ? { team: 'data' } : undefined),
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: async () => RESOURCE,
      useGrantedResource: async () => true,
      getResourceServerInfo: async (_ctx, resource) => {
        if (resource !== RESOURCE) throw new Provider.errors.InvalidTarget();
        return {
          scope: 'reports:read',
          audience: RESOURCE,
          accessTokenTTL: 600,
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg } },
        };
      },
    },
  },
});
provider.on('server_error', (_ctx, err) => console.error('server_error', err));

async function readJson(req) {
  const chunks = [];
  for await (const c of req) chunks.push(c);
  return JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}');
}

function json(res, status, body) {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Cache-Control': 'no-store', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

async function interaction(req, res) {
  const details = await provider.interactionDetails(req, res);
  if (req.method === 'GET') {
    return json(res, 200, { uid: details.uid, prompt: details.prompt.name, clientId: details.params.client_id, scope: details.params.scope });
  }
  if (req.method !== 'POST' || !req.url.endsWith('/login')) return json(res, 405, { error: 'method not allowed' });
  const { email } = await readJson(req);
  if (typeof email !== 'string' || !email.includes('@')) return json(res, 400, { error: 'email is required' });
  const a = account(email);
  byId.set(a.accountId, a);
  const { params } = details;
  const grant = details.grantId ? await provider.Grant.find(details.grantId) : new provider.Grant({ accountId: a.accountId, clientId: params.client_id });
  grant.addOIDCScope('openid email');
  grant.addResourceScope(RESOURCE, 'reports:read');
  const grantId = await grant.save();
  const url = await provider.interactionResult(req, res, { login: { accountId: a.accountId }, consent: { grantId } }, { mergeWithLastSubmission: false });
  return json(res, 200, { status: 'completed', redirect: { url } });
}

const callback = provider.callback();
const server = http.createServer((req, res) => {
  if (req.url.startsWith('/interaction/')) {
    interaction(req, res).catch((err) => {
      console.error('interaction error', err);
      if (!res.headersSent) json(res, 400, { error: err.name, message: err.message });
    });
    return;
  }
  callback(req, res);
});
server.keepAliveTimeout = 65_000;
server.listen(port, '127.0.0.1', () => {
  console.log(`listening ${issuer}`);
});
const stop = () => server.close(() => process.exit(0)) && setTimeout(() => process.exit(0), 500).unref();
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
