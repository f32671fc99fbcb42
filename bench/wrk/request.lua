-- wrk script of bench/run.sh: one kind of request, set by the environment,
-- and the figures printed as "key value" lines at the end.
--   BENCH_METHOD  GET or POST (default GET)
--   BENCH_BODY    form body of a POST (application/x-www-form-urlencoded)
--   BENCH_AUTH    Authorization header value
--   BENCH_PREFIX  key prefix of the printed figures
wrk.method = os.getenv("BENCH_METHOD") or "GET"
local body = os.getenv("BENCH_BODY")
if body and body ~= "" then
  wrk.body = body
  wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
end
local auth = os.getenv("BENCH_AUTH")
if auth and auth ~= "" then
  wrk.headers["Authorization"] = auth
end

done = function(summary, latency, requests)
  local p = os.getenv("BENCH_PREFIX") or "wrk"
  local e = summary.errors
  local failed = e.connect + e.read + e.write + e.status + e.timeout
  local seconds = summary.duration / 1e6
  io.write(string.format("%s_rps %.1f\n", p, (summary.requests - e.status) / seconds))
  io.write(string.format("%s_p50_ms %.3f\n", p, latency:percentile(50) / 1000))
  io.write(string.format("%s_p99_ms %.3f\n", p, latency:percentile(99) / 1000))
  io.write(string.format("%s_requests %d\n", p, summary.requests))
  io.write(string.format("%s_errors %d\n", p, failed))
end
