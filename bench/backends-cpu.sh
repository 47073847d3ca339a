#!/usr/bin/env bash
# CPU time per request of the KV server on each backend (--backend portable|epoll|uring) and redis-server under
# redis-benchmark, loopback only, free ports. Usage: bash bench/backends-cpu.sh [runs=3] [requests=30000] [clients="50 1"].
# Prints one line per (server, clients, run): µs CPU/request and requests/s.
#
# Whole issue-15 table in one run (session 16): bash bench/backends-cpu.sh table [rounds=3]
#   echo:  server CPU µs per round trip, 50 connections x ECHO_RT round trips of a 16-byte line (bench/lib/echo-server-cpu.sh;
#          ECHO_SERVERS, default "raw epoll uring"; raw = a plain .NET Socket server);
#   kv:    server CPU µs per request and req/s, redis-benchmark -c 50 -d 16 -r 100000, rows P1 SET/GET (KV_N1 requests)
#          and -P 16 SET/GET (KV_N16), on KV_SERVERS (default "epoll uring redis": EioSharp.Kv with its defaults,
#          appendonly yes everysec; redis-server 7 with the same durability: --appendonly yes --appendfsync everysec
#          --save ''), one fresh server per (server, round) running the four rows after a 20,000-request warm-up;
#   file:  CPU and wall µs per "write 4 KB + fsync" (FILE_N iterations, bench/EioSharp.Benchmarks file-sync) on
#          FILE_VARIANTS (default "raw portable epoll uring"; raw = RandomAccess.Write + FileStream.Flush(true) on a plain
#          thread; the backends FileWriter.WriteAtAsync + SyncAsync in a fiber), in FILE_DIR (default bench/.file-sync, on
#          the checkout's disk: fsync is free on a tmpfs). No mock column: the mock backend has no filesystem (MockMain's
#          env.Fs throws: real file operations complete outside its virtual time). Context switches per iteration, the
#          count behind these rows: bash bench/file-sync-backends.sh (file-sync prints switches_per_op).
#   Every row: ROUNDS rounds (servers alternating within a round), then a summary of the medians and the ratios
#   io_uring/epoll and epoll/raw (echo, file) or epoll/redis (kv) in CPU per operation (lower is better).
#   A variant may carry environment settings for its server: NAME:ENV=VALUE[,ENV=VALUE], e.g.
#   KV_SERVERS="epoll uring uring:EIOSHARP_URING_IDLE_PREPASS=0 redis".
#   Builds: KV_DLL (default apps/EioSharp.Kv's Release dll), BENCH_DLL (default bench/EioSharp.Benchmarks's Release dll).
#   About 3 minutes on a quiet 2-core machine with the defaults. Loopback only, free ports, every server stopped by its pid.
set -uo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = table ]; then
  rounds=${2:-3}
  KV_DLL=${KV_DLL:-apps/EioSharp.Kv/bin/Release/net10.0/EioSharp.Kv.dll}
  BENCH_DLL=${BENCH_DLL:-bench/EioSharp.Benchmarks/bin/Release/net10.0/EioSharp.Benchmarks.dll}
  ECHO_SERVERS=${ECHO_SERVERS:-raw epoll uring}; ECHO_RT=${ECHO_RT:-1000}
  KV_SERVERS=${KV_SERVERS:-epoll uring redis}; KV_N1=${KV_N1:-100000}; KV_N16=${KV_N16:-400000}
  FILE_VARIANTS=${FILE_VARIANTS:-raw portable epoll uring}; FILE_N=${FILE_N:-2000}; FILE_DIR=${FILE_DIR:-bench/.file-sync}
  out=$(mktemp /tmp/backends-table.XXXXXX) # "section row variant round cpu_us rate"
  tck=$(getconf CLK_TCK)
  ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }
  freeport() { python3 -c "import socket;s=socket.socket();s.bind(('127.0.0.1',0));print(s.getsockname()[1]);s.close()"; }
  envs_of() { case $1 in *:*) echo "${1#*:}" | tr ',' ' ';; esac; }
  echo "# backends table: $(date -u +%H:%M:%S) UTC, load $(cut -d' ' -f1-3 /proc/loadavg), KV_DLL=$KV_DLL BENCH_DLL=$BENCH_DLL"
  for r in $(seq 1 "$rounds"); do
    # echo
    for v in $ECHO_SERVERS; do
      line=$(
        # shellcheck disable=SC2046
        [ -n "$(envs_of "$v")" ] && export $(envs_of "$v")
        DLL=$BENCH_DLL; . bench/lib/echo-server-cpu.sh
        server_cpu_run "${v%%:*}" "echo-client 50 100" "echo-client 50 $ECHO_RT"
        rate=$(echo "$CLIENT_OUTPUT" | sed -nE 's/.*rt_per_s=([0-9]+).*/\1/p')
        awk -v c="$SERVER_CPU_SECONDS" -v n=$((50 * ECHO_RT)) -v rate="${rate:-0}" 'BEGIN { printf "%.2f %s", c*1e6/n, rate }')
      echo "echo rt $v $r $line" | tee -a "$out"
    done
    # kv
    for v in $KV_SERVERS; do
      port=$(freeport); d=$(mktemp -d /tmp/backends-table-kv.XXXXXX)
      if [ "$v" = redis ]; then
        redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly yes --appendfsync everysec --dir "$d" >/dev/null 2>&1 & pid=$!
      else
        # shellcheck disable=SC2046
        env $(envs_of "$v") dotnet "$KV_DLL" --port "$port" --bind 127.0.0.1 --dir "$d/data" --maxclients 10000 --backend "${v%%:*}" >"$d/log" 2>&1 & pid=$!
      fi
      for _ in $(seq 1 400); do [ "$(redis-cli -p "$port" ping 2>/dev/null)" = PONG ] && break; sleep 0.05; done
      redis-benchmark -p "$port" -n 20000 -r 100000 -t set,get -c 50 -d 16 -q >/dev/null 2>&1 # warm-up
      for row in "set 1 $KV_N1" "get 1 $KV_N1" "set 16 $KV_N16" "get 16 $KV_N16"; do
        set -- $row
        c0=$(ticks "$pid")
        rps=$(redis-benchmark -p "$port" -n "$3" -r 100000 -t "$1" -c 50 -P "$2" -d 16 --csv 2>/dev/null | awk -F'","' 'NR>1 {gsub(/"/,"",$2); print $2; exit}')
        c1=$(ticks "$pid")
        awk -v a="$c0" -v b="$c1" -v t="$tck" -v n="$3" -v row="$1-P$2" -v v="$v" -v r="$r" -v rps="${rps:-0}" \
          'BEGIN { printf "kv %s %s %s %.2f %s\n", row, v, r, (b-a)/t*1e6/n, rps }' | tee -a "$out"
      done
      kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; rm -rf "$d"
    done
    # file
    mkdir -p "$FILE_DIR"
    for v in $FILE_VARIANTS; do
      # shellcheck disable=SC2046
      res=$(env $(envs_of "$v") dotnet "$BENCH_DLL" file-sync "${v%%:*}" "$FILE_N" 4096 "$(cd "$FILE_DIR" && pwd)")
      cpu=$(echo "$res" | sed -nE 's/.*cpu_us_per_op=([0-9.]+).*/\1/p'); wall=$(echo "$res" | sed -nE 's/.*wall_us_per_op=([0-9.]+).*/\1/p')
      echo "file write+fsync $v $r ${cpu:-0} ${wall:-0}" | tee -a "$out"
    done
    rmdir "$FILE_DIR" 2>/dev/null || true
  done
  echo "# medians of $rounds (cpu µs/op; rate = round trips/s, req/s, or wall µs/op for file), load now $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%H:%M:%S) UTC"
  python3 - "$out" <<'PY'
