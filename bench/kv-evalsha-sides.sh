#!/usr/bin/env bash
# Both sides of bench/kv-features.sh's EVALSHA row (redis-benchmark -c 50, EVALSHA of INCR + SET + GET), per call:
# the server's user and system CPU (all threads, /proc/PID/stat), its voluntary and involuntary context switches (all
# threads, /proc/PID/task/*/status), and the same for the client, redis-benchmark (/usr/bin/time: user, system,
# voluntary and involuntary switches). On two cores the client and the server each take one: a server that uses less
# CPU per call but answers fewer calls per second is waiting for its client, so the client's cost per call (how the
# replies arrive: wake-ups, reads per epoll_wait) is part of the row. Runs alternate between the servers; medians.
#
#   bash bench/kv-evalsha-sides.sh [name=DLL[@VAR=value...] ...]   # redis-server is always measured, e.g.
#     base=/tmp/s23-base/kv/EioSharp.Kv.dll spin=apps/EioSharp.Kv/bin/Release/net10.0/EioSharp.Kv.dll@EIOSHARP_URING_IDLE_SPIN_US=20
#
# Environment: N (200000 calls per run), REPEATS (5), DURABILITY as kv-features.sh (aof: appendonly yes + everysec,
# no save points, on both), KV_ARGS, REDIS_ARGS; an environment such as EIOSHARP_BACKEND reaches the Kv servers.
set -euo pipefail

N="${N:-200000}"
REPEATS="${REPEATS:-5}"
DURABILITY="${DURABILITY:-aof}"
case "$DURABILITY" in
  aof) DURABLE_ARGS=(--appendonly yes --appendfsync everysec --save "") ;;
  none) DURABLE_ARGS=(--appendonly no --save "") ;;
  *) echo "DURABILITY is aof or none" >&2; exit 1 ;;
esac
# WORK, PIDS, CLK_TCK, the cleanup trap, free_port, wait_ping
source "$(dirname "${BASH_SOURCE[0]}")/lib/servers.sh" kv-evalsha-sides

cpu() { awk '{ print $14, $15 }' "/proc/$1/stat"; } # utime stime (ticks)
ctxsw() { cat /proc/"$1"/task/*/status 2>/dev/null | awk '/^voluntary_ctxt/ { v += $2 } /^nonvoluntary_ctxt/ { i += $2 } END { print v + 0, i + 0 }'; }

declare -A PORT_OF PID_OF
NAMES=(redis)
mkdir -p "$WORK/redis"; port=$(free_port)
# shellcheck disable=SC2086
redis-server --port "$port" --bind 127.0.0.1 --dir "$WORK/redis" --daemonize no --logfile "$WORK/redis/log" "${DURABLE_ARGS[@]}" ${REDIS_ARGS:-} &
PID_OF[redis]=$!; PIDS+=("$!"); PORT_OF[redis]=$port; wait_ping "$port"
for spec in "$@"; do
  name=${spec%%=*}; dll=${spec#*=}; envs=()
  if [[ "$dll" == *@* ]]; then IFS=@ read -r -a parts <<<"$dll"; dll=${parts[0]}; envs=("${parts[@]:1}"); fi
  mkdir -p "$WORK/$name"; port=$(free_port)
  # shellcheck disable=SC2086
  env "${envs[@]}" dotnet "$dll" --port "$port" --bind 127.0.0.1 --dir "$WORK/$name/data" "${DURABLE_ARGS[@]}" ${KV_ARGS:-} >"$WORK/$name/log" 2>&1 &
  PID_OF[$name]=$!; PIDS+=("$!"); PORT_OF[$name]=$port; wait_ping "$port"; NAMES+=("$name")
done

SCRIPT="local n = redis.call('INCR', KEYS[1]) redis.call('SET', KEYS[1] .. ':v', n) return redis.call('GET', KEYS[1] .. ':v')"
SHA=$(redis-cli -p "${PORT_OF[redis]}" SCRIPT LOAD "$SCRIPT")
for name in "${NAMES[@]}"; do redis-cli -p "${PORT_OF[$name]}" SCRIPT LOAD "$SCRIPT" >/dev/null; done

bench() { # port n -> ops/s; client's user sys vol invol in $WORK/time
  redis-benchmark -h 127.0.0.1 -p "$1" -c 50 -n "$2" -r 100000 --csv EVALSHA "$SHA" 1 'key:__rand_int__' 2>/dev/null |
    awk -F'","' 'NR == 2 { gsub(/"/, "", $2); print $2 }'
}

for name in "${NAMES[@]}"; do bench "${PORT_OF[$name]}" $((N / 4)) >/dev/null; done # warm-up (JIT, keyspace)
RESULTS="$WORK/results"; : >"$RESULTS"
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
for rep in $(seq 1 "$REPEATS"); do
  for name in "${NAMES[@]}"; do
    pid=${PID_OF[$name]}
    read -r u0 s0 < <(cpu "$pid"); read -r v0 i0 < <(ctxsw "$pid")
    rate=$(/usr/bin/time -f "%U %S %w %c" -o "$WORK/time" bash -c "$(declare -f bench); SHA=$SHA; bench ${PORT_OF[$name]} $N")
    read -r u1 s1 < <(cpu "$pid"); read -r v1 i1 < <(ctxsw "$pid")
    read -r cu cs cv ci <"$WORK/time"
    python3 - "$name" "$rate" "$N" "$CLK_TCK" "$u0" "$s0" "$u1" "$s1" "$v0" "$i0" "$v1" "$i1" "$cu" "$cs" "$cv" "$ci" >>"$RESULTS" <<'EOF'
import sys
name, rate = sys.argv[1], float(sys.argv[2]); n = int(sys.argv[3]); tck = float(sys.argv[4])
u0, s0, u1, s1, v0, i0, v1, i1 = map(float, sys.argv[5:13]); cu, cs, cv, ci = map(float, sys.argv[13:17])
us = lambda ticks: ticks / tck * 1e6 / n
print(name, rate, us(u1 - u0), us(s1 - s0), (v1 - v0) / n, (i1 - i0) / n, cu * 1e6 / n, cs * 1e6 / n, cv / n, ci / n)
EOF
  done
  echo "  run $rep/$REPEATS done" >&2
done
echo "Load average before: $load_before; after: $(cut -d' ' -f1-3 /proc/loadavg). N=$N calls per run, medians of $REPEATS."
python3 - "$RESULTS" <<'EOF'
import sys, statistics, collections
rows = collections.defaultdict(list); order = []
for line in open(sys.argv[1]):
    f = line.split(); name = f[0]
    if name not in order: order.append(name)
    rows[name].append([float(x) for x in f[1:]])
print("| server | calls/s | server user µs/call | server sys µs/call | server cpu µs/call | server vol/invol ctxsw per call | client user µs/call | client sys µs/call | client cpu µs/call | client vol/invol ctxsw per call |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for name in order:
    r = rows[name]; m = lambda i: statistics.median(x[i] for x in r)
    sc = statistics.median(x[1] + x[2] for x in r); cc = statistics.median(x[5] + x[6] for x in r)
    print(f"| {name} | {m(0):,.0f} | {m(1):.2f} | {m(2):.2f} | {sc:.2f} | {m(3):.3f} / {m(4):.3f} | {m(5):.2f} | {m(6):.2f} | {cc:.2f} | {m(7):.3f} / {m(8):.3f} |")
print()
print("Raw runs (name calls/s s_user s_sys s_vol s_invol c_user c_sys c_vol c_invol):")
for line in open(sys.argv[1]): print("    " + line.strip())
EOF
