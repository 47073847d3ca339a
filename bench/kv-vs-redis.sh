#!/usr/bin/env bash
# EioSharp.Kv vs redis-server under the same redis-benchmark workloads, on loopback.
#
#   bench/kv-vs-redis.sh            # builds EioSharp.Kv (Release) and prints a markdown table
#
# Environment (all optional):
#   REPEATS=3        runs per workload and server; the table shows the median
#   N_SCALE=1        multiply every request count (-n) by this (e.g. 0.2 for a smoke run)
#   KV_DOMAINS=      --domains for EioSharp.Kv (default: the server's own default, one per core)
#   NO_BUILD=1       skip `dotnet build`
#   KV_BIN=path      run that native EioSharp.Kv executable (NativeAOT: scripts/publish-kv-aot.sh) instead of the JIT
#                    build; KV_BIN=aot publishes it first
#   ONLY="c50 c50-P16"  run only these workloads (names below)
# Besides ops/s, the table gives each server's CPU time per request (utime+stime from /proc/PID/stat over the run,
# divided by the requests), which a loaded machine disturbs much less than throughput.
#
# Workloads (the same command lines against both servers, -r 100000 random keys, 3-byte values):
#   SET/GET, 50 clients, no pipelining; the same with -P 16; one client (-c 1);
#   durable SET, 50 clients, with appendfsync always on both servers.
# Non-durable runs: redis-server --save '' --appendonly no; EioSharp.Kv with its default --appendfsync everysec
# (it always keeps an AOF, so it does more work than redis here). Durable run: both --appendfsync always.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
REPEATS="${REPEATS:-3}"
N_SCALE="${N_SCALE:-1}"
KV_DLL="$ROOT/apps/EioSharp.Kv/bin/Release/net10.0/EioSharp.Kv.dll"
WORK="$(mktemp -d /tmp/kv-vs-redis.XXXXXX)"
PIDS=()

cleanup() {
  for pid in "${PIDS[@]:-}"; do
    [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
  done
  rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

for tool in redis-server redis-benchmark redis-cli dotnet; do
  command -v "$tool" >/dev/null || { echo "missing $tool (scripts/setup.sh installs redis-tools redis-server)" >&2; exit 1; }
done

KV_BIN="${KV_BIN:-}"
if [ "$KV_BIN" = aot ]; then
  KV_BIN="$(bash "$ROOT/scripts/publish-kv-aot.sh" | tail -1)"
elif [ -z "$KV_BIN" ] && [ -z "${NO_BUILD:-}" ]; then
  dotnet build "$ROOT/apps/EioSharp.Kv" -c Release -v q -nologo >/dev/null
fi
KV_CMD=(dotnet "$KV_DLL"); [ -n "$KV_BIN" ] && KV_CMD=("$KV_BIN")
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; } # utime + stime, clock ticks

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }

wait_ping() { # port
  for _ in $(seq 1 200); do
    [ "$(redis-cli -p "$1" ping 2>/dev/null)" = "PONG" ] && return 0
    sleep 0.05
  done
  echo "server on port $1 did not start" >&2
  exit 1
}

# start_redis <name> <fsync: none|always>  -> sets PORT, PID
start_redis() {
  local dir="$WORK/$1"; mkdir -p "$dir"
  PORT=$(free_port)
  if [ "$2" = always ]; then
    redis-server --port "$PORT" --bind 127.0.0.1 --dir "$dir" --save '' --appendonly yes --appendfsync always \
      --daemonize no --logfile "$dir/log" &
  else
    redis-server --port "$PORT" --bind 127.0.0.1 --dir "$dir" --save '' --appendonly no \
      --daemonize no --logfile "$dir/log" &
  fi
  PID=$!; PIDS+=("$PID"); wait_ping "$PORT"
}

# start_kv <name> <fsync: everysec|always>  -> sets PORT, PID
start_kv() {
  local dir="$WORK/$1"; mkdir -p "$dir"
  PORT=$(free_port)
  local extra=()
  [ -n "${KV_DOMAINS:-}" ] && extra=(--domains "$KV_DOMAINS")
  "${KV_CMD[@]}" --port "$PORT" --bind 127.0.0.1 --dir "$dir/data" --appendfsync "$2" "${extra[@]}" >"$dir/log" 2>&1 &
  PID=$!; PIDS+=("$PID"); wait_ping "$PORT"
}

