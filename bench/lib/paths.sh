# bench/run.sh's paths: for each, how the load reaches the upstream
# directly and through a proxy, and one measurement of it (throughput,
# fixed-rate latency, CPU, memory) appended to $RESULTS as `key=value`.
# Sourced; uses the knobs, ports and hosts set in run.sh.

ALL_PATHS="http tls-passthrough tls-passthrough-large tls-origination new-conn new-conn-tls slow-upstream"

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
        *) die "unknown path $path (paths: $ALL_PATHS config-size)" ;;
    esac
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

# measure PATH TARGET ROUND [PID]: warm-up, throughput (closed loop, with
# the proxy's CPU time and its RSS halfway), then latency at a fixed rate.
measure() {
    local path=$1 target=$2 round=$3 pid=${4:-}
    local -a args
    read -r -a args <<<"$(load_args "$path" "$target")"
    local connections rate rate_connections
    read -r connections rate rate_connections <<<"$(load_shape "$path")"
    local load=(taskset -c "$LOAD_CPU" "$RELEASE/bench-load" "${args[@]}")
    local line="path=$path target=$target round=$round" slow_file="$WORK/slow.out" slow=""
    wait_quiet
    echo "bench: $path via $target (round $round)" >&2
    [[ -n $pid ]] && line+=" rss_idle_kb=$(rss_kb "$pid" VmRSS)"
    if [[ $path == slow-upstream ]]; then
        slow_background "$target" $((WARMUP + 2 * DURATION + 2)) >"$slow_file" &
        slow=$!
    fi

    local ticks_before="" tput rss_load=""
    if [[ $path == http ]]; then
        local url="http://127.0.0.1:${args[0]#*:}/"
        taskset -c "$LOAD_CPU" wrk -t1 -c"$connections" -d"${WARMUP}s" -H "Host: $HOST" "$url" >/dev/null
        [[ -n $pid ]] && ticks_before=$(cpu_ticks "$pid")
        taskset -c "$LOAD_CPU" wrk -t1 -c"$connections" -d"${DURATION}s" -H "Host: $HOST" \
            -s "$ROOT/bench/wrk-report.lua" "$url" | awk '/^RESULT/ { $1 = ""; print }' >"$WORK/tput.out" &
    else
        "${load[@]}" --connections "$connections" --seconds "$WARMUP" --warmup 0 >/dev/null
        [[ -n $pid ]] && ticks_before=$(cpu_ticks "$pid")
        "${load[@]}" --connections "$connections" --seconds "$DURATION" --warmup 0 >"$WORK/tput.out" &
    fi
    local loader=$!
    if [[ -n $pid ]]; then
        sleep "$(awk -v d="$DURATION" 'BEGIN { print d / 2 }')"
        rss_load=$(rss_kb "$pid" VmRSS)
    fi
    wait "$loader"
    tput=$(<"$WORK/tput.out")
    line+=" $(prefixed tput_ "$tput")"
    if [[ -n $pid ]]; then
        local ticks=$(($(cpu_ticks "$pid") - ticks_before)) requests
        requests=$(grep -o 'requests=[0-9]*' <<<"$tput" | cut -d= -f2)
        line+=" cpu_ms_per_1k=$(awk -v t="$ticks" -v hz="$CLK_TCK" -v n="${requests:-0}" \
            'BEGIN { printf "%.2f", n ? t * 1000 / hz / n * 1000 : 0 }')"
        line+=" rss_load_kb=$rss_load"
    fi

    line+=" $(prefixed fixed_ "$("${load[@]}" --rate "$rate" --connections "$rate_connections" \
        --seconds "$DURATION" --warmup 1)")"
    if [[ -n $slow ]]; then
        wait "$slow"
        line+=" $(prefixed slow_ "$(<"$slow_file")")"
    fi
    [[ -n $pid ]] && line+=" hwm_kb=$(rss_kb "$pid" VmHWM)"
    echo "$line" >>"$RESULTS"
    echo "bench:   $line" >&2
}
