#!/usr/bin/env python3
"""Turns bench/run.sh's result lines (key=value, one per target and round)
into the Markdown report: the measurements (medians over rounds) and the
targets of the project guide, met or not."""

import argparse
import statistics
import sys

TARGETS = ("direct", "agent", "agent-busy-poll", "envoy")
AGENTS = ("agent", "agent-busy-poll")
BUSY_POLL = "1ms"


def parse(path):
    rows = {}
    with open(path) as results:
        for line in results:
            fields = dict(f.split("=", 1) for f in line.split())
            rows.setdefault(fields.pop("target"), []).append(fields)
    return rows


def median(rows, target, key):
    values = [float(r[key]) for r in rows.get(target, []) if key in r]
    return statistics.median(values) if values else None


def fmt(value, unit="", digits=0):
    if value is None:
        return "–"
    return f"{value:,.{digits}f}{unit}"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("results")
    for option in ("command", "date", "machine", "commit", "envoy", "settings", "loadavg", "noisy"):
        parser.add_argument(f"--{option}", default="")
    args = parser.parse_args()
    rows = parse(args.results)
    m = {t: {} for t in TARGETS}
    keys = {
        "rps": "wrk_rps",
        "wrk_p50": "wrk_p50_us",
        "wrk_p99": "wrk_p99_us",
        "wrk_errors": "wrk_errors",
        "fixed_rate": "fixed_rate",
        "fixed_p50": "fixed_p50_us",
        "fixed_p99": "fixed_p99_us",
        "fixed_p999": "fixed_p999_us",
        "fixed_errors": "fixed_errors",
        "rss_idle": "rss_idle_kb",
        "rss": "rss_kb",
        "hwm": "hwm_kb",
        "log_lines": "log_lines",
        "cpu": "fixed_cpu_pct",
    }
    for target in TARGETS:
        for name, key in keys.items():
            m[target][name] = median(rows, target, key)
        m[target]["errors"] = (m[target]["wrk_errors"] or 0) + (m[target]["fixed_errors"] or 0)

    def added(target, key):
        if m[target][key] is None or m["direct"][key] is None:
            return None
        return m[target][key] - m["direct"][key]

    def ratio(a, b):
        return a / b if a is not None and b else None

    def mb(kb):
        return None if kb is None else kb / 1024

    out = []
    w = out.append
    w("# Agent benchmark: direct vs data-plane agent vs Envoy")
    w("")
    w(f"- command: `{args.command}`")
    w(f"- date: {args.date}")
    w(f"- machine: {args.machine}; load average before the run {args.loadavg}")
    if args.noisy not in ("", "0"):
        w(f"- **{args.noisy} measurement(s) started while other work kept the machine busy:"
          " their numbers are skewed**")
    w(f"- commit: {args.commit}; Envoy {args.envoy}")
    w(f"- load: {args.settings}")
    w("- path: wrk → gateway listener (HTTP/1.1, Host bench.local) → upstream on loopback;"
      " both proxies fed the same xDS by our control plane, one worker, access log to stdout"
      " (a file)")
    w(f"- agent, busy poll: the same agent with `--busy-poll {BUSY_POLL}` (its worker polls"
      " instead of sleeping while traffic flows: CPU time for latency)")
    w("")
    w(f"| | direct | agent | agent, `--busy-poll {BUSY_POLL}` | Envoy |")
    w("|---|---:|---:|---:|---:|")

    def row(label, name, unit="", digits=0, transform=lambda v: v):
        cells = [fmt(transform(m[t][name]), unit, digits) for t in TARGETS]
        w(f"| {label} | " + " | ".join(cells) + " |")

    row("throughput, req/s (wrk, closed loop)", "rps")
    row("latency p50, µs (wrk)", "wrk_p50")
    row("latency p99, µs (wrk)", "wrk_p99")
    row("fixed rate achieved, req/s", "fixed_rate")
    row("latency p50, µs (fixed rate)", "fixed_p50")
    row("latency p99, µs (fixed rate)", "fixed_p99")
    row("latency p99.9, µs (fixed rate)", "fixed_p999")
    row("failed requests (wrk + fixed rate)", "errors")
    row("RSS idle, MB", "rss_idle", digits=1, transform=mb)
    row("RSS after load, MB", "rss", digits=1, transform=mb)
    row("peak RSS (VmHWM), MB", "hwm", digits=1, transform=mb)
    row("access log lines", "log_lines")
    row("proxy CPU at the fixed rate, % of one core", "cpu")
    w("")

    envoy_added = added("envoy", "fixed_p99")

    def checks(agent):
        agent_added = added(agent, "fixed_p99")
        return [
            ("throughput vs Envoy", "≥ 1.20×", ratio(m[agent]["rps"], m["envoy"]["rps"]),
             lambda v: v >= 1.2, lambda v: f"{v:.2f}×"),
            ("throughput vs direct", "≥ 0.70×", ratio(m[agent]["rps"], m["direct"]["rps"]),
             lambda v: v >= 0.7, lambda v: f"{v:.2f}×"),
            ("added p99 at fixed rate vs Envoy's",
             f"≤ ½ × {fmt(envoy_added, ' µs')}",
             ratio(agent_added, envoy_added) if envoy_added and envoy_added > 0 else None,
             lambda v: v <= 0.5,
             lambda v: f"{fmt(agent_added, ' µs')} ({v:.2f}×)"),
            ("RSS after load", "≤ 17 MB (Envoy ~68 MB)", mb(m[agent]["rss"]),
             lambda v: v <= 17, lambda v: f"{v:.1f} MB"),
        ]

    def cell(check):
        _, _, value, ok, show = check
        if value is None:
            return "– (?)"
        return f"{show(value)} ({'met' if ok(value) else 'not met'})"

    w("| target | wanted | agent | agent, busy poll |")
    w("|---|---|---:|---:|")
    for default, busy in zip(checks("agent"), checks("agent-busy-poll")):
        w(f"| {default[0]} | {default[1]} | {cell(default)} | {cell(busy)} |")
    w("")
    w("Added latency is p99(proxy) − p99(direct) at the fixed rate: "
      + ", ".join(f"{t} {fmt(added(t, 'fixed_p99'), ' µs')}" for t in AGENTS + ("envoy",))
      + "; under the closed-loop wrk load: "
      + ", ".join(f"{t} {fmt(added(t, 'wrk_p99'), ' µs')}" for t in AGENTS + ("envoy",))
      + ".")
    errors = sum(m[t]["errors"] for t in TARGETS)
    if errors:
        w("")
        w(f"**{errors:.0f} requests failed** (connect/read/timeout or non-2xx): the numbers"
          " above are suspect.")
    print("\n".join(out))


if __name__ == "__main__":
    sys.exit(main())