stop() { # pid
  kill "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}

# bench <port> <pid> <n> <tests> <extra redis-benchmark args...>  -> prints "TEST rps cpu_us_per_request" lines
bench() {
  local port=$1 pid=$2 n=$3 tests=$4; shift 4
  local t before after
  for t in ${tests//,/ }; do
    before=$(cpu_ticks "$pid")
    redis-benchmark -h 127.0.0.1 -p "$port" -n "$n" -r 100000 -t "$t" --csv "$@" 2>/dev/null |
      awk -F'","' 'NR > 1 { gsub(/"/, "", $1); gsub(/"/, "", $2); printf "%s %s ", $1, $2 }'
    after=$(cpu_ticks "$pid")
    python3 -c "import os; print(($after - $before) * 1e6 / os.sysconf('SC_CLK_TCK') / $n)"
  done
}

scale() { python3 -c "print(max(1000, int($1 * $N_SCALE)))"; }

# name | n | tests | fsync for kv | fsync for redis | redis-benchmark args
WORKLOADS=(
  "c50|$(scale 200000)|set,get|everysec|none|-c 50"
  "c50-P16|$(scale 1000000)|set,get|everysec|none|-c 50 -P 16"
  "c1|$(scale 40000)|set,get|everysec|none|-c 1"
  "durable-c50|$(scale 20000)|set|always|always|-c 50"
)

RESULTS="$WORK/results"; : >"$RESULTS"
start_time=$(date +%s)
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
for spec in "${WORKLOADS[@]}"; do
  IFS='|' read -r name n tests kvfsync redisfsync args <<<"$spec"
  if [ -n "${ONLY:-}" ] && [[ " $ONLY " != *" $name "* ]]; then continue; fi
  # Fresh servers per workload; runs alternate between them so drift on the shared machine hits both alike.
  start_redis "redis-$name" "$redisfsync"; RPORT=$PORT; RPID=$PID
  start_kv "kv-$name" "$kvfsync"; KPORT=$PORT; KPID=$PID
  for rep in $(seq 1 "$REPEATS"); do
    # shellcheck disable=SC2086
    bench "$RPORT" "$RPID" "$n" "$tests" $args | while read -r t rps cpu; do echo "$name $t redis $rps $cpu"; done >>"$RESULTS"
    # shellcheck disable=SC2086
    bench "$KPORT" "$KPID" "$n" "$tests" $args | while read -r t rps cpu; do echo "$name $t kv $rps $cpu"; done >>"$RESULTS"
    echo "  $name run $rep/$REPEATS done ($(( $(date +%s) - start_time )) s)" >&2
  done
  stop "$RPID"; stop "$KPID"
done

echo
echo "Machine: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), $(redis-server --version | awk '{print $1, $2, $3}'), dotnet $(dotnet --version)"
echo "Load average (1/5/15 min) before: $load_before; after: $(cut -d' ' -f1-3 /proc/loadavg) (other work on the machine skews the numbers)."
echo "Median of $REPEATS runs, requests per second (redis-benchmark -r 100000 --csv; -n per workload in the script)."
echo
echo "Kv build: ${KV_BIN:-JIT ($KV_DLL)}"
echo
echo "| workload | command | redis-server ops/s | EioSharp.Kv ops/s | EioSharp/redis | redis CPU us/req | Kv CPU us/req | CPU Kv/redis |"
echo "|---|---|---:|---:|---:|---:|---:|---:|"
python3 - "$RESULTS" <<'EOF'
import sys, statistics, collections
runs = collections.defaultdict(list)
order = []
for line in open(sys.argv[1]):
    name, test, server, rps, cpu = line.split()
    if (name, test) not in order:
        order.append((name, test))
    runs[(name, test, server)].append(float(rps))
    runs[(name, test, server, "cpu")].append(float(cpu))
labels = {
    "c50": "50 clients, no pipelining",
    "c50-P16": "50 clients, -P 16",
    "c1": "1 client",
    "durable-c50": "50 clients, appendfsync always (both)",
}
for name, test in order:
    r = statistics.median(runs[(name, test, "redis")])
    k = statistics.median(runs[(name, test, "kv")])
    rc = statistics.median(runs[(name, test, "redis", "cpu")])
    kc = statistics.median(runs[(name, test, "kv", "cpu")])
    print(f"| {labels.get(name, name)} | {test} | {r:,.0f} | {k:,.0f} | {k / r:.2f}x | {rc:.2f} | {kc:.2f} | {kc / rc:.2f}x |")
EOF
echo
echo "Total time: $(( $(date +%s) - start_time )) s"
