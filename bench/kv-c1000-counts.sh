#!/usr/bin/env bash
# Where a KV row's server CPU per request goes, by count (issue 14, session 33, h190: the 1000-client SET row against
# its GET and the 50-client rows). Every TARGET gets one fresh server (started together, kept for the whole run), warmed
# with WARM passes of every row; then REPEATS rounds run every row on every target in turn (alternated). Per run:
#   - ops/s (redis-benchmark -r 100000 -d 16 --csv), redis-benchmark's own CPU per request (/usr/bin/time: user+system,
#     10 ms resolution), the server's user and system CPU per request (utime/stime of the
#     process, /proc/PID/stat) and voluntary/involuntary context switches per request (all threads, /proc/PID/task/*/status);
#   - for EioSharp.Kv: managed bytes allocated per request and gen0/gen1/gen2 collections per 10,000 requests (MEMORY
#     MALLOC-STATS: GC.GetTotalAllocatedBytes, GC.CollectionCount), the store's dict size (DBSIZE) after the run;
#   - with PERF_STAT=1, one more run per row and target under `perf stat` of the syscall and scheduler tracepoints
#     (io_uring_enter, pwrite64, write, read, epoll_wait, sendto, recvfrom, madvise, mmap, munmap, futex, sched_switch of
#     the server's threads), per request (not timed: only the counts);
#   - with PERF_CLIENT=1, one more run per row and target with redis-benchmark itself under `perf stat` (its epoll_wait,
#     recvfrom, sendto, read, write calls, context switches and task-clock per request): whether a server's way of
#     sending its replies changes what the client pays per request (the client is the row's other half on 2 cores);
#   - with PER_CONNECTION=R, R more rounds (alternated) of `redis-benchmark -c 1000 -n 1000 -t set` (one request per
#     client): the server's user and system CPU per connection (accept, session, one SET, close), from /proc/PID/stat
#     ticks (10 ms over 1000 connections: 10 us resolution);
#   - with PERF_RECORD=1, one more run per row and target under `perf record -e cpu-clock -g` (Kv started with
#     DOTNET_PerfMapEnabled=1 DOTNET_EnableWriteXorExecute=0, so that the JIT map names its code); the reports (by symbol, no children) go to OUT (default /tmp/kv-c1000-counts-out).
# Rows: c1000-set, c1000-get (-c 1000, N_C1000 requests), c50-set, c50-get (-c 50, N_C50 requests).
#
#   ROWS="c1000-set c1000-get c50-set c50-get" REPEATS=5 bash bench/kv-c1000-counts.sh \
#       base=/tmp/s33-base/kv/EioSharp.Kv.dll new=apps/EioSharp.Kv/bin/Release/net10.0/EioSharp.Kv.dll redis
#
# TARGET: `label=SPEC` or `redis`; SPEC as bench/lib/servers.sh's start_server takes it (`V=x,W=y@PATH|--arg|value`).
# Kv and redis-server both get --maxclients 10000 (as bench/kv-vs-redis.sh). Environment: ROWS, REPEATS (3), WARM (1),
# N_C1000 (200000), N_C50 (200000), PERF_STAT (0), PERF_CLIENT (0), PER_CONNECTION (0), PERF_RECORD (0), OUT.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/bench/lib/servers.sh" kv-c1000-counts
ulimit -n 20000 2>/dev/null || true
ROWS=${ROWS:-c1000-set c1000-get c50-set c50-get}; REPEATS=${REPEATS:-3}; WARM=${WARM:-1}
N_C1000=${N_C1000:-200000}; N_C50=${N_C50:-200000}; OUT=${OUT:-/tmp/kv-c1000-counts-out}; mkdir -p "$OUT"

