#!/usr/bin/env bash
# How the replies of a 50-client redis-benchmark row reach the client, per request, on both sides of the socket, every
# target in the same run (session 33, h188, issues 12 and 14): for each workload, round and target, alternating,
#   - a plain run: requests/s; the client's user and system µs per request (/usr/bin/time) and its sleeps; the server's
#     user and system µs and voluntary switches (sleeps) per request, all threads (/proc/PID/task/*);
#   - a counted run of the same size: `perf stat` of the client (as perf's child) and of the server (-p, every thread):
#     syscalls (epoll_wait, epoll_ctl, sendto, recvfrom; io_uring_enter, read, write), wake-ups the task made
#     (sched:sched_waking), IPIs it sent (ipi:ipi_send_cpu: a wake-up of a thread whose vCPU is halted costs the waker an
#     IPI, a VM exit on this machine), wake-ups of an idle-polling CPU that needed none (sched:sched_wake_idle_without_ipi),
#     the reschedule and function-call interrupts that landed while it ran, its context switches; for io_uring servers
#     the requests submitted (io_uring:io_uring_submit_req) and the task work queued for them (io_uring:io_uring_task_add,
#     in the context of the thread that made the completion: a client's sendto completes a server's armed receive);
#   - a recorded run: `perf record -e syscalls:sys_exit_epoll_wait` of the client: the events each epoll_wait returned
#     (mean, median, and the share of calls that returned at most 4).
#
#   bash bench/kv-client-wakeups.sh TARGET ...   # TARGET: `redis`, a path of EioSharp.Kv.dll, or "V=x,W=y@path" (that Kv
#                                                # with that environment), server arguments after `|` (`path|--domains|2`)
#
# Workloads (WORKLOADS, default "evalsha set"): evalsha = bench/kv-features.sh's EVALSHA row (redis-benchmark -c 50,
# EVALSHA of INCR + SET + GET; both servers appendonly yes + everysec, no save points); set = bench/kv-vs-redis.sh's c50
# SET row (redis-benchmark -c 50 -d 16 -t set; redis-server --appendonly no, EioSharp.Kv its defaults, AOF everysec);
# p16get / p16set = the c50-P16 rows (-c 50 -P 16), c1get / c1set = the one-client rows (-c 1), servers as for set (the
# GET rows after 400,000 -P 16 SETs on every server, so that they read the keys; session 41, h223, §220).
# Environment: N (200000 requests per run), REPEATS (5), WARM (50000), THREADS (empty; N: redis-benchmark --threads N),
# RECORD (1; 0 skips the recorded run), QUIET (empty; a fraction such as 0.8: before each target's runs, wait until
# both CPUs were idle that share of a 2-second sample, up to QUIET_WAIT seconds (600), so that runs land in quiet windows
# of a shared machine; the idle share found is recorded with the run).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
N="${N:-200000}"; REPEATS="${REPEATS:-5}"; WARM="${WARM:-50000}"; RECORD="${RECORD:-1}"
WORKLOADS="${WORKLOADS:-evalsha set}"
[ $# -gt 0 ] || { sed -n '2,25p' "$0"; exit 2; }
# WORK, PIDS, CLK_TCK, the cleanup trap, free_port, wait_ping, start_server
source "$ROOT/bench/lib/servers.sh" kv-client-wakeups
THREAD_ARGS=(); [ -n "${THREADS:-}" ] && THREAD_ARGS=(--threads "$THREADS")

idle_share() { # both CPUs' idle share over a 2-second sample
  local a b; a=$(head -1 /proc/stat); sleep 2; b=$(head -1 /proc/stat)
  python3 -c "import sys; a, b = [list(map(int, x.split()[1:])) for x in sys.argv[1:3]]; d = [y - x for x, y in zip(a, b)]; print(round((d[3] + d[4]) / sum(d), 3))" "$a" "$b"
}
wait_quiet() { # -> prints the idle share of the last sample
  local idle start=$SECONDS
  while true; do
    idle=$(idle_share)
    if [ -z "${QUIET:-}" ] || python3 -c "import sys; sys.exit(0 if $idle >= $QUIET else 1)" || [ $((SECONDS - start)) -ge "${QUIET_WAIT:-600}" ]; then
      echo "$idle"; return
    fi
  done
}

snap() { # pid -> "utime stime vol invol" summed over the threads
  cat /proc/"$1"/task/*/stat 2>/dev/null | sed 's/.*) //' | awk '{u += $12; s += $13} END {printf "%d %d ", u, s}'
  cat /proc/"$1"/task/*/status 2>/dev/null | awk '/^voluntary_ctxt/ {v += $2} /^nonvoluntary_ctxt/ {i += $2} END {print v + 0, i + 0}'
}

CEV='syscalls:sys_enter_epoll_wait,syscalls:sys_enter_epoll_ctl,syscalls:sys_enter_sendto,syscalls:sys_enter_recvfrom,syscalls:sys_enter_write,syscalls:sys_enter_read,raw_syscalls:sys_enter,sched:sched_waking,ipi:ipi_send_cpu,sched:sched_wake_idle_without_ipi,irq_vectors:reschedule_entry,irq_vectors:call_function_single_entry,io_uring:io_uring_task_add,sched:sched_switch'
SEV='syscalls:sys_enter_io_uring_enter,syscalls:sys_enter_epoll_wait,syscalls:sys_enter_read,syscalls:sys_enter_write,raw_syscalls:sys_enter,sched:sched_waking,ipi:ipi_send_cpu,sched:sched_wake_idle_without_ipi,irq_vectors:reschedule_entry,irq_vectors:call_function_single_entry,io_uring:io_uring_submit_req,io_uring:io_uring_task_add,sched:sched_switch'
RES="$WORK/res"; : >"$RES"
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
for w in $WORKLOADS; do
  declare -a PORT=() PID=()
  i=0
  for target in "$@"; do
    case "$w:$target" in
      evalsha:redis) start_server redis -- --appendonly yes --appendfsync everysec --save "" ;;
      evalsha:*) start_server "$target" -- --appendonly yes --appendfsync everysec --save "" ;;
      set:redis|p16get:redis|p16set:redis|c1get:redis|c1set:redis) start_server redis ;;
      set:*|p16get:*|p16set:*|c1get:*|c1set:*) start_server "$target" ;;
      *) echo "unknown workload $w" >&2; exit 2 ;;
    esac
    PORT[$i]=$SERVER_PORT; PID[$i]=$SERVER_PID; i=$((i + 1))
  done
  if [ "$w" = evalsha ]; then
    SCRIPT="local n = redis.call('INCR', KEYS[1]) redis.call('SET', KEYS[1] .. ':v', n) return redis.call('GET', KEYS[1] .. ':v')"
    SHA=$(redis-cli -p "${PORT[0]}" SCRIPT LOAD "$SCRIPT")
    for j in "${!PORT[@]}"; do redis-cli -p "${PORT[$j]}" SCRIPT LOAD "$SCRIPT" >/dev/null; done
    CMD=(-c 50 EVALSHA "$SHA" 1 'key:__rand_int__')
  else
    case $w in
      set) CMD=(-c 50 -t set -d 16) ;;
      p16get) CMD=(-c 50 -P 16 -t get -d 16) ;;
      p16set) CMD=(-c 50 -P 16 -t set -d 16) ;;
      c1get) CMD=(-c 1 -t get -d 16) ;;
      c1set) CMD=(-c 1 -t set -d 16) ;;
    esac
    # a GET row reads the keys a SET pass wrote first (kv-vs-redis.sh runs SET before GET)
    if [[ $w == *get ]]; then
      for j in "${!PORT[@]}"; do redis-benchmark -h 127.0.0.1 -p "${PORT[$j]}" -c 50 -P 16 -n 400000 -r 100000 -t set -d 16 -q >/dev/null 2>&1; done
    fi
  fi
  bench() { # port n -> requests/s (the client may run under a wrapper given before)
    "${@:3}" redis-benchmark -h 127.0.0.1 -p "$1" -n "$2" -r 100000 "${THREAD_ARGS[@]}" --csv "${CMD[@]}" 2>/dev/null |
      awk -F'","' 'NR == 2 { gsub(/"/, "", $2); print $2 }'
  }
  for j in "${!PORT[@]}"; do bench "${PORT[$j]}" "$WARM" >/dev/null; done
  for rep in $(seq 1 "$REPEATS"); do
    for j in "${!PORT[@]}"; do
      pid=${PID[$j]}; port=${PORT[$j]}
      idle=1; [ -n "${QUIET:-}" ] && idle=$(wait_quiet)
      a=$(snap "$pid")
      rate=$(bench "$port" "$N" /usr/bin/time -f "%U %S %w %c" -o "$WORK/time")
      b=$(snap "$pid")
      echo "plain $w $j $rate $N $CLK_TCK $a $b $(tail -1 "$WORK/time") $(cut -d' ' -f1 /proc/loadavg) $idle" >>"$RES"
      perf stat -x, -o "$WORK/sperf" -e "$SEV" -p "$pid" & pp=$!; sleep 0.3
      perf stat -x, -o "$WORK/cperf" -e "$CEV" -- redis-benchmark -h 127.0.0.1 -p "$port" -n "$N" -r 100000 \
        "${THREAD_ARGS[@]}" --csv "${CMD[@]}" >/dev/null 2>&1
      kill -INT $pp; wait $pp 2>/dev/null || true
      python3 "$ROOT/bench/lib/perf-stat-counts.py" "$w $j" "$N" "$WORK/sperf" "$WORK/cperf" >>"$RES"
      if [ "$RECORD" = 1 ]; then
        perf record -q -e syscalls:sys_exit_epoll_wait -o "$WORK/rec" -- redis-benchmark -h 127.0.0.1 -p "$port" \
          -n "$N" -r 100000 "${THREAD_ARGS[@]}" --csv "${CMD[@]}" >/dev/null 2>&1
        perf script -i "$WORK/rec" -F trace 2>/dev/null | python3 -c '
