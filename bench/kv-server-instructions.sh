#!/usr/bin/env bash
# User-space instructions per operation of a whole server process (EioSharp.Kv builds and redis-server 7.0.15) on the
# issue-12 stream and EVALSHA workloads, counted by valgrind (cachegrind, no cache or branch simulation, every thread):
# steadier than CPU time per op on the shared VM (+-30%), but NOT fully load-independent: the server does work per unit
# of wall time (timers, everysec fsync, statistics) and a run's wall time under valgrind depends on the load, so compare
# builds with interleaved, repeated runs (session 14: single runs at different loads moved EVALSHA by +8%).
# Each server runs twice under valgrind, with a workload of N and then 2N operations (start, workload, SHUTDOWN NOSAVE):
# the difference of the two totals is N operations with start-up, JIT and shutdown removed. Kernel work (the syscalls'
# own cost) is not counted: compare syscalls per op separately (strace -c -f).
#   stream   bench/EioSharp.Kv.LoadGen stream: 2 producers XADD, 2 consumers XREADGROUP COUNT 10 BLOCK 1000 + XACK
#            (op = one message added, read and acknowledged), as bench/kv-features.sh's stream row
#   stream-seq  bench/lib/stream-seq-client.py: one client, XADD + XREADGROUP COUNT 10 + XACK per message, no
#            pipelining: exactly 3 requests per message on both servers (the stream row's batches depend on timing)
#   evalsha  redis-benchmark -c 50 -r 100000: EVALSHA of INCR + SET + GET (op = one EVALSHA), as kv-features.sh's row
# The .NET code is compiled once, fully optimised (DOTNET_TieredCompilation=0, DOTNET_JitEnableOptionalRelocs=0: see
# bench/trace-overhead-instructions.sh for why), so the managed share is of FullOpts code without dynamic PGO.
# EioSharp.Kv runs with --backend epoll: under valgrind 3.19 the io_uring backend never answered (the server hung before
# its first reply), so the figures are of the epoll backend (redis-server uses epoll too).
#
#   bench/kv-server-instructions.sh KV_DIR ...   # dirs holding EioSharp.Kv.dll; redis-server is measured too (REDIS=0: not)
#
# Environment: WORKLOADS ("stream-seq stream evalsha"), N_SEQ (1500), N_STREAM (3000), N_EVALSHA (6000), KV_ARGS (extra EioSharp.Kv arguments,
# e.g. "--appendonly no"; EioSharp.Kv's default is appendonly yes, redis-server's no), REDIS_ARGS, LOADGEN (path of
# EioSharp.Kv.LoadGen.dll; default this tree's Release build).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WORKLOADS="${WORKLOADS:-stream-seq stream evalsha}"; N_STREAM="${N_STREAM:-3000}"; N_SEQ="${N_SEQ:-1500}"; N_EVALSHA="${N_EVALSHA:-6000}"
LOADGEN="${LOADGEN:-$ROOT/bench/EioSharp.Kv.LoadGen/bin/Release/net10.0/EioSharp.Kv.LoadGen.dll}"
command -v valgrind >/dev/null || { echo "valgrind is not installed" >&2; exit 1; }
[ -f "$LOADGEN" ] || nice dotnet build "$ROOT/bench/EioSharp.Kv.LoadGen" -c Release -v q -nologo >/dev/null
WORK="$(mktemp -d /tmp/kv-server-instr.XXXXXX)"
SPID=""
cleanup() { [ -n "$SPID" ] && kill "$SPID" 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT INT TERM
SCRIPT="local n = redis.call('INCR', KEYS[1]) redis.call('SET', KEYS[1] .. ':v', n) return redis.call('GET', KEYS[1] .. ':v')"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }

count() { # server(redis|kv dir) workload ops -> total instructions
  local server=$1 w=$2 n=$3 port dir log
  port=$(free_port); dir="$WORK/d.$port"; log="$WORK/vg.$port"; mkdir -p "$dir"
  if [ "$server" = redis ]; then
    # shellcheck disable=SC2086
    nice valgrind --tool=cachegrind --cache-sim=no --branch-sim=no --cachegrind-out-file=/dev/null --log-file="$log" \
      redis-server --port "$port" --bind 127.0.0.1 --dir "$dir" --daemonize no --logfile "$dir/log" ${REDIS_ARGS:-} &
  else
    # shellcheck disable=SC2086
    DOTNET_TieredCompilation=0 DOTNET_gcConcurrent=0 DOTNET_EnableWriteXorExecute=0 DOTNET_JitEnableOptionalRelocs=0 \
    nice valgrind --tool=cachegrind --cache-sim=no --branch-sim=no --cachegrind-out-file=/dev/null --log-file="$log" \
      dotnet "$server/EioSharp.Kv.dll" --port "$port" --bind 127.0.0.1 --dir "$dir/data" --backend epoll ${KV_ARGS:-} >"$dir/out" 2>&1 &
  fi
  SPID=$!
  local up=0
  for _ in $(seq 1 1200); do
    [ "$(redis-cli -p "$port" ping 2>/dev/null)" = "PONG" ] && { up=1; break; }
    sleep 0.25
  done
  [ $up = 1 ] || { echo "server on $port did not start" >&2; exit 1; }
  case "$w" in
    stream-seq) python3 "$ROOT/bench/lib/stream-seq-client.py" "$port" "$n" >/dev/null ;;
    stream) dotnet "$LOADGEN" stream --port "$port" --producers 2 --consumers 2 --count 10 --messages "$n" >/dev/null ;;
    evalsha)
      local sha; sha=$(redis-cli -p "$port" SCRIPT LOAD "$SCRIPT")
      redis-benchmark -h 127.0.0.1 -p "$port" -c 50 -n "$n" -r 100000 -q EVALSHA "$sha" 1 'key:__rand_int__' >/dev/null 2>&1 ;;
    *) echo "unknown workload $w" >&2; exit 1 ;;
  esac
  # Requests per op of each command (the stream row's XREADGROUP and XACK batches differ between servers).
  redis-cli -p "$port" INFO commandstats | tr -d '\r' | grep -E '^cmdstat_(xadd|xreadgroup|xack|evalsha):' \
    | sed 's/,usec=.*//' | tr '\n' ' ' >"$WORK/stats.$w.$n.$(basename "$server")" || true
  redis-cli -p "$port" SHUTDOWN NOSAVE >/dev/null 2>&1 || true
  wait "$SPID" || true; SPID=""
  awk '/I *refs:/ { gsub(",", "", $NF); print $NF }' "$log" | head -1
}

servers=()
[ "${REDIS:-1}" = 1 ] && servers+=(redis)
servers+=("$@")
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
for w in $WORKLOADS; do
  n=$N_EVALSHA; [ "$w" = stream ] && n=$N_STREAM; [ "$w" = stream-seq ] && n=$N_SEQ
  for s in "${servers[@]}"; do
    a=$(count "$s" "$w" "$n"); b=$(count "$s" "$w" $((2 * n)))
    echo "$w server=$s instructions_per_op=$(( (b - a) / n )) (totals $a $b, N=$n; 2N run: $(cat "$WORK/stats.$w.$((2 * n)).$(basename "$s")"))"
  done
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
