#!/usr/bin/env bash
# The guards of a server idle policy (written for session 34's io_uring arrival spin, h194, issue 12, commit b3eb4b8,
# reverted: docs/rationale.md §188): for each target, one server (AOF everysec, no save points), per round, alternating:
#   - c1 SET and c50 SET (redis-benchmark -t set -d 16, 1 and 50 clients): requests/s, the server's CPU µs (all threads,
#     /proc/PID/stat) and voluntary context switches (its sleeps, /proc/PID/task/*/status) per request;
#   - then the idle server: after the runs, 2 s to settle, the server's CPU over IDLE seconds (percent of one core) and
#     its sleeps per second (an idle server must stay at ~0%: the spin must not run without requests).
#
#   bash bench/kv-arrival-guards.sh TARGET ...   # TARGET: `redis`, a path of EioSharp.Kv.dll, or "V=x,W=y@path"
#
# Environment: REPEATS (3), N1 (20000 c1 requests), N50 (100000 c50 requests), IDLE (30 seconds).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
REPEATS="${REPEATS:-3}"; N1="${N1:-20000}"; N50="${N50:-100000}"; IDLE="${IDLE:-30}"
[ $# -gt 0 ] || { sed -n '2,12p' "$0"; exit 2; }
source "$ROOT/bench/lib/servers.sh" kv-arrival-guards
snap() { # pid -> "ticks vol": the process's CPU (/proc/PID/stat counts threads that have exited too), its threads' sleeps
  local t v
  t=$(sed 's/.*) //' /proc/"$1"/stat | awk '{print $12 + $13}')
  v=$(cat /proc/"$1"/task/*/status 2>/dev/null | awk '/^voluntary_ctxt/ {v += $2} END {print v + 0}')
  echo "$t $v"
}
declare -a PORT=() PID=()
i=0
for target in "$@"; do
  start_server "$target" -- --appendonly yes --appendfsync everysec --save ""
  PORT[$i]=$SERVER_PORT; PID[$i]=$SERVER_PID; i=$((i + 1))
done
printf '| round | target | c1 SET req/s | c1 CPU µs/req | c1 sleeps/req | c50 SET req/s | c50 CPU µs/req | c50 sleeps/req | idle CPU %% | idle sleeps/s | load |\n|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|\n'
for rep in $(seq 1 "$REPEATS"); do
  for j in "${!PORT[@]}"; do
    pid=${PID[$j]}; port=${PORT[$j]}; row="| $rep | t$j"
    for c in 1 50; do
      n=$N1; [ "$c" = 50 ] && n=$N50
      read -r t0 v0 < <(snap "$pid")
      rate=$(redis-benchmark -h 127.0.0.1 -p "$port" -c "$c" -n "$n" -r 100000 -d 16 -t set --csv 2>/dev/null |
        awk -F'","' 'NR == 2 { gsub(/"/, "", $2); print $2 }')
      read -r t1 v1 < <(snap "$pid")
      row="$row | $rate | $(python3 -c "print(f'{($t1 - $t0) / $CLK_TCK * 1e6 / $n:.2f} | {($v1 - $v0) / $n:.3f}')")"
    done
    sleep 2
    read -r t0 v0 < <(snap "$pid"); sleep "$IDLE"; read -r t1 v1 < <(snap "$pid")
    row="$row | $(python3 -c "print(f'{($t1 - $t0) / $CLK_TCK / $IDLE * 100:.2f} | {($v1 - $v0) / $IDLE:.1f}')") | $(cut -d' ' -f1 /proc/loadavg) |"
    echo "$row"
  done
done
echo; echo "Targets: $(for j in $(seq 0 $(($# - 1))); do printf 't%s=%s  ' "$j" "${@:$((j + 1)):1}"; done)"
