#!/usr/bin/env bash
# Clock reads per request (libc clock_gettime calls: Stopwatch.GetTimestamp, DateTime(Offset).UtcNow and
# Environment.TickCount64 all end there, as redis-server's ustime/getMonotonicUs do) and the other per-request counts
# of one server on one redis-benchmark row, by uprobe and tracepoint (issue 14, session 27, h165). Needs root (perf probe).
#
#   bash bench/kv-clock-reads.sh TARGET ROW N        # TARGET: a path of EioSharp.Kv.dll (KV_ARGS: more arguments) or redis
#   e.g. bash bench/kv-clock-reads.sh /tmp/s27-base/kv/EioSharp.Kv.dll c1-set 20000
#
# ROW: c1-set, c1-get, c50-set, c50-get (-c 1 / -c 50, -r 100000 -d 16; P=16 for -P 16). The server starts fresh (Kv:
# its defaults plus KV_ARGS; redis-server --save '' --appendonly no plus REDIS_ARGS), two unmeasured runs warm it, then
# `perf stat` counts, over one run of N requests: uprobes on libc's clock_gettime and pwrite64, io_uring_enter and
# sched_switch (the server's thread sleeping). CALLERS=1: a second run under `perf record -g` of the clock_gettime uprobe
# (the JIT's perf map on, W^X off so that its frames resolve) prints who reads the clock, per request.
# A read costs ~25-45 ns on this VM (tsc clocksource; CLOCK_MONOTONIC_COARSE ~9 ns). The uprobes are removed at the end.
set -u
target=$1; row=$2; n=$3
L=$(ldconfig -p | awk '/libc.so.6 .*x86-64/ {print $NF; exit}')
perf probe -q -x "$L" -a clock_gettime 2>/dev/null; perf probe -q -x "$L" -a __libc_pwrite 2>/dev/null
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
d=$(mktemp -d /tmp/kv-clock-reads.XXXXXX)
start() {
  if [ "$target" = redis ]; then
    # shellcheck disable=SC2086
    redis-server --port "$port" --bind 127.0.0.1 --dir "$d" --appendonly no --save '' --daemonize no --logfile "$d/log" ${REDIS_ARGS:-} &
  else
    # shellcheck disable=SC2086
    DOTNET_PerfMapEnabled=${CALLERS:+1} DOTNET_EnableWriteXorExecute=${CALLERS:+0} \
      dotnet "$target" --port "$port" --bind 127.0.0.1 --dir "$d/data" ${KV_ARGS:-} >"$d/out" 2>&1 &
  fi
  pid=$!
  for _ in $(seq 600); do [ "$(redis-cli -p "$port" ping 2>/dev/null)" = PONG ] && break; sleep 0.1; done
}
c=${row%%-*}; t=${row#*-}
run() { redis-benchmark -p "$port" -n "$1" -r 100000 -c "${c#c}" -P "${P:-1}" -d 16 -t "$t" -q >/dev/null; }
start
run "$n"; run "$n"
perf stat -x, -o "$d/perf" -e probe_libc:clock_gettime,probe_libc:__libc_pwrite,syscalls:sys_enter_io_uring_enter,sched:sched_switch -p "$pid" &
pp=$!; sleep 0.5
run "$n"
kill -INT $pp; wait $pp
printf '%s %s P%s:' "$(basename "$(dirname "$target")")/$(basename "$target")" "$row" "${P:-1}"
awk -F, -v n="$n" '$1 ~ /^[0-9]+$/ { split($3, a, ":"); printf "  %s %.3f", a[2], $1 / n } END { print "  (per request)" }' "$d/perf"
if [ -n "${CALLERS:-}" ]; then
  perf record -q -o "$d/clk.data" -e probe_libc:clock_gettime -g -p "$pid" 2>/dev/null &
  pp=$!; sleep 0.5
  run "$n"
  kill -INT $pp; wait $pp
  # The frame that called libc's clock_gettime (the first managed or native frame above it), per request.
  perf script -i "$d/clk.data" 2>/dev/null | awk -v n="$n" '
    /probe_libc:clock_gettime/ { want = 1; next }
    want && /clock_gettime/ { next }
    want && NF > 1 { $1 = ""; sub(/^ /, ""); sub(/\(\/tmp\/perf-[0-9]+\.map\)|\+0x[0-9a-f]+/, ""); c[substr($0, 1, 160)]++; want = 0 }
    END { for (k in c) printf "%8.3f  %s\n", c[k] / n, k }' | sort -rn | head -20
fi
kill "$pid"; wait "$pid" 2>/dev/null; rm -rf "$d"
perf probe -q -d probe_libc:clock_gettime 2>/dev/null; perf probe -q -d probe_libc:__libc_pwrite 2>/dev/null
