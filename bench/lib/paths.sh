# bench/run.sh's paths: for each, how the load reaches the upstream
# directly and through a proxy, and one measurement of it (throughput,
# fixed-rate latency, CPU, memory) appended to $RESULTS as `key=value`.
# Sourced; uses the knobs, ports and hosts set in run.sh (and the pod's,
# bench/lib/pod.sh, for the sidecar paths).

ALL_PATHS="http tls-passthrough tls-passthrough-large tls-origination new-conn new-conn-tls slow-upstream sidecar-http sidecar-mtls-gateway"
# The paths whose load starts in the app's pod, behind its sidecar.
POD_PATHS="sidecar-http sidecar-mtls-gateway"

# load_args PATH TARGET: bench-load's address and flags for PATH, straight
# to the upstream (TARGET direct) or through the proxy's listeners.
load_args() {
    local path=$1 target=$2 http tls
    if [[ $target == direct ]]; then
        http=$UPSTREAM_PORT tls=$TLS_UPSTREAM_PORT
    else
        http=$LISTEN_PORT tls=$TLS_LISTEN_PORT
    fi
    case $path in
        http | slow-upstream) echo "127.0.0.1:$http --host $HOST" ;;
        tls-passthrough) echo "127.0.0.1:$tls --host $TLS_HOST --tls-ca $TLS_CA" ;;
        tls-passthrough-large) echo "127.0.0.1:$tls --host $TLS_HOST --tls-ca $TLS_CA --path /big" ;;
        tls-origination)
            # Direct, the client speaks TLS itself; through the gateway,
            # plain HTTP that the gateway originates TLS for.
            if [[ $target == direct ]]; then
                echo "127.0.0.1:$TLS_UPSTREAM_PORT --host $ORIG_HOST --tls-ca $TLS_CA"
            else
                echo "127.0.0.1:$LISTEN_PORT --host $ORIG_HOST"
            fi
            ;;
        new-conn) echo "127.0.0.1:$http --host $HOST --new-connection" ;;
        new-conn-tls) echo "127.0.0.1:$tls --host $TLS_HOST --tls-ca $TLS_CA --new-connection" ;;
        # The same address either way: the capture rules decide.
        sidecar-http) echo "$POD_HOST_IP:$UPSTREAM_PORT --host $SIDECAR_HOST" ;;
        sidecar-mtls-gateway)
            # Direct, the client speaks TLS itself; through the sidecar,
            # plain HTTP to the service's port 80 (captured).
            if [[ $target == direct ]]; then
                echo "$POD_HOST_IP:$TLS_UPSTREAM_PORT --host $MTLS_HOST --tls-ca $POD_TLS_CA"
            else
                echo "$POD_HOST_IP:80 --host $MTLS_HOST"
            fi
            ;;
        *) die "unknown path $path (paths: $ALL_PATHS config-size)" ;;
    esac
}

# load_prefix PATH TARGET: what the load command runs under: for the
# sidecar paths, the app's pod, where a direct load runs as the proxy's
# uid, which the capture rules let through untouched.
load_prefix() {
    [[ " $POD_PATHS " == *" $1 "* ]] || return 0
    if [[ $2 == direct ]]; then pod_exec_as_proxy; else pod_exec; fi
}

# load_shape PATH: closed-loop connections and the fixed rate (req/s)
# with its connections.
load_shape() {
    case $1 in
        tls-passthrough-large) echo "$BIG_CONNECTIONS $BIG_RATE $BIG_CONNECTIONS" ;;
        new-conn | new-conn-tls) echo "$CONNECTIONS $NEW_CONN_RATE $RATE_CONNECTIONS" ;;
        *) echo "$CONNECTIONS $RATE $RATE_CONNECTIONS" ;;
    esac
}

# slow_background TARGET SECONDS: requests to the slow host alongside the
# measured load, on the proxy or straight to the slow upstream.
slow_background() {
    local port=$LISTEN_PORT
    [[ $1 == direct ]] && port=$SLOW_UPSTREAM_PORT
    taskset -c "$LOAD_CPU" "$RELEASE/bench-load" "127.0.0.1:$port" --host "$SLOW_HOST" \
        --rate "$SLOW_RATE" --connections "$SLOW_CONNECTIONS" --seconds "$2" --warmup 0
}

# prefixed PREFIX LINE: LINE's keys with PREFIX before each.
prefixed() { sed "s/\([a-z0-9_]*\)=/$1\1=/g" <<<"$2"; }

