#!/usr/bin/env bash
# System calls per BLPOP/LPUSH ping-pong round trip (issue 12) in the server process, counted by `strace -c -f` attached
# to every thread of the running server (strace slows everything: only the counts matter, and they do not depend on
# the machine's load). One round trip = four requests (A: LPUSH ping, BLPOP pong; B: BLPOP ping, LPUSH pong).
#
#   bench/kv-pingpong-syscalls.sh TARGET ...   # TARGET: a directory or path of EioSharp.Kv.dll, or "redis"
#
# Each target: the server starts (AOF on, as bench/kv-pingpong-instructions.sh: Kv's default, redis --appendonly yes),
# WARMUP round trips run, strace attaches, ROUNDS round trips run (bench/EioSharp.Kv.LoadGen pingpong), strace detaches;
# the calls per round trip of the busiest system calls are printed. Environment: ROUNDS (2000), WARMUP (2000),
# REPEATS (1), LOADGEN_DLL, KV_ARGS (extra server arguments, e.g. "--backend epoll").
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ROUNDS="${ROUNDS:-2000}"; WARMUP="${WARMUP:-2000}"; REPEATS="${REPEATS:-1}"; KV_ARGS="${KV_ARGS:-}"
LOADGEN_DLL="${LOADGEN_DLL:-$ROOT/bench/EioSharp.Kv.LoadGen/bin/Release/net10.0/EioSharp.Kv.LoadGen.dll}"
command -v strace >/dev/null || { echo "strace is not installed" >&2; exit 1; }
[ $# -gt 0 ] || { sed -n '2,11p' "$0"; exit 2; }
WORK="$(mktemp -d /tmp/kv-pp-sys.XXXXXX)"; SPID=""
cleanup() { [ -n "$SPID" ] && kill "$SPID" 2>/dev/null && wait "$SPID" 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT INT TERM
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }

for rep in $(seq 1 "$REPEATS"); do
  for target in "$@"; do
    port=$(free_port); dir="$WORK/data"; rm -rf "$dir"; mkdir -p "$dir"
    if [ "$target" = redis ]; then
      redis-server --port "$port" --bind 127.0.0.1 --dir "$dir" --appendonly yes --save '' >"$WORK/server.log" 2>&1 &
    else
      dll=$target; [ -d "$dll" ] && dll="$dll/EioSharp.Kv.dll"
      # shellcheck disable=SC2086
      dotnet "$dll" --port "$port" --bind 127.0.0.1 --dir "$dir" $KV_ARGS >"$WORK/server.log" 2>&1 &
    fi
    SPID=$!
    for _ in $(seq 1 600); do [ "$(redis-cli -p "$port" ping 2>/dev/null)" = PONG ] && break; sleep 0.1; done
    dotnet "$LOADGEN_DLL" pingpong --port "$port" --rounds "$WARMUP" --timeout 600 >/dev/null
    strace -c -f -o "$WORK/strace" -p "$(ls /proc/"$SPID"/task | tr '\n' ',' | sed 's/,$//')" 2>/dev/null &
    stpid=$!
    sleep 1
    dotnet "$LOADGEN_DLL" pingpong --port "$port" --rounds "$ROUNDS" --timeout 600 >/dev/null
    kill -INT "$stpid"; wait "$stpid" 2>/dev/null || true
    redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || kill "$SPID" 2>/dev/null || true
    wait "$SPID" 2>/dev/null || true
    SPID=""
    printf '%s run %s: ' "$target" "$rep"
    awk -v n="$ROUNDS" '$NF ~ /^[a-z_0-9]+$/ && $4 ~ /^[0-9]+$/ && $NF != "total" && $4 / n >= 0.05 { printf "%s %.2f  ", $NF, $4 / n }
      $NF == "total" { t = $4 } END { printf "| total %.2f\n", t / n }' "$WORK/strace"
  done
done