import sys, statistics
r = [int(l.split("0x")[-1], 16) for l in sys.stdin if "0x" in l]
r = [x for x in r if x < 1 << 31]
print(f"epoll {sys.argv[1]} {sys.argv[2]} calls={len(r)} mean={statistics.mean(r):.2f} median={statistics.median(r):.1f} le4={sum(1 for x in r if x <= 4) / len(r):.3f}")
' "$w" "$j" >>"$RES"
      fi
    done
    echo "  $w round $rep/$REPEATS done, load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
  done
  for pid in "${PID[@]}"; do kill "$pid"; wait "$pid" 2>/dev/null || true; done
done
echo "Targets: $(for j in $(seq 0 $(($# - 1))); do printf 't%s=%s  ' "$j" "${@:$((j + 1)):1}"; done)"
echo "Load average before: $load_before; after: $(cut -d' ' -f1-3 /proc/loadavg). N=$N requests per run, medians of $REPEATS."
python3 - "$RES" <<'EOF'
import sys, statistics, collections
rows = collections.defaultdict(lambda: collections.defaultdict(list))
for line in open(sys.argv[1]):
    f = line.split()
    if f[0] == "plain":
        w, j, rate, n, tck = f[1], f[2], float(f[3]), int(f[4]), float(f[5])
        a, b, t = list(map(int, f[6:10])), list(map(int, f[10:14])), list(map(float, f[14:18]))
        d = rows[(w, j)]
        d["req/s"].append(rate)
        d["client user µs"].append(t[0] * 1e6 / n); d["client sys µs"].append(t[1] * 1e6 / n)
        d["client sleeps"].append(t[2] / n)
        d["server user µs"].append((b[0] - a[0]) / tck * 1e6 / n); d["server sys µs"].append((b[1] - a[1]) / tck * 1e6 / n)
        d["server sleeps"].append((b[2] - a[2]) / n); d["server preempted"].append((b[3] - a[3]) / n)
        d["load"].append(float(f[18])); d["idle before"].append(float(f[19]))
    elif f[0] == "counts":
        s, c = line.strip().split(" | client ")
        s = s.split(); d = rows[(s[1], s[2])]
        for kv in s[4:]: k, v = kv.split("="); d["server " + k].append(float(v))
        for kv in c.split(): k, v = kv.split("="); d["client " + k].append(float(v))
    elif f[0] == "epoll":
        d = rows[(f[1], f[2])]
        for kv in f[3:]: k, v = kv.split("="); d["client epoll_wait returned " + k].append(float(v))
for (w, j), d in sorted(rows.items()):
    print(f"\n### {w} t{j}")
    for k, vals in d.items():
        fmt = (lambda x: f"{x:,.0f}") if k == "req/s" else (lambda x: f"{x:.4f}")
        print(f"  {k:44s} median {fmt(statistics.median(vals)):>10s}   runs " + " ".join(fmt(x) for x in vals))
EOF
echo; echo "Raw:"; sed 's/^/    /' "$RES"
