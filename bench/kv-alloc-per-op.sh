#!/usr/bin/env bash
# Managed bytes allocated per operation by EioSharp.Kv on the issue-12 workloads of bench/kv-features.sh: a measure that
# does not depend on the machine's load (unlike ops/s and, to a lesser degree, CPU per op). Reads
# "Allocated since start" (GC.GetTotalAllocatedBytes) from MEMORY MALLOC-STATS before and after each run; the
# commands the measurement itself sends are a constant few KB, negligible at these operation counts.
#
#   bench/kv-alloc-per-op.sh [KV_DLL ...]    # default: apps/EioSharp.Kv/bin/Release/net10.0/EioSharp.Kv.dll
#
# Environment: ROUNDS (pingpong round trips, 5000), MESSAGES (stream messages, 10000), CALLS (EVALSHA calls, 20000),
# REPEATS (3; the median is printed), WORKLOADS ("pingpong stream evalsha"; also rb-TEST: `redis-benchmark -c 10 -t TEST`
# with REQUESTS requests, 20000, e.g. WORKLOADS="rb-lpush rb-sadd rb-hset"; no -r, so each test works on its one key;
# get1k: GET of a live 1 KiB string; mget10: MGET of ten live 16-byte strings; both REQUESTS requests, 10 clients).
# Note: about 34 kB are allocated per connection (buffers), ~20 B per request of a 20,000-request, 10-client run.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ROUNDS="${ROUNDS:-5000}"; MESSAGES="${MESSAGES:-10000}"; CALLS="${CALLS:-20000}"; REQUESTS="${REQUESTS:-20000}"; REPEATS="${REPEATS:-3}"
WORKLOADS="${WORKLOADS:-pingpong stream evalsha}"
LOADGEN_DLL="${LOADGEN_DLL:-$ROOT/bench/EioSharp.Kv.LoadGen/bin/Release/net10.0/EioSharp.Kv.LoadGen.dll}"
DLLS=("$@"); [ ${#DLLS[@]} -gt 0 ] || DLLS=("$ROOT/apps/EioSharp.Kv/bin/Release/net10.0/EioSharp.Kv.dll")
SCRIPT="local n = redis.call('INCR', KEYS[1]) redis.call('SET', KEYS[1] .. ':v', n) return redis.call('GET', KEYS[1] .. ':v')"
WORK="$(mktemp -d /tmp/kv-alloc.XXXXXX)"; KPID=""
cleanup() { [ -n "$KPID" ] && kill "$KPID" 2>/dev/null && wait "$KPID" 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
allocated() { redis-cli -p "$1" MEMORY MALLOC-STATS | awk -F': ' '/^Allocated since start/ { print $2 }'; }

run() { # workload port n
  case "$1" in
    pingpong) dotnet "$LOADGEN_DLL" pingpong --port "$2" --rounds "$3" >/dev/null ;;
    stream) dotnet "$LOADGEN_DLL" stream --port "$2" --producers 2 --consumers 2 --count 10 --messages "$3" >/dev/null ;;
    evalsha) redis-benchmark -h 127.0.0.1 -p "$2" -c 50 -n "$3" -r 100000 -q EVALSHA "$SHA" 1 'key:__rand_int__' >/dev/null 2>&1 ;;
    get1k) redis-benchmark -h 127.0.0.1 -p "$2" -c 10 -n "$3" -q -d 1024 -t get >/dev/null 2>&1 ;; # a live 1 KiB string (not packed)
    mget10) redis-benchmark -h 127.0.0.1 -p "$2" -c 10 -n "$3" -q MGET k:0 k:1 k:2 k:3 k:4 k:5 k:6 k:7 k:8 k:9 >/dev/null 2>&1 ;; # ten live keys
    rb-*) redis-benchmark -h 127.0.0.1 -p "$2" -c 10 -n "$3" -q -t "${1#rb-}" >/dev/null 2>&1 ;; # e.g. rb-lpush: redis-benchmark -t lpush
  esac
}

echo "| build | workload | bytes allocated per op (median of $REPEATS) | runs |"
echo "|---|---|---:|---|"
for dll in "${DLLS[@]}"; do
  rm -rf "$WORK/data"; mkdir -p "$WORK/data"
  port=$(free_port)
  dotnet "$dll" --port "$port" --bind 127.0.0.1 --dir "$WORK/data" >"$WORK/log" 2>&1 &
  KPID=$!
  for _ in $(seq 1 400); do [ "$(redis-cli -p "$port" ping 2>/dev/null)" = PONG ] && break; sleep 0.05; done
  SHA=$(redis-cli -p "$port" SCRIPT LOAD "$SCRIPT")
  for w in $WORKLOADS; do
    case "$w" in pingpong) n=$ROUNDS ;; stream) n=$MESSAGES ;; evalsha) n=$CALLS ;; rb-*|get1k|mget10) n=$REQUESTS ;; esac
    case "$w" in # the keys these read
      get1k) redis-cli -p "$port" SET key:__rand_int__ "$(head -c 1024 /dev/zero | tr '\0' x)" >/dev/null ;;
      mget10) for i in 0 1 2 3 4 5 6 7 8 9; do redis-cli -p "$port" SET "k:$i" vvvvvvvvvvvvvvvv >/dev/null; done ;;
    esac
    run "$w" "$port" $((n / 5)) # warm-up (JIT, buffers)
    per=()
    for _ in $(seq 1 "$REPEATS"); do
      a=$(allocated "$port"); run "$w" "$port" "$n"; b=$(allocated "$port")
      per+=("$(( (b - a) / n ))")
    done
    median=$(printf '%s\n' "${per[@]}" | sort -n | sed -n "$(( (REPEATS + 1) / 2 ))p")
    echo "| $dll | $w | $median | ${per[*]} |"
  done
  kill "$KPID"; wait "$KPID" 2>/dev/null || true; KPID=""
done
