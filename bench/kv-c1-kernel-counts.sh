#!/usr/bin/env bash
# Kernel events per request of a one-client (unpipelined) redis-benchmark row, the same tracepoints on every server
# (issue 14, session 31, h180): what a one-client request costs the kernel on redis-server (epoll + read + write) and on
# EioSharp.Kv (io_uring, or --backend epoll), counted rather than timed, so the machine's load moves them little.
#
#   bash bench/kv-c1-kernel-counts.sh LABEL=SPEC ...
#
# SPEC: `redis` (redis-server --save '' --appendonly no, as bench/kv-vs-redis.sh runs it) or `PATH/EioSharp.Kv.dll` with
# more server arguments after `|` (e.g. `/tmp/s31-base/kv/EioSharp.Kv.dll|--backend|epoll`); environment for one Kv
# target: `V=x,W=y@SPEC`. For each target and each TEST (get set): a fresh server on 127.0.0.1 (Kv with its defaults, AOF
# everysec), WARM_SECONDS of unmeasured one-client passes (the JIT's tiering is timed: docs/BENCHMARKS.md session 27),
# then one run of N requests under `perf stat -p PID` (every thread of the server) of:
#   system calls (all, io_uring_enter, read, write, epoll_wait, pwrite64), the server's switches out (sched_switch: a
#   sleep or a preemption) and the wake-ups it makes (sched_wakeup in its context), io_uring's submissions, poll arms,
#   task-work adds and runs, completions and waits, the socket layer's receives and sends (sock_recv_length counts
#   failed tries as well: a receive tried before its data is there), hrtimer starts and cancels (a sleep with a
#   timeout), and the interrupts taken in its context (reschedule IPIs, function-call IPIs, the local timer);
# then a plain run of N requests: ops/s and CPU per request (utime+stime of every thread, /proc/PID/stat), and each
# thread's CPU per request over that run (threads with at least 0.005 µs; /proc/PID/task/TID/schedstat, nanoseconds).
# Printed: per request, events at or above 0.0005. Environment: TESTS ("get set"), N (40000), WARM_SECONDS (10),
# REPEATS (1; targets alternate within a repeat), CLIENTS (1: the same counts for another row, e.g. 50),
# PIPELINE (1: redis-benchmark -P), DATA (16: -d, the value size), EXTRA_EVENTS (more tracepoints, comma-separated,
# e.g. tlb:tlb_flush,irq_vectors:call_function_entry).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
source "$ROOT/bench/lib/servers.sh" kv-c1-kernel-counts
TESTS=${TESTS:-get set}
N=${N:-40000}
WARM_SECONDS=${WARM_SECONDS:-10}
REPEATS=${REPEATS:-1}
CLIENTS=${CLIENTS:-1}
PIPELINE=${PIPELINE:-1}
DATA=${DATA:-16}
EVENTS='raw_syscalls:sys_enter,syscalls:sys_enter_io_uring_enter,syscalls:sys_enter_read,syscalls:sys_enter_write'
EVENTS+=',syscalls:sys_enter_epoll_wait,syscalls:sys_enter_pwrite64,sched:sched_switch,sched:sched_wakeup'
EVENTS+=',io_uring:io_uring_submit_req,io_uring:io_uring_poll_arm,io_uring:io_uring_task_add'
EVENTS+=',io_uring:io_uring_local_work_run,io_uring:io_uring_task_work_run,io_uring:io_uring_complete'
EVENTS+=',io_uring:io_uring_cqring_wait,io_uring:io_uring_queue_async_work,sock:sock_recv_length,sock:sock_send_length'
EVENTS+=',timer:hrtimer_start,timer:hrtimer_cancel,timer:timer_start,irq_vectors:reschedule_entry'
EVENTS+=',irq_vectors:call_function_single_entry,irq_vectors:local_timer_entry'
EVENTS+=',exceptions:page_fault_user,exceptions:page_fault_kernel,syscalls:sys_enter_fdatasync,syscalls:sys_enter_fsync'
EVENTS+=',syscalls:sys_enter_madvise,syscalls:sys_enter_futex'
[ -n "${EXTRA_EVENTS:-}" ] && EVENTS+=",$EXTRA_EVENTS"

