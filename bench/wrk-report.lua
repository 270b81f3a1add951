-- Prints wrk's summary as one machine-readable line for bench/run.sh, with
-- bench-load's keys.
done = function(summary, latency, requests)
  local seconds = summary.duration / 1e6
  local e = summary.errors
  local errors = e.connect + e.read + e.write + e.timeout
  io.write(string.format(
    "RESULT requests=%d errors=%d non_2xx=%d rate=%.1f mbps=%.2f p50_us=%d p90_us=%d p99_us=%d max_us=%d\n",
    summary.requests, errors, e.status, summary.requests / seconds, summary.bytes / seconds / 1e6,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
