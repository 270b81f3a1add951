-- Prints wrk's summary as one machine-readable line for bench/run.sh.
done = function(summary, latency, requests)
  local seconds = summary.duration / 1e6
  local e = summary.errors
  local errors = e.connect + e.read + e.write + e.status + e.timeout
  io.write(string.format(
    "RESULT rps=%.1f requests=%d errors=%d p50_us=%d p90_us=%d p99_us=%d max_us=%d\n",
    summary.requests / seconds, summary.requests, errors,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
