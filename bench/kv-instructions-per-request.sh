#!/usr/bin/env bash
# Instructions per request of an EioSharp.Kv server (every thread), counted by valgrind: a load-independent figure for
# before/after comparisons on this shared VM (no hardware counters). For each server DLL and each redis-benchmark test,
# the server runs under `valgrind --tool=cachegrind --cache-sim=no --branch-sim=no` twice: WARMUP requests then N, and
# WARMUP then 2N; (total(2N) - total(N)) / N is the instructions of one request with start-up, JIT, warm-up and shutdown
# removed. Same runtime settings as bench/trace-overhead-instructions.sh (FullOpts without tiering, no concurrent GC, no
# W^X, DOTNET_JitEnableOptionalRelocs=0 so that every method really is FullOpts under valgrind). The server runs with
# --backend epoll (valgrind does not know io_uring) and --appendonly no (the AOF writer thread's work is not per
# request in a fixed way); redis-benchmark -c 10 without -r (each test works on its one key).
#
#   N=4000 WARMUP=2000 TESTS="lpush sadd" bash bench/kv-instructions-per-request.sh BASE.dll NEW.dll
set -euo pipefail
N="${N:-4000}"; WARMUP="${WARMUP:-2000}"; TESTS="${TESTS:-lpush sadd}"
WORK="$(mktemp -d /tmp/kv-instr.XXXXXX)"; VPID=""
cleanup() { [ -n "$VPID" ] && kill "$VPID" 2>/dev/null && wait "$VPID" 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT INT TERM
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
export DOTNET_TieredCompilation=0 DOTNET_gcConcurrent=0 DOTNET_EnableWriteXorExecute=0 DOTNET_JitEnableOptionalRelocs=0

total() { # dll test requests -> instructions of the whole server run
  local port out
  port=$(free_port); out="$WORK/cg.$$.$RANDOM"; rm -rf "$WORK/data"; mkdir -p "$WORK/data"
  valgrind --tool=cachegrind --cache-sim=no --branch-sim=no --cachegrind-out-file="$out" \
    dotnet "$1" --port "$port" --bind 127.0.0.1 --dir "$WORK/data" --appendonly no --backend epoll >"$WORK/log" 2>&1 &
  VPID=$!
  for _ in $(seq 1 1200); do [ "$(redis-cli -p "$port" ping 2>/dev/null)" = PONG ] && break; sleep 0.5; done
  redis-benchmark -h 127.0.0.1 -p "$port" -c 10 -n "$WARMUP" -q -t "$2" >/dev/null 2>&1
  redis-benchmark -h 127.0.0.1 -p "$port" -c 10 -n "$3" -q -t "$2" >/dev/null 2>&1
  kill "$VPID"; wait "$VPID" 2>/dev/null || true; VPID=""
  awk '/^summary:/ { print $2 }' "$out"
}

echo "| build | test | instructions/request | total(N) | total(2N) |"
echo "|---|---|---:|---:|---:|"
for dll in "$@"; do
  for t in $TESTS; do
    a=$(total "$dll" "$t" "$N"); b=$(total "$dll" "$t" $((2 * N)))
    echo "| $dll | $t | $(( (b - a) / N )) | $a | $b |"
  done
done
