#!/usr/bin/env python3
"""Turns bench/run.sh's result lines (key=value, one per path, target and
round) into the Markdown report: per path the medians over rounds beside
Envoy's, the config-size runs, and the targets of issue 15 met or not."""

import argparse
import statistics
import sys

TARGETS = ("direct", "agent", "agent-busy-poll", "envoy")
BUSY_POLL = "1ms"
PATHS = {
    "http": "HTTP/1.1 keep-alive through the gateway's HTTP listener (Host bench.local)",
    "tls-passthrough": "TLS by SNI (tls.bench.local) passed through to a TLS upstream; small answers",
    "tls-passthrough-large": "TLS by SNI as above, 1 MiB answers (throughput in MB/s)",
    "tls-origination": "Plain HTTP in, TLS originated by the gateway (DestinationRule SIMPLE),"
    " keep-alive upstream; direct: the client speaks TLS to the upstream itself",
    "new-conn": "A new plaintext connection per request (Connection: close)",
    "new-conn-tls": "A new TLS connection per request, full handshake (no resumption),"
    " passed through by SNI",
    "slow-upstream": "The http load while 10 connections send requests to slow.bench.local,"
    " whose upstream answers in 1 s and whose route times out at 200 ms",
    "sidecar-http": "HTTP/1.1 keep-alive (Host sidecar.bench.local) from an app in a pod (a network"
    " namespace with `data-plane init`'s capture rules) to an upstream outside it, captured by"
    " the pod's sidecar (uid 1337); direct: the same requests from uid 1337, which the rules"
    " let through",
    "sidecar-mtls-gateway": "Plain HTTP (Host mtls.bench.local) from the app in the pod, captured"
    " by its sidecar, which originates mutual TLS (ISTIO_MUTUAL) to the egress gateway, which"
    " originates TLS (SIMPLE) to the upstream: both hops proxied by the same kind, their CPU"
    " and RSS summed; direct: the app speaks TLS to the upstream itself",
}
# Figures where bigger is better, shown per path: (label, key, unit scale, digits).
ROWS = [
    ("throughput, req/s (closed loop)", "tput_rate", 1, 0),
    ("throughput, MB/s (closed loop)", "tput_mbps", 1, 1),
    ("fixed rate achieved, req/s", "fixed_rate", 1, 0),
    ("latency p50, µs (fixed rate)", "fixed_p50_us", 1, 0),
    ("latency p99, µs (fixed rate)", "fixed_p99_us", 1, 0),
    ("latency p99.9, µs (fixed rate)", "fixed_p999_us", 1, 0),
    ("proxy CPU, ms per 1,000 requests", "cpu_ms_per_1k", 1, 1),
    ("of which the sidecar's, ms per 1,000 requests", "sidecar_cpu_ms_per_1k", 1, 1),
    ("RSS before the load, MB", "rss_idle_kb", 1 / 1024, 1),
    ("RSS under load, MB", "rss_load_kb", 1 / 1024, 1),
    ("of which the sidecar's, MB", "sidecar_rss_load_kb", 1 / 1024, 1),
    ("peak RSS (VmHWM), MB", "hwm_kb", 1 / 1024, 1),
    ("failed requests", "errors", 1, 0),
    ("non-2xx answers", "non_2xx", 1, 0),
]
# Straight to the slow upstream nothing times out: only the proxies' figures.
SLOW_ROWS = [
    ("slow host: non-2xx answers (the route timeout's 504)", "slow_non_2xx", 1, 0),
    ("slow host: latency p50, µs", "slow_p50_us", 1, 0),
    ("slow host: latency p99, µs", "slow_p99_us", 1, 0),
]


def parse(path):
    rows = {}
    with open(path) as results:
        for line in results:
            fields = dict(f.split("=", 1) for f in line.split())
            if not fields:
                continue
            for key in ("errors", "non_2xx"):
                fields[key] = str(sum(float(fields.get(f"{p}_{key}", 0)) for p in ("tput", "fixed")))
            rows.setdefault((fields.pop("path"), fields.pop("target")), []).append(fields)
    return rows


def fmt(value, digits=0, unit=""):
    if value is None:
        return "–"
    return f"{value:,.{digits}f}{unit}"


class Results:
    def __init__(self, rows):
        self.rows = rows

    def median(self, path, target, key):
        values = [float(r[key]) for r in self.rows.get((path, target), []) if key in r]
        return statistics.median(values) if values else None

    def added(self, path, target, key):
        proxy, direct = self.median(path, target, key), self.median(path, "direct", key)
        return None if proxy is None or direct is None else proxy - direct

    def targets(self, path):
        return [t for t in TARGETS if (path, t) in self.rows]


def ratio(a, b):
    return a / b if a is not None and b else None


def check(value, ok, show):
    if value is None:
        return "– (?)"
    return f"{show(value)} ({'met' if ok(value) else '**not met**'})"


def path_section(w, results, path):
    targets = results.targets(path)
    w(f"### {path}")
    w("")
    w(PATHS[path] + ".")
    w("")
    names = {"agent-busy-poll": f"agent, `--busy-poll {BUSY_POLL}`", "envoy": "Envoy"}
    w("| | " + " | ".join(names.get(t, t) for t in targets) + " |")
    w("|---|" + "---:|" * len(targets))
    rows = ROWS + (SLOW_ROWS if path == "slow-upstream" else [])
    for label, key, scale, digits in rows:
        values = [None if key.startswith("slow_") and t == "direct"
                  else results.median(path, t, key) for t in targets]
        if all(v is None for v in values):
            continue
        cells = [fmt(None if v is None else v * scale, digits) for v in values]
        w(f"| {label} | " + " | ".join(cells) + " |")
    for label, key in (("added p50", "fixed_p50_us"), ("added p99", "fixed_p99_us"),
                       ("added p99.9", "fixed_p999_us")):
        cells = [fmt(results.added(path, t, key)) if t != "direct" else "" for t in targets]
        w(f"| {label} over direct, µs (fixed rate) | " + " | ".join(cells) + " |")
    w("")


