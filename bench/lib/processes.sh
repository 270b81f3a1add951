# bench/run.sh's process helpers: starting pinned processes, waiting for
# them, and reading their memory and CPU time from /proc. Sourced; uses
# $LOGS and appends to $PIDS.

die() { echo "bench: $*" >&2; exit 1; }

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

# port_open PORT [IP]: whether something listens on IP (127.0.0.1) PORT.
port_open() { (exec 3<>"/dev/tcp/${2:-127.0.0.1}/$1") 2>/dev/null; }
# answers_200 PORT HOST [IP [CMD...]]: whether GET / with Host HOST to
# IP (127.0.0.1) PORT, sent by curl run under CMD (e.g. in a namespace),
# answers 200.
answers_200() {
    local port=$1 host=$2 ip=${3:-127.0.0.1}
    shift $(($# < 3 ? $# : 3))
    [[ $("$@" curl -s -o /dev/null -w '%{http_code}' -H "Host: $host" "http://$ip:$port/") == 200 ]]
}
# admin_ready PORT [IP]: whether the admin interface on IP (127.0.0.1)
# PORT says ready.
admin_ready() { curl -sf -o /dev/null "http://${2:-127.0.0.1}:$1/ready"; }

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

# rss_kb KEY PID...: VmRSS or VmHWM (KEY) in kB, summed over the PIDs.
rss_kb() {
    local key=$1 pid files=()
    shift
    for pid in "$@"; do files+=("/proc/$pid/status"); done
    awk -v key="$key:" '$1 == key { sum += $2 } END { print sum }' "${files[@]}"
}

# cpu_ticks PID...: user + system CPU time of the PIDs (all their
# threads), in clock ticks.
cpu_ticks() {
    local pid files=()
    for pid in "$@"; do files+=("/proc/$pid/stat"); done
    awk '{ sum += $14 + $15 } END { print sum }' "${files[@]}"
}
CLK_TCK=$(getconf CLK_TCK)

# now_ms: milliseconds since the epoch.
now_ms() { date +%s%3N; }
