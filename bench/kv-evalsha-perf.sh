#!/usr/bin/env bash
# Where the machine's time goes during bench/kv-features.sh's EVALSHA row (redis-benchmark -c 50, EVALSHA of INCR +
# SET + GET), for one server: `perf record -a -e cpu-clock` of both cores while the row runs (server, client, kernel
# threads and idle alike; the VM has no hardware counters, so samples of the cpu-clock timer), then reports by command,
# by shared object, and the top symbols of the server and of the client. Managed frames are named through the perf map
# (DOTNET_PerfMapEnabled=1).
#
#   bash bench/kv-evalsha-perf.sh redis|DLL OUT_DIR      # e.g. /tmp/s23-base/kv/EioSharp.Kv.dll /tmp/h145-perf/base
#
# Environment: N (300000 calls recorded; the recording covers the whole redis-benchmark run), FREQ (4000 samples/s per
# CPU), DURABILITY (aof: appendonly yes + everysec, no save points; none), KV_ARGS, REDIS_ARGS, TOP (30 symbols).
set -euo pipefail

target=$1; out=$2
N="${N:-300000}"; FREQ="${FREQ:-4000}"; TOP="${TOP:-30}"
case "${DURABILITY:-aof}" in
  aof) DURABLE_ARGS=(--appendonly yes --appendfsync everysec --save "") ;;
  none) DURABLE_ARGS=(--appendonly no --save "") ;;
  *) echo "DURABILITY is aof or none" >&2; exit 1 ;;
esac
mkdir -p "$out"
dir=$(mktemp -d /tmp/kv-evalsha-perf.XXXXXX)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
if [ "$target" = redis ]; then
  # shellcheck disable=SC2086
  redis-server --port "$port" --bind 127.0.0.1 --dir "$dir" --daemonize no --logfile "$dir/log" "${DURABLE_ARGS[@]}" ${REDIS_ARGS:-} &
  pid=$!
else
  # shellcheck disable=SC2086
  DOTNET_PerfMapEnabled=1 DOTNET_EnableWriteXorExecute=0 dotnet "$target" --port "$port" --bind 127.0.0.1 --dir "$dir/data" "${DURABLE_ARGS[@]}" ${KV_ARGS:-} >"$dir/log" 2>&1 &
  pid=$!
fi
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 1 400); do [ "$(redis-cli -p "$port" ping 2>/dev/null)" = PONG ] && break; sleep 0.05; done
SCRIPT="local n = redis.call('INCR', KEYS[1]) redis.call('SET', KEYS[1] .. ':v', n) return redis.call('GET', KEYS[1] .. ':v')"
SHA=$(redis-cli -p "$port" SCRIPT LOAD "$SCRIPT")
run() { redis-benchmark -h 127.0.0.1 -p "$port" -c 50 -n "$1" -r 100000 --csv EVALSHA "$SHA" 1 'key:__rand_int__' 2>/dev/null | awk -F'","' 'NR == 2 { gsub(/"/, "", $2); print $2 }'; }
run 100000 >/dev/null # warm-up: JIT tiers, keyspace
t0=$(awk '{ print $14 + $15 }' "/proc/$pid/stat")
perf record -a -g -e cpu-clock -F "$FREQ" -o "$out/perf.data" -- bash -c "$(declare -f run); port=$port; SHA=$SHA; run $N > $out/rate" 2>"$out/record.log" >/dev/null
t1=$(awk '{ print $14 + $15 }' "/proc/$pid/stat")
python3 -c "print('calls/s', open('$out/rate').read().strip(), ' server cpu us/call', ($t1 - $t0) / $(getconf CLK_TCK) * 1e6 / $N, ' load', open('/proc/loadavg').read().split()[0])" | tee "$out/summary"
echo "server pid $pid" >>"$out/summary"
rep() { perf report -i "$out/perf.data" --no-children --stdio -g none "$@" 2>/dev/null | grep -v '^#' | grep -v '^$' || true; }
rep --sort pid,comm | head -20 >"$out/by-comm.txt"
rep --pid "$pid" --sort tid,dso | head -40 >"$out/server-by-dso.txt"
rep --pid "$pid" --sort sym | head -"$TOP" >"$out/server-syms.txt"
perf report -i "$out/perf.data" --children --pid "$pid" --sort sym --stdio -g none 2>/dev/null | grep '\[k\]' | head -"$TOP" >"$out/server-kernel-inclusive.txt" || true
rep --comms redis-benchmark --sort sym | head -"$TOP" >"$out/client-syms.txt"
cat "$out/by-comm.txt"
