#!/usr/bin/env bash
# Where the client and the server ran during one redis-benchmark row (issue 14, session 41, h223, §220): every target
# started once and warmed, then REPEATS rounds, targets alternating; per run, the run under `perf record -a` of
# sched_switch / sched_wakeup / sched_migrate_task and bench/lib/sched-row-overlap.py on it: ops/s, the server's and the
# client's CPU per request, how much of the run both ran at once (on the two CPUs), how long each waited for a CPU and
# behind whom (the other side, another process), and the wake-ups that landed on the other side's CPU. On two cores a
# pipelined row's ops/s follows how much of the run the client and the server overlap.
#
#   bash bench/kv-row-placement.sh TARGET ...   # TARGET: `redis`, a path of EioSharp.Kv.dll, "V=x,W=y@path", `path|--arg|v`
#
# Environment: ARGS ("-c 50 -P 16 -t get -d 16": the row's redis-benchmark arguments), N (1000000), REPEATS (5),
# WARM (400000 requests of -P 16 SET then of the row, twice), RECORD (1; 0: plain runs only, no trace), SERVER_CPUS /
# CLIENT_CPUS (empty; a CPU list: every thread of each server pinned there with `taskset -a -p`, the client run under
# `taskset -c`: e.g. 1 and 0 put the two apart, 0 and 0 on one CPU, the two regimes a run otherwise falls into by
# placement). The medians by target follow the runs (bench/lib/row-placement-summary.py).
# Needs root (system-wide tracepoints).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
[ $# -gt 0 ] || { sed -n '2,13p' "$0"; exit 2; }
N="${N:-1000000}"; REPEATS="${REPEATS:-5}"; WARM="${WARM:-400000}"; RECORD="${RECORD:-1}"
read -r -a ARGV <<<"${ARGS:--c 50 -P 16 -t get -d 16}"
source "$ROOT/bench/lib/servers.sh" kv-row-placement
declare -a PORT=() PID=()
for target in "$@"; do
  start_server "$target"; PORT+=("$SERVER_PORT"); PID+=("$SERVER_PID")
  [ -n "${SERVER_CPUS:-}" ] && taskset -a -c -p "$SERVER_CPUS" "$SERVER_PID" >/dev/null
done
CLIENT_PIN=""; [ -n "${CLIENT_CPUS:-}" ] && CLIENT_PIN="taskset -c $CLIENT_CPUS"
for _ in 1 2; do
  for j in "${!PORT[@]}"; do
    redis-benchmark -h 127.0.0.1 -p "${PORT[$j]}" -c 50 -P 16 -n "$WARM" -r 100000 -t set -d 16 -q >/dev/null 2>&1
    redis-benchmark -h 127.0.0.1 -p "${PORT[$j]}" -n "$WARM" -r 100000 "${ARGV[@]}" -q >/dev/null 2>&1
  done
done
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
for rep in $(seq 1 "$REPEATS"); do
  for j in "${!PORT[@]}"; do
    port=${PORT[$j]}; pid=${PID[$j]}
    c0=$(ticks "$pid")
    if [ "$RECORD" = 1 ]; then
      # the client's pid: a shell that execs it, so that its pid is known before it starts
      perf record -q -m 1024 -a -e sched:sched_switch,sched:sched_wakeup,sched:sched_migrate_task -o "$WORK/rec" -- \
        /usr/bin/time -f "%U %S" -o "$WORK/time" sh -c "echo \$\$ >$WORK/cpid; exec $CLIENT_PIN redis-benchmark -h 127.0.0.1 -p $port -n $N -r 100000 --csv ${ARGV[*]}" \
        >"$WORK/csv" 2>/dev/null || true
    else
      /usr/bin/time -f "%U %S" -o "$WORK/time" sh -c "echo \$\$ >$WORK/cpid; exec $CLIENT_PIN redis-benchmark -h 127.0.0.1 -p $port -n $N -r 100000 --csv ${ARGV[*]}" \
        >"$WORK/csv" 2>/dev/null || true
    fi
    c1=$(ticks "$pid")
    rate=$(awk -F'","' 'NR == 2 { gsub(/"/, "", $2); print $2 }' "$WORK/csv")
    read -r cu cs < <(tail -1 "$WORK/time")
    ov=""
    if [ "$RECORD" = 1 ]; then
      perf script -i "$WORK/rec" -F comm,pid,tid,cpu,time,event,trace >"$WORK/script" 2>/dev/null || true
      ov=$(python3 "$ROOT/bench/lib/sched-row-overlap.py" "$WORK/script" "$pid" "$(cat "$WORK/cpid")")
    fi
    python3 -c "print('t$j rep $rep: ops/s ${rate:-0} server %.3f us/req client %.3f us/req load $(cut -d' ' -f1 /proc/loadavg) | $ov' % (($c1 - $c0) * 1e6 / $CLK_TCK / $N, ($cu + $cs) * 1e6 / $N))" | tee -a "$WORK/runs"
  done
done
echo "targets: $(for j in $(seq 0 $(($# - 1))); do printf 't%s=%s  ' "$j" "${@:$((j + 1)):1}"; done)" | tee "$WORK/targets"
python3 "$ROOT/bench/lib/row-placement-summary.py" <(cat "$WORK/runs" "$WORK/targets")
