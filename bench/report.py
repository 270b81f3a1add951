#!/usr/bin/env python3
"""Turns bench/run.sh's result lines (key=value, one per target and round)
into the Markdown report: the measurements (medians over rounds) and the
targets of the project guide, met or not."""

import argparse
import statistics
import sys

TARGETS = ("direct", "agent", "envoy")


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
    w("")
    w("| | direct | agent | Envoy |")
    w("|---|---:|---:|---:|")

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
    w("")

    agent_added = added("agent", "fixed_p99")
    envoy_added = added("envoy", "fixed_p99")
    checks = [
        ("throughput vs Envoy", "≥ 1.20×", ratio(m["agent"]["rps"], m["envoy"]["rps"]),
         lambda v: v >= 1.2, lambda v: f"{v:.2f}×"),
        ("throughput vs direct", "≥ 0.70×", ratio(m["agent"]["rps"], m["direct"]["rps"]),
         lambda v: v >= 0.7, lambda v: f"{v:.2f}×"),
        ("added p99 at fixed rate vs Envoy's",
         f"≤ ½ × {fmt(envoy_added, ' µs')}",
         ratio(agent_added, envoy_added) if envoy_added and envoy_added > 0 else None,
         lambda v: v <= 0.5,
         lambda v: f"{fmt(agent_added, ' µs')} ({v:.2f}×)"),
        ("RSS after load", "≤ 17 MB (Envoy ~68 MB)", mb(m["agent"]["rss"]),
         lambda v: v <= 17, lambda v: f"{v:.1f} MB"),
    ]
    w("| target | wanted | agent | met |")
    w("|---|---|---:|:---:|")
    for name, wanted, value, ok, show in checks:
        if value is None:
            w(f"| {name} | {wanted} | – | ? |")
        else:
            w(f"| {name} | {wanted} | {show(value)} | {'yes' if ok(value) else 'no'} |")
    w("")
    w(f"Added latency is p99(proxy) − p99(direct) at the fixed rate: agent"
      f" {fmt(agent_added, ' µs')}, Envoy {fmt(envoy_added, ' µs')}; under the closed-loop"
      f" wrk load: agent {fmt(added('agent', 'wrk_p99'), ' µs')},"
      f" Envoy {fmt(added('envoy', 'wrk_p99'), ' µs')}.")
    errors = sum(m[t]["errors"] for t in TARGETS)
    if errors:
        w("")
        w(f"**{errors:.0f} requests failed** (connect/read/timeout or non-2xx): the numbers"
          " above are suspect.")
    print("\n".join(out))


if __name__ == "__main__":
    sys.exit(main())
