-- wrk script: client_credentials token requests (client_secret_basic).
--   wrk -t2 -c16 -d10s --latency -s token.lua http://127.0.0.1:PORT/TOKEN_PATH -- BASE64(id:secret)
-- The same body and headers for idflow and oidc-provider; done() prints one
-- JSON line (tests/bench/provider/run.sh reads it).
wrk.method = "POST"
wrk.body = "grant_type=client_credentials&scope=reports:read"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Accept"] = "application/json"

function init(args)
   wrk.headers["Authorization"] = "Basic " .. args[1]
end

function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      '{"requests":%d,"duration_s":%.3f,"rps":%.1f,"p50_ms":%.3f,"p99_ms":%.3f,"max_ms":%.3f,"non_2xx":%d,"socket_errors":%d}\n',
      summary.requests, summary.duration / 1e6, summary.requests / (summary.duration / 1e6),
      latency:percentile(50) / 1e3, latency:percentile(99) / 1e3, latency.max / 1e3,
      e.status, e.connect + e.read + e.write + e.timeout))
end