import sys, statistics as st
rows = {}
for line in open(sys.argv[1]):
    sec, row, var, _, cpu, rate = line.split()
    rows.setdefault((sec, row), {}).setdefault(var, []).append((float(cpu), float(rate)))
for (sec, row), vs in rows.items():
    med = {v: (st.median(c for c, _ in xs), st.median(r for _, r in xs)) for v, xs in vs.items()}
    cells = "  ".join(f"{v} {c:.2f} ({r:,.0f})" for v, (c, r) in med.items())
    ref = "redis" if sec == "kv" else "raw"
    ratios = []
    if "uring" in med and "epoll" in med: ratios.append(f"uring/epoll {med['uring'][0] / med['epoll'][0]:.2f}")
    if "epoll" in med and ref in med: ratios.append(f"epoll/{ref} {med['epoll'][0] / med[ref][0]:.2f}")
    if "uring" in med and ref in med: ratios.append(f"uring/{ref} {med['uring'][0] / med[ref][0]:.2f}")
    if "portable" in med and ref in med: ratios.append(f"portable/{ref} {med['portable'][0] / med[ref][0]:.2f}")
    print(f"{sec:4} {row:12} {cells}  | {', '.join(ratios)}")
PY
  rm -f "$out"
  exit 0
fi
runs=${1:-3}
requests=${2:-30000}
clientsets=${3:-50 1}
dll=apps/EioSharp.Kv/bin/Release/net10.0/EioSharp.Kv.dll
tck=$(getconf CLK_TCK)
cpu() { awk '{print $14+$15}' /proc/$1/stat; }
measure() { # name pid port clients
  local name=$1 pid=$2 port=$3 c=$4
  redis-benchmark -p "$port" -t set,get -n 5000 -c "$c" -q >/dev/null 2>&1 # warm-up
  local before after out
  before=$(cpu "$pid")
  out=$(redis-benchmark -p "$port" -t set,get -n "$requests" -c "$c" -q 2>/dev/null | tr '\r' '\n' | grep 'requests per second' | sed -E 's/^([A-Z]+): ([0-9.]+) requests.*/\1 \2/' | tr '\n' ' ')
  after=$(cpu "$pid")
  awk -v n="$name" -v c="$c" -v b="$before" -v a="$after" -v t="$tck" -v o="$out" -v r="$requests" \
    'BEGIN { printf "%-9s c=%-3s cpu/req=%6.2f us  set/get req/s: %s\n", n, c, (a-b)/t*1e6/(2*r), o }'
}
freeport() { python3 -c "import socket;s=socket.socket();s.bind(('127.0.0.1',0));print(s.getsockname()[1])"; }
for r in $(seq 1 "$runs"); do
  for s in portable epoll uring redis; do
    port=$(freeport); dir=$(mktemp -d)
    if [ $s = redis ]; then
      redis-server --port $port --save '' --appendonly no --dir "$dir" >/dev/null 2>&1 & pid=$!
    else
      dotnet $dll --backend $s --port $port --dir "$dir" --domains 1 --store-domain main >/dev/null 2>&1 & pid=$!
    fi
    for i in $(seq 50); do redis-cli -p $port ping >/dev/null 2>&1 && break; sleep 0.1; done
    for c in $clientsets; do measure $s $pid $port "$c"; done
    kill $pid; wait $pid 2>/dev/null; rm -rf "$dir"
  done
done