# ms_per_1k TICKS REQUESTS: CPU time in ms per 1,000 requests.
ms_per_1k() {
    awk -v t="$1" -v hz="$CLK_TCK" -v n="${2:-0}" 'BEGIN { printf "%.2f", n ? t * 1000 / hz / n * 1000 : 0 }'
}

# measure PATH TARGET ROUND [PID...]: warm-up, throughput (closed loop,
# with the proxies' CPU time and their RSS halfway, summed over the PIDs;
# with two, the first, the sidecar, also alone), then latency at a fixed
# rate.
measure() {
    local path=$1 target=$2 round=$3
    shift 3
    local pids=("$@")
    local -a args prefix
    read -r -a args <<<"$(load_args "$path" "$target")"
    read -r -a prefix <<<"$(load_prefix "$path" "$target")"
    local connections rate rate_connections
    read -r connections rate rate_connections <<<"$(load_shape "$path")"
    local load=(taskset -c "$LOAD_CPU" "${prefix[@]}" "$LOAD_BIN" "${args[@]}")
    local line="path=$path target=$target round=$round" slow_file="$WORK/slow.out" slow=""
    wait_quiet
    echo "bench: $path via $target (round $round)" >&2
    ((${#pids[@]})) && line+=" rss_idle_kb=$(rss_kb VmRSS "${pids[@]}")"
    if [[ $path == slow-upstream ]]; then
        slow_background "$target" $((WARMUP + 2 * DURATION + 2)) >"$slow_file" &
        slow=$!
    fi

    local ticks_before="" sidecar_before="" tput rss_load="" sidecar_rss=""
    if [[ $path == http || $path == sidecar-http ]]; then
        local url="http://${args[0]}/" wrk=(taskset -c "$LOAD_CPU" "${prefix[@]}" wrk -t1 -c"$connections")
        "${wrk[@]}" -d"${WARMUP}s" -H "Host: ${args[2]}" "$url" >/dev/null
        ((${#pids[@]})) && ticks_before=$(cpu_ticks "${pids[@]}") sidecar_before=$(cpu_ticks "${pids[0]}")
        "${wrk[@]}" -d"${DURATION}s" -H "Host: ${args[2]}" -s "$WRK_SCRIPT" "$url" |
            awk '/^RESULT/ { $1 = ""; print }' >"$WORK/tput.out" &
    else
        "${load[@]}" --connections "$connections" --seconds "$WARMUP" --warmup 0 >/dev/null
        ((${#pids[@]})) && ticks_before=$(cpu_ticks "${pids[@]}") sidecar_before=$(cpu_ticks "${pids[0]}")
        "${load[@]}" --connections "$connections" --seconds "$DURATION" --warmup 0 >"$WORK/tput.out" &
    fi
    local loader=$!
    if ((${#pids[@]})); then
        sleep "$(awk -v d="$DURATION" 'BEGIN { print d / 2 }')"
        rss_load=$(rss_kb VmRSS "${pids[@]}") sidecar_rss=$(rss_kb VmRSS "${pids[0]}")
    fi
    wait "$loader"
    tput=$(<"$WORK/tput.out")
    line+=" $(prefixed tput_ "$tput")"
    if ((${#pids[@]})); then
        local requests
        requests=$(grep -o 'requests=[0-9]*' <<<"$tput" | cut -d= -f2)
        line+=" cpu_ms_per_1k=$(ms_per_1k $(($(cpu_ticks "${pids[@]}") - ticks_before)) "$requests")"
        line+=" rss_load_kb=$rss_load"
        if ((${#pids[@]} > 1)); then
            line+=" sidecar_cpu_ms_per_1k=$(ms_per_1k $(($(cpu_ticks "${pids[0]}") - sidecar_before)) "$requests")"
            line+=" sidecar_rss_load_kb=$sidecar_rss"
        fi
    fi

    line+=" $(prefixed fixed_ "$("${load[@]}" --rate "$rate" --connections "$rate_connections" \
        --seconds "$DURATION" --warmup 1)")"
    if [[ -n $slow ]]; then
        wait "$slow"
        line+=" $(prefixed slow_ "$(<"$slow_file")")"
    fi
    ((${#pids[@]})) && line+=" hwm_kb=$(rss_kb VmHWM "${pids[@]}")"
    echo "$line" >>"$RESULTS"
    echo "bench:   $line" >&2
}
