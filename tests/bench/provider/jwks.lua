-- wrk script: GET of the JWKS document.
--   wrk -t2 -c16 -d10s --latency -s jwks.lua http://127.0.0.1:PORT/JWKS_PATH
-- done() prints one JSON line (tests/bench/provider/run.sh reads it).
wrk.method = "GET"
wrk.headers["Accept"] = "application/json"

function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      '{"requests":%d,"duration_s":%.3f,"rps":%.1f,"p50_ms":%.3f,"p99_ms":%.3f,"max_ms":%.3f,"non_2xx":%d,"socket_errors":%d}\n',
      summary.requests, summary.duration / 1e6, summary.requests / (summary.duration / 1e6),
      latency:percentile(50) / 1e3, latency:percentile(99) / 1e3, latency.max / 1e3,
      e.status, e.connect + e.read + e.write + e.timeout))
end
