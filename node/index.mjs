// idflow for Node as an ES module: the very objects of the CommonJS entry
// (index.js), so `import` and `require` share one native module.
import idflow from './index.js'

export const {
  pkce, jwt, password, Key, KeySet, JwksCache, validateFlow, FlowEngine, Provider, Providers, OidcClient, SessionManager, MemoryStorage, ERROR_CODES, ALGORITHMS,
} = idflow
export default idflow