declare -A TPID=() TPORT=() TKV=()
LABELS=()
for t in "$@"; do
  if [ "$t" = redis ]; then label=redis; spec=redis; else label=${t%%=*}; spec=${t#*=}; fi
  extra=(DOTNET_PerfMapEnabled=1 DOTNET_EnableWriteXorExecute=0)
  start_server "$spec" "${extra[@]}" -- --maxclients 10000
  TPID[$label]=$SERVER_PID; TPORT[$label]=$SERVER_PORT; TKV[$label]=$([ "$spec" = redis ] && echo 0 || echo 1)
  LABELS+=("$label")
done

row_n() { case $1 in c1000-*) echo "$N_C1000" ;; c50-*) echo "$N_C50" ;; esac; }
row_c() { case $1 in c1000-*) echo 1000 ;; c50-*) echo 50 ;; esac; }
rb() { # port row n -> ops/s (the client's user+system seconds in $WORK/client-cpu)
  /usr/bin/time -f '%U %S' -o "$WORK/client-cpu" redis-benchmark -h 127.0.0.1 -p "$1" -n "$3" -r 100000 -c "$(row_c "$2")" \
    -d 16 -t "${2#*-}" --csv 2>/dev/null | awk -F'","' 'NR > 1 { gsub(/"/, "", $2); print $2; exit }'
}
ticks() { sed 's/.*) //' "/proc/$1/stat" | awk '{print $12, $13}'; } # utime stime
ctxsw() { cat /proc/"$1"/task/*/status 2>/dev/null | awk '/^voluntary_ctxt_switches/ {v += $2} /^nonvoluntary_ctxt_switches/ {i += $2} END {print v + 0, i + 0}'; }
gcstat() { # port -> allocated gen0 gen1 gen2
  redis-cli -p "$1" memory malloc-stats | awk '/^Allocated since start/ {a = $4} /^Generation [012]:/ {g[substr($2, 1, 1)] = $NF} END {print a + 0, g[0] + 0, g[1] + 0, g[2] + 0}'
}

for _ in $(seq 1 "$WARM"); do
  for row in $ROWS; do for l in "${LABELS[@]}"; do rb "${TPORT[$l]}" "$row" "$(row_n "$row")" >/dev/null; done; done
done

RES="$OUT/results"; : >"$RES"
for rep in $(seq 1 "$REPEATS"); do
  for row in $ROWS; do
    n=$(row_n "$row")
    for l in "${LABELS[@]}"; do
      pid=${TPID[$l]}; port=${TPORT[$l]}
      [ "${TKV[$l]}" = 1 ] && g0=$(gcstat "$port") || g0="0 0 0 0"
      read -r u0 s0 < <(ticks "$pid"); read -r v0 i0 < <(ctxsw "$pid")
      ops=$(rb "$port" "$row" "$n")
      client=$(awk -v n="$n" '{printf "%.2f", ($1 + $2) * 1e6 / n}' "$WORK/client-cpu")
      read -r u1 s1 < <(ticks "$pid"); read -r v1 i1 < <(ctxsw "$pid")
      [ "${TKV[$l]}" = 1 ] && g1=$(gcstat "$port") || g1="0 0 0 0"
      keys=$(redis-cli -p "$port" dbsize)
      line=$(python3 - "$n" "$CLK_TCK" "$u0" "$s0" "$u1" "$s1" "$v0" "$i0" "$v1" "$i1" $g0 $g1 <<'PY'
import sys
a = sys.argv[1:]
n, tck = int(a[0]), int(a[1])
u0, s0, u1, s1, v0, i0, v1, i1 = map(int, a[2:10])
g0, g1 = list(map(int, a[10:14])), list(map(int, a[14:18]))
us = lambda t: t * 1e6 / tck / n
print('cpu %.2f user %.2f sys %.2f | vcs %.3f ics %.3f | alloc %.1f B gc0 %.2f gc1 %.2f gc2 %.2f /10k' % (
    us(u1 - u0 + s1 - s0), us(u1 - u0), us(s1 - s0), (v1 - v0) / n, (i1 - i0) / n,
    (g1[0] - g0[0]) / n, (g1[1] - g0[1]) * 1e4 / n, (g1[2] - g0[2]) * 1e4 / n, (g1[3] - g0[3]) * 1e4 / n))
PY
)
      echo "$row $l $rep ops $ops $line | client $client keys $keys load $(cut -d' ' -f1 /proc/loadavg)" | tee -a "$RES"
    done
  done
done

if [ "${PERF_STAT:-0}" = 1 ]; then
  ev='syscalls:sys_enter_io_uring_enter,syscalls:sys_enter_pwrite64,syscalls:sys_enter_write,syscalls:sys_enter_read,syscalls:sys_enter_epoll_wait,syscalls:sys_enter_sendto,syscalls:sys_enter_recvfrom,syscalls:sys_enter_madvise,syscalls:sys_enter_mmap,syscalls:sys_enter_munmap,syscalls:sys_enter_futex,sched:sched_switch'
  for row in $ROWS; do
    n=$(row_n "$row")
    for l in "${LABELS[@]}"; do
      perf stat -x, -o "$OUT/stat.$row.$l" -e "$ev" -p "${TPID[$l]}" & ps=$!; sleep 0.5
      rb "${TPORT[$l]}" "$row" "$n" >/dev/null
      kill -INT $ps; wait $ps 2>/dev/null || true
      echo "stat $row $l: $(awk -F, -v n="$n" '$1 ~ /^[0-9]+$/ { split($3, a, ":"); name = a[2]; sub(/sys_enter_/, "", name); if ($1 / n >= 0.0005) printf "%s %.4f  ", name, $1 / n }' "$OUT/stat.$row.$l")" | tee -a "$RES"
    done
  done
fi

if [ "${PERF_CLIENT:-0}" = 1 ]; then
  ev='syscalls:sys_enter_epoll_wait,syscalls:sys_enter_recvfrom,syscalls:sys_enter_sendto,syscalls:sys_enter_read,syscalls:sys_enter_write,context-switches,task-clock'
  for row in $ROWS; do
    n=$(row_n "$row")
    for l in "${LABELS[@]}"; do
      perf stat -x, -o "$OUT/client.$row.$l" -e "$ev" redis-benchmark -h 127.0.0.1 -p "${TPORT[$l]}" -n "$n" -r 100000 \
        -c "$(row_c "$row")" -d 16 -t "${row#*-}" --csv >/dev/null 2>&1
      echo "client $row $l: $(awk -F, -v n="$n" '$1 ~ /^[0-9.]+$/ { name = $3; sub(/syscalls:sys_enter_/, "", name); if (name == "task-clock") printf "cpu %.2f us  ", $1 * 1000 / n; else printf "%s %.3f  ", name, $1 / n }' "$OUT/client.$row.$l")load $(cut -d' ' -f1 /proc/loadavg)" | tee -a "$RES"
    done
  done
fi

for rep in $(seq 1 "${PER_CONNECTION:-0}"); do
  for l in "${LABELS[@]}"; do
    pid=${TPID[$l]}
    read -r u0 s0 < <(ticks "$pid")
    redis-benchmark -h 127.0.0.1 -p "${TPORT[$l]}" -c 1000 -n 1000 -r 100000 -d 16 -t set -q >/dev/null 2>&1
    read -r u1 s1 < <(ticks "$pid")
    echo "connection $l $rep: user $(( (u1 - u0) * 1000000 / CLK_TCK / 1000 )) sys $(( (s1 - s0) * 1000000 / CLK_TCK / 1000 )) us per connection, load $(cut -d' ' -f1 /proc/loadavg)" | tee -a "$RES"
  done
done

if [ "${PERF_RECORD:-0}" = 1 ]; then
  for row in $ROWS; do
    n=$(row_n "$row")
    for l in "${LABELS[@]}"; do
      perf record -e cpu-clock -g -p "${TPID[$l]}" -o "$OUT/perf.$row.$l.data" 2>/dev/null >/dev/null & pr=$!; sleep 0.5
      rb "${TPORT[$l]}" "$row" "$n" >/dev/null
      kill -INT $pr; wait $pr 2>/dev/null || true
      perf report -i "$OUT/perf.$row.$l.data" --no-children -g none --sort dso,sym --stdio 2>/dev/null | grep -v '^$' | grep -E '^ +[0-9]' | head -60 >"$OUT/report.$row.$l.txt" || true
      echo "perf $row $l: $OUT/report.$row.$l.txt"
    done
  done
fi