def target_rows(results, path):
    """(what, wanted, agent's figure) for each target that applies to path."""
    key = "tput_mbps" if path == "tls-passthrough-large" else "tput_rate"
    agent_added = results.added(path, "agent", "fixed_p99_us")
    envoy_added = results.added(path, "envoy", "fixed_p99_us")
    rows = [
        ("throughput vs Envoy", "≥ 1.5×",
         check(ratio(results.median(path, "agent", key), results.median(path, "envoy", key)),
               lambda v: v >= 1.5, lambda v: f"{v:.2f}×")),
        ("added p99 vs Envoy's", "≤ 0.5×",
         check(ratio(agent_added, envoy_added) if envoy_added and envoy_added > 0 else None,
               lambda v: v <= 0.5,
               lambda v: f"{fmt(agent_added)} vs {fmt(envoy_added)} µs ({v:.2f}×)")),
        ("RSS under load vs Envoy's", "≤ 0.2×",
         check(ratio(results.median(path, "agent", "rss_load_kb"),
                     results.median(path, "envoy", "rss_load_kb")),
               lambda v: v <= 0.2, lambda v: f"{v:.2f}×")),
    ]
    if path == "new-conn-tls":
        rows.append(("TLS handshakes/s vs Envoy", "≥ 1×",
                     check(ratio(results.median(path, "agent", key),
                                 results.median(path, "envoy", key)),
                           lambda v: v >= 1, lambda v: f"{v:.2f}×")))
    return rows


def config_section(w, results, sizes):
    w("### config-size")
    w("")
    w("The bench gateway's config plus N more ServiceEntries (an HTTP port and a static"
      " endpoint each); a proxy started on a control plane already serving them: the time"
      " from its start to its admin `/ready` answering 200 (the control plane's"
      " translation for it included), and its RSS a second later.")
    w("")
    w("| ServiceEntries | agent ready, ms | Envoy ready, ms | agent RSS, MB | Envoy RSS, MB"
      " | RSS vs Envoy's (≤ 0.2×) |")
    w("|---:|---:|---:|---:|---:|---|")
    for size in sizes:
        path = f"config-{size}"
        agent, envoy = (results.median(path, t, "rss_kb") for t in ("agent", "envoy"))
        w(f"| {size:,} | {fmt(results.median(path, 'agent', 'ready_ms'))}"
          f" | {fmt(results.median(path, 'envoy', 'ready_ms'))}"
          f" | {fmt(agent and agent / 1024, 1)} | {fmt(envoy and envoy / 1024, 1)}"
          f" | {check(ratio(agent, envoy), lambda v: v <= 0.2, lambda v: f'{v:.2f}×')} |")
    w("")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("results")
    for option in ("command", "date", "duration", "machine", "commit", "envoy", "settings",
                   "loadavg", "noisy"):
        parser.add_argument(f"--{option}", default="")
    args = parser.parse_args()
    results = Results(parse(args.results))
    paths = [p for p in PATHS if any(k[0] == p for k in results.rows)]
    sizes = sorted({int(k[0].split("-")[1]) for k in results.rows if k[0].startswith("config-")})

    out = []
    w = out.append
    w("# Data plane benchmark: direct vs data-plane agent vs Envoy, on the walkthrough's paths")
    w("")
    w(f"- command: `{args.command}` ({args.duration} s)")
    w(f"- date: {args.date}")
    w(f"- machine: {args.machine}; load average before the run {args.loadavg}")
    if args.noisy not in ("", "0"):
        w(f"- **{args.noisy} measurement(s) started while other work kept the machine busy:"
          " their numbers are skewed**")
    w(f"- commit: {args.commit}; Envoy {args.envoy}")
    w(f"- load: {args.settings}")
    w("- proxies: an egress gateway (`proxy router`), both fed the same xDS by our control"
      " plane, one worker, access log to stdout (a file); medians over rounds")
    if any(p.startswith("sidecar-") for p in paths):
        w("- sidecar paths: the agent (`proxy sidecar`) or Envoy as the app pod's sidecar, uid"
          " 1337 behind the capture rules, with the gateway of the same kind; Envoy's"
          " certificates from `data-plane sds` (pilot-agent's role), whose CPU and memory are"
          " not counted in Envoy's")
    w("")
    w("## Targets (agent vs Envoy, same run)")
    w("")
    w("| path | target | wanted | agent |")
    w("|---|---|---|---:|")
    for path in paths:
        for what, wanted, figure in target_rows(results, path):
            w(f"| {path} | {what} | {wanted} | {figure} |")
    for size in sizes:
        rss = ratio(*(results.median(f"config-{size}", t, "rss_kb") for t in ("agent", "envoy")))
        w(f"| config-size {size:,} | RSS vs Envoy's | ≤ 0.2× |"
          f" {check(rss, lambda v: v <= 0.2, lambda v: f'{v:.2f}×')} |")
    w("")
    w("## Paths")
    w("")
    for path in paths:
        path_section(w, results, path)
    if sizes:
        config_section(w, results, sizes)
    failed = sum(results.median(p, t, "errors") or 0 for p in paths for t in results.targets(p))
    if failed:
        w(f"**{failed:.0f} requests failed** (connect, read or timeout): the numbers of those"
          " paths are suspect.")
    print("\n".join(out))


if __name__ == "__main__":
    sys.exit(main())
