#!/usr/bin/env bash
# Syscalls per operation of a server process on the issue-12 rows (bench/kv-features.sh's workloads: stream, evalsha,
# pingpong, pubsub-P1, pubsub-P16; an op is what that script counts, e.g. one delivery for pubsub), counted by
# `strace -c -f` attached to the running server (every thread) for the measured run only, after a warm-up; and the
# server's context switches per op (voluntary + involuntary, all threads, /proc/PID/task/*/status) over a run of the
# same size just before, untraced.
# Syscall counts do not move with the machine's load as CPU time does (a loaded machine can batch more per wake-up,
# so compare servers in the same run). Both servers run with the same durability (DURABILITY=aof: appendonly yes +
# appendfsync everysec, no save points; none: no AOF, no save points), as bench/kv-features.sh.
#
#   bench/kv-feature-syscalls.sh [redis] [KV_DLL ...]       # e.g. redis /tmp/s15-base/kv/EioSharp.Kv.dll apps/.../EioSharp.Kv.dll
#
# Environment: WORKLOADS ("stream evalsha"), N_STREAM (20000 messages), N_EVALSHA (100000 calls), N_PINGPONG (20000
# round trips), N_PUBSUB (10000 PUBLISH, each to 100 subscribers: ops = 100 x), DURABILITY (aof),
# KV_ARGS, REDIS_ARGS, LOADGEN (EioSharp.Kv.LoadGen.dll; default this tree's Release build), TOP (8: syscalls listed).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WORKLOADS="${WORKLOADS:-stream evalsha}"; N_STREAM="${N_STREAM:-20000}"; N_EVALSHA="${N_EVALSHA:-100000}"; TOP="${TOP:-8}"
N_PINGPONG="${N_PINGPONG:-20000}"; N_PUBSUB="${N_PUBSUB:-10000}"
LOADGEN="${LOADGEN:-$ROOT/bench/EioSharp.Kv.LoadGen/bin/Release/net10.0/EioSharp.Kv.LoadGen.dll}"
case "${DURABILITY:-aof}" in
  aof) DURABLE_ARGS=(--appendonly yes --appendfsync everysec --save "") ;;
  none) DURABLE_ARGS=(--appendonly no --save "") ;;
  *) echo "DURABILITY is aof or none" >&2; exit 1 ;;
esac
command -v strace >/dev/null || { echo "strace is not installed" >&2; exit 1; }
[ -f "$LOADGEN" ] || nice dotnet build "$ROOT/bench/EioSharp.Kv.LoadGen" -c Release -v q -nologo >/dev/null
WORK="$(mktemp -d /tmp/kv-feature-syscalls.XXXXXX)"
SPID=""
cleanup() { [ -n "$SPID" ] && kill "$SPID" 2>/dev/null && wait "$SPID" 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT INT TERM
SCRIPT="local n = redis.call('INCR', KEYS[1]) redis.call('SET', KEYS[1] .. ':v', n) return redis.call('GET', KEYS[1] .. ':v')"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }

csw() { # pid -> voluntary involuntary context switches of all its threads
  cat /proc/"$1"/task/*/status 2>/dev/null | awk '/^voluntary_ctxt_switches/ {v += $2} /^nonvoluntary_ctxt_switches/ {n += $2} END {print v + 0, n + 0}'
}

workload() { # name port ops
  case "$1" in
    stream) dotnet "$LOADGEN" stream --port "$2" --producers 2 --consumers 2 --count 10 --messages "$3" >/dev/null ;;
    pingpong) dotnet "$LOADGEN" pingpong --port "$2" --rounds "$3" >/dev/null ;;
    pubsub-P1) dotnet "$LOADGEN" pubsub --port "$2" --subscribers 100 --pipeline 1 --messages $(($3 / 100)) >/dev/null ;;
    pubsub-P16) dotnet "$LOADGEN" pubsub --port "$2" --subscribers 100 --pipeline 16 --messages $(($3 / 100)) >/dev/null ;;
    evalsha)
      local sha; sha=$(redis-cli -p "$2" SCRIPT LOAD "$SCRIPT")
      redis-benchmark -h 127.0.0.1 -p "$2" -c 50 -n "$3" -r 100000 -q EVALSHA "$sha" 1 'key:__rand_int__' >/dev/null 2>&1 ;;
  esac
}

echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg); DURABILITY=${DURABILITY:-aof}"
for w in $WORKLOADS; do
  case "$w" in
    stream) n=$N_STREAM ;; evalsha) n=$N_EVALSHA ;; pingpong) n=$N_PINGPONG ;;
    pubsub-*) n=$((N_PUBSUB * 100)) ;; # ops = deliveries
    *) echo "unknown workload $w" >&2; exit 1 ;;
  esac
  for s in "$@"; do
    port=$(free_port); dir="$WORK/d.$port"; mkdir -p "$dir"
    if [ "$s" = redis ]; then
      # shellcheck disable=SC2086
      redis-server --port "$port" --bind 127.0.0.1 --dir "$dir" --daemonize no --logfile "$dir/log" "${DURABLE_ARGS[@]}" ${REDIS_ARGS:-} &
    else
      # shellcheck disable=SC2086
      dotnet "$s" --port "$port" --bind 127.0.0.1 --dir "$dir/data" "${DURABLE_ARGS[@]}" ${KV_ARGS:-} >"$dir/out" 2>&1 &
    fi
    SPID=$!
    for _ in $(seq 1 400); do [ "$(redis-cli -p "$port" ping 2>/dev/null)" = PONG ] && break; sleep 0.05; done
    workload "$w" "$port" $((n / 5)) # warm-up (JIT, connections, tables)
    read -r v0 i0 < <(csw "$SPID") # context switches: a run of its own (a traced thread switches at every syscall)
    workload "$w" "$port" "$n"
    read -r v1 i1 < <(csw "$SPID")
    redis-cli -p "$port" CONFIG RESETSTAT >/dev/null
    strace -c -f -q -o "$dir/strace" -p "$SPID" &
    TPID=$!
    sleep 1 # strace attached to every thread
    workload "$w" "$port" "$n"
    kill -INT "$TPID"; wait "$TPID" 2>/dev/null || true
    stats=$(redis-cli -p "$port" INFO commandstats | tr -d '\r' | grep -E '^cmdstat_(xadd|xreadgroup|xack|evalsha|publish|blpop|lpush):' | sed 's/:calls=/=/; s/,usec=.*//; s/^cmdstat_//' | tr '\n' ' ')
    kill "$SPID"; wait "$SPID" 2>/dev/null || true; SPID=""
    python3 - "$dir/strace" "$n" "$w" "$s" "$stats" "$TOP" "$((v1 - v0))" "$((i1 - i0))" <<'PY'
import sys
path, n, w, s, stats, top = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5], int(sys.argv[6])
vcs, ivcs = int(sys.argv[7]), int(sys.argv[8])
rows = []
for line in open(path):
    f = line.split()
    if len(f) >= 5 and f[0][0].isdigit() and f[-1] != "total":
        calls = int(f[3]); name = f[-1]
        rows.append((calls, name))
total = sum(c for c, _ in rows)
rows.sort(reverse=True)
print(f"{w} {s}: {total / n:.3f} syscalls/op, context switches/op {vcs / n:.3f} voluntary + {ivcs / n:.3f} involuntary  [{stats.strip()}]")
print("    " + ", ".join(f"{name} {c / n:.3f}" for c, name in rows[:top]))
PY
  done
done
