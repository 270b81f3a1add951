# bench/run.sh's app pod, for the sidecar paths: a network namespace joined
# to the host by a veth pair (a free /30 of 198.19.0.0/16, in RFC 2544's
# benchmarking range), with `data-plane init`'s capture rules (outbound TCP
# redirected to 15001, uid 1337 exempt), as istio-init sets up a pod; the
# sidecar (our agent, or Envoy with `data-plane sds` in pilot-agent's role)
# runs in it as uid 1337. The control plane, the egress gateway and the
# pod's upstreams listen on the host end of the veth. Needs root. Sourced;
# uses the helpers and settings of run.sh.

PROXY_UID=1337
POD_NS="bench$$"
POD_NAMESPACE=bench
POD_SERVICE_ACCOUNT=bench-app
POD_CREATED=0
POD_DIR=""

# pod_exec: the command prefix that runs a command in the pod (as root,
# so its connections are captured).
pod_exec() { echo "ip netns exec $POD_NS"; }
# pod_exec_as_proxy: the same as the proxy's uid, which the rules exempt.
pod_exec_as_proxy() {
    echo "ip netns exec $POD_NS setpriv --reuid=$PROXY_UID --regid=$PROXY_UID --clear-groups --"
}

# free_subnet: "HOST_IP NS_IP" of a /30 of 198.19.0.0/16 no interface here
# uses (the tests take theirs from the whole /15 by process id; counting
# down from its top keeps clear of them).
free_subnet() {
    local in_use i third fourth
    in_use=$(ip -4 -o addr show)
    for ((i = 0; i < 16384; i++)); do
        third=$((255 - i / 64)) fourth=$((i % 64 * 4))
        if [[ $in_use != *"inet 198.19.$third.$((fourth + 1))/"* &&
            $in_use != *"inet 198.19.$third.$((fourth + 2))/"* ]]; then
            echo "198.19.$third.$((fourth + 1)) 198.19.$third.$((fourth + 2))"
            return
        fi
    done
    die "every /30 of 198.19.0.0/16 is in use"
}

# pod_create: the namespace, its veth pair and capture rules; sets
# POD_HOST_IP (the host end) and POD_IP (the pod's).
pod_create() {
    [[ $(id -u) == 0 ]] || die "the sidecar paths ($POD_PATHS) need root (a network namespace and iptables rules): run as root, or choose other PATHS"
    command -v setpriv >/dev/null || die "setpriv is missing (apt-get install -y util-linux)"
    read -r POD_HOST_IP POD_IP <<<"$(free_subnet)"
    ip netns add "$POD_NS"
    POD_CREATED=1
    ip link add "${POD_NS}h" type veth peer name "${POD_NS}n" netns "$POD_NS"
    ip addr add "$POD_HOST_IP/30" dev "${POD_NS}h"
    ip link set "${POD_NS}h" up
    ip -n "$POD_NS" addr add "$POD_IP/30" dev "${POD_NS}n"
    ip -n "$POD_NS" link set "${POD_NS}n" up
    ip -n "$POD_NS" link set lo up
    # The files the proxy's uid reads, in a directory of their own: its
    # binaries (the target dir may be out of its reach), token and the
    # mesh root, never the CA's key.
    POD_DIR=$(mktemp -d /tmp/bench-pod.XXXXXX)
    chmod 755 "$POD_DIR"
    cp "$RELEASE/data-plane" "$RELEASE/bench-load" "$WRK_SCRIPT" "$POD_DIR/"
    LOAD_BIN="$POD_DIR/bench-load"
    WRK_SCRIPT="$POD_DIR/$(basename "$WRK_SCRIPT")"
    local in_pod
    read -r -a in_pod <<<"$(pod_exec)"
    "${in_pod[@]}" "$RELEASE/data-plane" init --proxy-uid "$PROXY_UID" --proxy-gid "$PROXY_UID" \
        >"$LOGS/pod-init.out" 2>&1 || die "data-plane init failed: $(tail -n 5 "$LOGS/pod-init.out")"
}

# pod_credentials: the pod's token and the mesh root (which the control
# plane writes when it starts), for its proxy's uid.
pod_credentials() {
    "$RELEASE/control-plane" token create --ca-dir "$CA_DIR" --namespace "$POD_NAMESPACE" \
        --service-account "$POD_SERVICE_ACCOUNT" >"$POD_DIR/token"
    cp "$CA_DIR/root-cert.pem" "$POD_DIR/root-cert.pem"
    chown -R "$PROXY_UID:$PROXY_UID" "$POD_DIR"
}

