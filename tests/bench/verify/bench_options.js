'use strict'
// jwt.verify(token, key, options) against new jwt.Verifier(key, options)
// .verify(token), measured in the same run: the ratio says what converting
// the options costs per call. Run after `npm run build` in node/:
//   node tests/bench/verify/bench_options.js
const path = require('node:path')
const { jwt, Key } = require(path.join(__dirname, '..', '..', '..', 'node'))

function nsPerCall(f, n) {
  for (let i = 0; i < Math.min(n, 5000); i++) f()
  const start = process.hrtime.bigint()
  for (let i = 0; i < n; i++) f()
  return Number(process.hrtime.bigint() - start) / n
}

for (const alg of ['HS256', 'ES256', 'RS256']) {
  const key = Key.generate(alg)
  const pub = alg === 'HS256' ? key : key.publicKey()
  const token = jwt.sign({ exp: Math.floor(Date.now() / 1000) + 600, iss: 'me', aud: 'api', sub: 'u1' }, key)
  const options = { algorithms: [alg], issuer: 'me', audience: 'api' }
  const verifier = new jwt.Verifier(pub, options)
  const n = alg === 'HS256' ? 200000 : 20000
  const bound = nsPerCall(() => verifier.verify(token), n)
  const shared = nsPerCall(() => jwt.verify(token, pub, options), n)
  const literal = nsPerCall(() => jwt.verify(token, pub, { algorithms: [alg], issuer: 'me', audience: 'api' }), n)
  console.log(
    `${alg}: Verifier ${bound.toFixed(0)} ns; jwt.verify with one options object ${(shared / bound).toFixed(2)}x, ` +
      `with a new options literal per call ${(literal / bound).toFixed(2)}x`,
  )
}
