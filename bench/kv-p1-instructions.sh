#!/usr/bin/env bash
# Instructions per unpipelined request (issue 14, session 17): one client's SET or GET loop (redis-benchmark -c CLIENTS
# -P 1 -r 100000 -d 16 -t TEST) against the server under callgrind (every thread of the server; the client runs outside
# valgrind), counted as bench/kv-pingpong-instructions.sh counts a round trip: warm-up, then WINDOWS windows of N
# requests between callgrind_control -z and -d (the lowest window is taken), then an idle stretch as long as a window
# (subtracted as "net"). REPEATS runs per target, alternating targets; medians are printed.
#
#   bench/kv-p1-instructions.sh TARGET ...   # TARGET: a directory or path of EioSharp.Kv.dll, or "redis"
#
# Environment: TEST (set; or get), CLIENTS (1), ROUNDS (requests per window, 2000), WINDOWS (3), WARMUP (20000),
# REPEATS (3), KV_ARGS (extra server arguments), TOP (0: with N, the N highest self costs of the last run per target),
# KV_ENV (extra environment for the Kv server, e.g. "DOTNET_TieredPGO=0"; the default already sets TieredPGO=0 as the
# ping-pong script does; PGO=1 leaves dynamic PGO on).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ROUNDS="${ROUNDS:-2000}"; WARMUP="${WARMUP:-20000}"; REPEATS="${REPEATS:-3}"; TOP="${TOP:-0}"; WINDOWS="${WINDOWS:-3}"
TEST="${TEST:-set}"; CLIENTS="${CLIENTS:-1}"
KV_ARGS="${KV_ARGS:-}"
if [ -n "${PGO:-}" ]; then PGO_ENV="DOTNET_TieredPGO=1"; else PGO_ENV="DOTNET_TieredPGO=0"; fi
load() { redis-benchmark -p "$1" -c "$CLIENTS" -n "$2" -P 1 -r 100000 -d 16 -t "$TEST" -q >/dev/null 2>&1; }
command -v valgrind >/dev/null || { echo "valgrind is not installed" >&2; exit 1; }
[ $# -gt 0 ] || { sed -n '2,14p' "$0"; exit 2; }
WORK="$(mktemp -d /tmp/kv-p1-instr.XXXXXX)"; SPID=""
cleanup() { [ -n "$SPID" ] && kill -KILL "$SPID" 2>/dev/null && wait "$SPID" 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT INT TERM
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
total_ir() { awk '/^(summary|totals):/ { print $2; exit }' "$1"; }

# Waits until callgrind has written dump number $2 of process $1 (callgrind_control -d returns before the file is whole).
wait_dump() {
  local f="$WORK/callgrind.out.$1.$2"
  for _ in $(seq 1 600); do
    if [ -f "$f" ] && grep -q '^totals:\|^summary:' "$f"; then echo "$f"; return 0; fi
    sleep 0.2
  done
  echo "no dump $f" >&2; return 1
}

measure() { # target run -> prints "target run ir_rounds ir_idle"
  local target=$1 run=$2 port dir dll
  port=$(free_port); dir="$WORK/data.$run"; rm -rf "$dir"; mkdir -p "$dir"
  if [ "$target" = redis ]; then
    (cd "$WORK" && exec valgrind --tool=callgrind --callgrind-out-file="$WORK/callgrind.out.%p" --dump-instr=yes \
      redis-server --port "$port" --bind 127.0.0.1 --dir "$dir" --appendonly yes --save '' >"$WORK/server.log" 2>&1) &
  else
    dll=$target; [ -d "$dll" ] && dll="$dll/EioSharp.Kv.dll"
    # shellcheck disable=SC2086
    (cd "$WORK" && exec env $PGO_ENV ${KV_ENV:-} DOTNET_TC_CallCountingDelayMs=0 DOTNET_gcConcurrent=0 DOTNET_EnableWriteXorExecute=0 \
      DOTNET_JitEnableOptionalRelocs=0 DOTNET_PerfMapEnabled=1 DOTNET_PerfMapIgnoreSignal=1 \
      valgrind --tool=callgrind --callgrind-out-file="$WORK/callgrind.out.%p" --dump-instr=yes \
      dotnet "$dll" --port "$port" --bind 127.0.0.1 --dir "$dir" $KV_ARGS >"$WORK/server.log" 2>&1) &
  fi
  SPID=$!
  for _ in $(seq 1 2400); do [ "$(redis-cli -p "$port" ping 2>/dev/null)" = PONG ] && break; sleep 0.5; done
  load "$port" "$WARMUP"; sleep 3 # tier-1 compiles queued by the warm-up
  local t0 t1 secs f w=0 windows=""
  # Consecutive windows of ROUNDS round trips: tier-1 compiles still running in the first ones show as a higher count;
  # the summary takes each run's lowest window (the settled code).
  for w in $(seq 1 "$WINDOWS"); do
    callgrind_control -z "$SPID" >/dev/null
    t0=$(date +%s.%N)
    load "$port" "$ROUNDS"
    t1=$(date +%s.%N)
    callgrind_control -d "$SPID" >/dev/null
    f=$(wait_dump "$SPID" "$w")
    windows="$windows $(total_ir "$f")"
  done
  secs=$(python3 -c "print($t1 - $t0)")
  callgrind_control -z "$SPID" >/dev/null
  sleep "$secs"
  callgrind_control -d "$SPID" >/dev/null
  local idle
  idle=$(total_ir "$(wait_dump "$SPID" $((WINDOWS + 1)))")
  echo "$target $run $idle $secs$windows"
  if [ "$TOP" -gt 0 ]; then
    # the lowest window's dump
    local best=1 bestv="" i=0
    for v in $windows; do i=$((i + 1)); if [ -z "$bestv" ] || [ "$v" -lt "$bestv" ]; then bestv=$v; best=$i; fi; done
    cp "$WORK/callgrind.out.$SPID.$best" "$WORK/last.$run.out"
    [ -f "/tmp/perf-$SPID.map" ] && cp "/tmp/perf-$SPID.map" "$WORK/last.$run.map"
  fi
  redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || kill "$SPID" 2>/dev/null || true
  wait "$SPID" 2>/dev/null || true
  SPID=""
}

: >"$WORK/runs.txt"
run=0
for rep in $(seq 1 "$REPEATS"); do
  for t in "$@"; do
    run=$((run + 1))
    measure "$t" "$run" | tee -a "$WORK/runs.txt" >&2
    if [ "$TOP" -gt 0 ] && [ "$rep" = "$REPEATS" ]; then
      echo "== top $TOP self cost, $t (last run; instructions per request)"
      python3 "$ROOT/bench/lib/callgrind-self.py" "$WORK/last.$run.out" "$WORK/last.$run.map" "$ROUNDS" "$TOP" || true
    fi
  done
done
python3 "$ROOT/bench/lib/callgrind-windows-summary.py" "$WORK/runs.txt" "$ROUNDS" "request"