# pod_remove: the namespace with everything in it (its processes, rules
# and veth end, which takes the host end with it).
pod_remove() {
    ((POD_CREATED)) || return 0
    local pid
    for pid in $(ip netns pids "$POD_NS" 2>/dev/null); do
        kill -KILL "$pid" 2>/dev/null || true
    done
    ip link del "${POD_NS}h" 2>/dev/null || true
    ip netns del "$POD_NS" 2>/dev/null || true
    [[ -z $POD_DIR ]] || rm -rf "$POD_DIR"
    POD_CREATED=0
}

# pod_node_id: the sidecar's node id, as Istio's injector makes it.
pod_node_id() { echo "sidecar~$POD_IP~$POD_SERVICE_ACCOUNT.$POD_NAMESPACE~$POD_NAMESPACE.svc.cluster.local"; }

# start_sidecar TARGET NAME: the pod's sidecar of kind TARGET (agent or
# envoy) on PROXY_CPU as uid 1337, its admin interface on POD_IP; Envoy's
# SDS server (`data-plane sds`, pilot-agent's role) beside it. Sets $PID
# (the proxy) and SIDECAR_PIDS (everything started).
start_sidecar() {
    local as_proxy
    read -r -a as_proxy <<<"$(pod_exec_as_proxy)"
    local connection=(--xds-addr "$POD_HOST_IP:$XDS_PORT" --ca-root "$POD_DIR/root-cert.pem"
        --token "$POD_DIR/token") name
    # Its logs, which Envoy opens again as /dev/stdout, belong to its uid.
    for name in "$2" "$2-sds"; do
        : >"$LOGS/$name.out"
        : >"$LOGS/$name.err"
        chown "$PROXY_UID:$PROXY_UID" "$LOGS/$name.out" "$LOGS/$name.err"
    done
    SIDECAR_PIDS=()
    case $1 in
        agent)
            start "$2" "$PROXY_CPU" "${as_proxy[@]}" "$POD_DIR/data-plane" proxy sidecar \
                --node-id "$(pod_node_id)" --labels "app=$POD_SERVICE_ACCOUNT" \
                --service-account "$POD_SERVICE_ACCOUNT" "${connection[@]}" \
                --admin-addr "$POD_IP:$ADMIN_PORT" --concurrency 1
            ;;
        envoy)
            local socket="$POD_DIR/sds.sock"
            rm -f "$socket"
            start "$2-sds" "$PROXY_CPU" "${as_proxy[@]}" "$POD_DIR/data-plane" sds --socket "$socket" \
                "${connection[@]}" --namespace "$POD_NAMESPACE" --service-account "$POD_SERVICE_ACCOUNT"
            SIDECAR_PIDS+=("$PID")
            wait_for "$2's SDS server" test -S "$socket"
            write_envoy_bootstrap "$POD_DIR/envoy.json" "$(pod_node_id)" "$POD_NAMESPACE" \
                "\"app\": \"$POD_SERVICE_ACCOUNT\"" "$POD_IP" "$POD_SERVICE_ACCOUNT" \
                "$POD_HOST_IP" "$(<"$POD_DIR/token")" "$POD_DIR/root-cert.pem" "$POD_IP" "$socket"
            chown "$PROXY_UID:$PROXY_UID" "$POD_DIR/envoy.json"
            start "$2" "$PROXY_CPU" "${as_proxy[@]}" "$ENVOY" -c "$POD_DIR/envoy.json" --concurrency 1 \
                --disable-hot-restart --log-level warn
            ;;
    esac
    SIDECAR_PIDS+=("$PID")
}

# sidecar_ready NAME: waits until the sidecar is ready and both sidecar
# paths answer 200 through it (the gateway's endpoint included).
sidecar_ready() {
    local -a in_pod
    read -r -a in_pod <<<"$(pod_exec)"
    wait_for "$1" admin_ready "$ADMIN_PORT" "$POD_IP"
    wait_for "$1 ($SIDECAR_HOST)" answers_200 "$UPSTREAM_PORT" "$SIDECAR_HOST" "$POD_HOST_IP" "${in_pod[@]}"
    wait_for "$1 ($MTLS_HOST via the gateway)" answers_200 80 "$MTLS_HOST" "$POD_HOST_IP" "${in_pod[@]}"
}