cpu_ticks() { # pid -> utime+stime of the whole process
  awk '{print $14 + $15}' "/proc/$1/stat"
}
thread_ticks() { # pid -> "tid comm runtime_ns" per thread (schedstat: nanoseconds, not 10 ms ticks)
  local t comm ns
  for t in /proc/"$1"/task/*; do
    comm=$(tr ' ' _ <"$t/comm" 2>/dev/null) || continue
    read -r ns _ <"$t/schedstat" 2>/dev/null || continue
    echo "${t##*/} $comm $ns"
  done
}
run_c1() { # port test n -> ops/s
  redis-benchmark -p "$1" -n "$3" -r 100000 -c "$CLIENTS" -P "$PIPELINE" -d "$DATA" -t "$2" --csv 2>/dev/null | awk -F'","' 'NR==2 {gsub(/"/, "", $2); print $2}'
}

for rep in $(seq 1 "$REPEATS"); do
  for target in "$@"; do
    label=${target%%=*}
    start_server "${target#*=}"
    port=$SERVER_PORT; dir=$SERVER_DIR; pid=$SERVER_PID
    end=$((SECONDS + WARM_SECONDS))
    run_c1 "$port" set 8000 >/dev/null; run_c1 "$port" get 8000 >/dev/null
    while [ $SECONDS -lt $end ]; do run_c1 "$port" set 8000 >/dev/null; run_c1 "$port" get 8000 >/dev/null; done
    for test in $TESTS; do
      # `perf stat -p` opens its counters on every thread of the server; a thread that ends while it attaches (the
      # runtime's short-lived workers) makes it fail and exit at once (session 38: under set -e the `kill` of the exited
      # perf then ended the whole script). Retried a few times; a run without counts is said so, not fatal (§214).
      attached=0
      for _ in 1 2 3 4 5; do
        perf stat -x, -o "$dir/perf.$test" -e "$EVENTS" -p "$pid" 2>"$dir/perf.$test.err" &
        pp=$!; sleep 0.5
        if kill -0 "$pp" 2>/dev/null; then attached=1; break; fi
        wait "$pp" 2>/dev/null || true
      done
      run_c1 "$port" "$test" "$N" >/dev/null
      if [ "$attached" = 1 ]; then kill -INT "$pp" 2>/dev/null || true; wait "$pp" 2>/dev/null || true; fi
      [ "$attached" = 1 ] || { echo "$label c$CLIENTS-$test rep $rep: perf stat could not attach 5 times ($(head -c 200 "$dir/perf.$test.err" 2>/dev/null)); no counts" >&2; : >"$dir/perf.$test"; }
      thread_ticks "$pid" >"$dir/threads.before"
      before=$(cpu_ticks "$pid")
      rate=$(run_c1 "$port" "$test" "$N")
      after=$(cpu_ticks "$pid")
      thread_ticks "$pid" >"$dir/threads.after"
      threads=$(awk -v n="$N" 'NR == FNR { r[$1] = $3; next }
        { d = $3 - r[$1]; if (d / n >= 5) printf "%s %.2f  ", $2, d / 1000 / n }' \
        "$dir/threads.before" "$dir/threads.after")
      counts=$(awk -F, -v n="$N" '$1 ~ /^[0-9]+$/ { name = $3; sub(/^[a-z_]+:/, "", name); sub(/^sys_enter_/, "", name);
        sub(/^io_uring_/, "u_", name); if (name == "sys_enter") name = "SYSCALLS"; if ($1 / n >= 0.0005) printf "%s %.3f  ", name, $1 / n }' "$dir/perf.$test")
      printf '%s c%s-%s rep %d: ops/s %s cpu %.2f us/req | %s| load %s\n' "$label" "$CLIENTS" "$test" "$rep" "$rate" \
        "$(python3 -c "print(($after - $before) / $CLK_TCK * 1e6 / $N)")" "$counts" "$(cut -d' ' -f1 /proc/loadavg)"
      printf '%s c%s-%s rep %d threads (µs/req, schedstat): %s\n' "$label" "$CLIENTS" "$test" "$rep" "$threads"
    done
    kill "$pid"; wait "$pid" 2>/dev/null || true
  done
done
