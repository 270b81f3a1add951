# bench/run.sh's config-size runs: for each count in CONFIG_SIZES, a
# control plane serving the bench gateway's config plus that many more
# ServiceEntries, then the agent and Envoy started one after the other:
# the time from the proxy's start to its admin /ready answering 200, and
# its RSS a second later. Appends `key=value` lines to $RESULTS. Sourced;
# uses the helpers and settings of run.sh.

# time_to_ready NAME PID: milliseconds from $STARTED until the proxy's
# admin interface says ready; dies after CONFIG_READY_WAIT s.
time_to_ready() {
    local deadline=$((STARTED + CONFIG_READY_WAIT * 1000))
    until admin_ready "$ADMIN_PORT"; do
        if (($(now_ms) > deadline)); then
            tail -n 20 "$LOGS/$1.err" >&2 || true
            die "$1 not ready within ${CONFIG_READY_WAIT}s"
        fi
        kill -0 "$2" 2>/dev/null || die "$1 exited: $(tail -n 5 "$LOGS/$1.err")"
        sleep 0.05
    done
    echo $(($(now_ms) - STARTED))
}

# measure_config_size COUNT ROUND
measure_config_size() {
    local count=$1 round=$2 target ready
    local dir="$WORK/config-$count"
    rm -rf "$dir"
    mkdir -p "$dir"
    write_gateway_config "$dir/bench.yaml"
    write_service_entries "$dir/services.yaml" "$count"
    start control-plane-$count "$LOAD_CPU" "$RELEASE/control-plane" serve --config "$dir" \
        --mesh "$MESH" --ca-dir "$CA_DIR" --secure-xds-addr "$XDS_IP:$XDS_PORT" \
        --metrics-addr "127.0.0.1:$METRICS_PORT" --gateway-service-account "istio-system/$SERVICE_ACCOUNT"
    local control_plane=$PID
    wait_for "control plane ($count ServiceEntries)" port_open "$XDS_PORT" "$XDS_IP"
    for target in agent envoy; do
        wait_quiet
        echo "bench: config size $count via $target (round $round)" >&2
        STARTED=$(now_ms)
        start_proxy "$target" "config-$count-$target"
        ready=$(time_to_ready "config-$count-$target" "$PID")
        sleep 1
        local line="path=config-$count target=$target round=$round ready_ms=$ready"
        line+=" rss_kb=$(rss_kb VmRSS "$PID") hwm_kb=$(rss_kb VmHWM "$PID")"
        echo "$line" >>"$RESULTS"
        echo "bench:   $line" >&2
        stop_all "${PROXY_PIDS[@]}"
    done
    stop "$control_plane"
}
