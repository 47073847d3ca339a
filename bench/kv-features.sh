#!/usr/bin/env bash
# EioSharp.Kv vs redis-server on the issue-12 features, on loopback, both servers in the same run:
#   pubsub-P1 / pubsub-P16  PUBLISH to 100 subscribers, publisher waits for each reply / sends batches of 16
#                           (op = one message delivered to one subscriber)
#   pingpong                BLPOP/LPUSH ping-pong between two clients (op = one round trip)
#   stream                  2 producers XADD, 2 consumers XREADGROUP COUNT 10 BLOCK 1000 + XACK in one group
#                           (op = one message added, read and acknowledged)
#   evalsha                 redis-benchmark -c 50: EVALSHA of a script doing INCR + SET + GET (op = one EVALSHA)
# The first four are driven by bench/EioSharp.Kv.LoadGen, the last by redis-benchmark. The measuring instrument changed
# in session 32 (h184, rationale §180): pingpong's and stream's clients are fibers of one EioSharp domain in the load
# generator (`--client eio`: one thread, io_uring, replies checked in place), where sessions 20-31 ran a thread per
# client on blocking .NET sockets (`--client threads`, LOADGEN_CLIENT=threads), which used as much CPU per stream message
# as either server on the two shared cores. Same clients, commands, blocking and reply checks; ratios read before and
# after the change are not comparable (docs/BENCHMARKS.md, session 32, has both in the same runs).
#
#   bench/kv-features.sh            # builds EioSharp.Kv and the load generator (Release), prints a markdown table
#
# Environment (all optional):
#   REPEATS=3        runs per workload and server (alternating redis, kv, redis, kv ...); the table shows medians
#   N_SCALE=1        multiply every operation count by this (e.g. 0.2 for a smoke run)
#   WORKLOADS="pubsub-P1 pubsub-P16 pingpong stream evalsha"   which rows to run
#   NO_BUILD=1       skip `dotnet build`
#   KV_DLL=path      another EioSharp.Kv build to measure (e.g. a copy of an older bin/ folder, for before/after)
#   WARMUP=1         one unrecorded run per workload and server first, at a fifth of the size (0 to skip)
#   LOADGEN_CLIENT=eio|threads   the load generator's clients for pingpong and stream (default eio; see above)
#   LOADGEN_DLL=path another EioSharp.Kv.LoadGen build (an older one ignores LOADGEN_CLIENT and runs threads)
#   KV_BASE_DLL=path another EioSharp.Kv build run as a third server in the same run (runs alternate redis, kv-base,
#                    kv): base vs new vs redis-server from one run
#   DURABILITY=aof   the persistence both servers run with (the same for both, so that the comparison is fair):
#                      aof      (default) appendonly yes + appendfsync everysec, no RDB save points, on both: EioSharp.Kv's
#                               default configuration and Redis's recommended durable one; every write is encoded and
#                               written to the AOF by both servers
#                      none     appendonly no and no save points on both: the in-memory cost alone
#                      defaults each server with its own defaults (redis-server: appendonly no + RDB save rules
#                               `3600 1 300 100 60 10000`; EioSharp.Kv: appendonly yes + everysec, save ""): the unequal
#                               setting sessions 13-14 measured (Kv's figures include AOF work that redis skips)
#   REDIS_ARGS=...   extra redis-server arguments (after DURABILITY's)
#   KV_ARGS=...      extra EioSharp.Kv arguments (after DURABILITY's)
#   KV_ENV="V=x ..." / KV_BASE_ENV="V=x ..."   environment for the kv / kvbase server only (e.g. one build twice, with
#                    KV_BASE_DLL=KV_DLL and KV_ENV=EIOSHARP_URING_IDLE_PREPASS=0: a backend switch A/B in one run)
#
# Each server gets its own empty --dir. CPU per op is the server process's user+system time (utime+stime+cutime+cstime
# from /proc/<pid>/stat, so the AOF's fsync threads and redis's snapshot children count too) over the run, divided by
# the run's ops: steadier than ops/s when other work shares the machine. The load generator's own CPU per op (its
# `client_cpu_us_per_op`, pingpong and stream only) is in the raw runs' last column ("-" where it prints none).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
REPEATS="${REPEATS:-3}"
N_SCALE="${N_SCALE:-1}"
WORKLOADS="${WORKLOADS:-pubsub-P1 pubsub-P16 pingpong stream evalsha}"
KV_DLL="${KV_DLL:-$ROOT/apps/EioSharp.Kv/bin/Release/net10.0/EioSharp.Kv.dll}"
KV_BASE_DLL="${KV_BASE_DLL:-}"
DURABILITY="${DURABILITY:-aof}"
case "$DURABILITY" in
  aof) DURABLE_ARGS=(--appendonly yes --appendfsync everysec --save ""); DURABLE_TEXT='--appendonly yes --appendfsync everysec --save ""' ;;
  none) DURABLE_ARGS=(--appendonly no --save ""); DURABLE_TEXT='--appendonly no --save ""' ;;
  defaults) DURABLE_ARGS=(); DURABLE_TEXT="their own defaults" ;;
  *) echo "DURABILITY is aof, none or defaults" >&2; exit 1 ;;
esac
WARMUP="${WARMUP:-1}"
LOADGEN_DLL="${LOADGEN_DLL:-$ROOT/bench/EioSharp.Kv.LoadGen/bin/Release/net10.0/EioSharp.Kv.LoadGen.dll}"
LOADGEN_CLIENT="${LOADGEN_CLIENT:-eio}"
# WORK, PIDS, CLK_TCK, the cleanup trap, free_port, wait_ping
source "$ROOT/bench/lib/servers.sh" kv-features

for tool in redis-server redis-benchmark redis-cli dotnet python3; do
  command -v "$tool" >/dev/null || { echo "missing $tool (scripts/setup.sh installs redis-tools redis-server)" >&2; exit 1; }
done

if [ -z "${NO_BUILD:-}" ]; then
  dotnet build "$ROOT/apps/EioSharp.Kv" -c Release -v q -nologo >/dev/null
  dotnet build "$ROOT/bench/EioSharp.Kv.LoadGen" -c Release -v q -nologo >/dev/null
fi

cpu_ticks() { # pid -> utime+stime+cutime+cstime (clock ticks)
  awk '{ print $14 + $15 + $16 + $17 }' "/proc/$1/stat"
}

scale() { python3 -c "print(max(100, int($1 * $N_SCALE)))"; }

start_kv() { # name dll -> PORT_OF[name], PID_OF[name]
  local name=$1 dll=$2 port pid
  mkdir -p "$WORK/$name"; port=$(free_port)
  # shellcheck disable=SC2086
  local envs=${KV_ENV:-}; [ "$name" = kvbase ] && envs=${KV_BASE_ENV:-}
  env $envs dotnet "$dll" --port "$port" --bind 127.0.0.1 --dir "$WORK/$name/data" "${DURABLE_ARGS[@]}" ${KV_ARGS:-} >"$WORK/$name/log" 2>&1 &
  pid=$!; PIDS+=("$pid"); wait_ping "$port"
  PORT_OF[$name]=$port; PID_OF[$name]=$pid
}

declare -A PORT_OF PID_OF
mkdir -p "$WORK/redis"
RPORT=$(free_port)
# shellcheck disable=SC2086 # word splitting of the extra arguments is wanted
redis-server --port "$RPORT" --bind 127.0.0.1 --dir "$WORK/redis" --daemonize no --logfile "$WORK/redis/log" "${DURABLE_ARGS[@]}" ${REDIS_ARGS:-} &
RPID=$!; PIDS+=("$RPID"); wait_ping "$RPORT"
PORT_OF[redis]=$RPORT; PID_OF[redis]=$RPID
SERVERS=(redis)
if [ -n "$KV_BASE_DLL" ]; then start_kv kvbase "$KV_BASE_DLL"; SERVERS+=(kvbase); fi
start_kv kv "$KV_DLL"; SERVERS+=(kv)

SCRIPT="local n = redis.call('INCR', KEYS[1]) redis.call('SET', KEYS[1] .. ':v', n) return redis.call('GET', KEYS[1] .. ':v')"
SHA=$(redis-cli -p "$RPORT" SCRIPT LOAD "$SCRIPT")
for server in "${SERVERS[@]}"; do
  [ "$(redis-cli -p "${PORT_OF[$server]}" SCRIPT LOAD "$SCRIPT")" = "$SHA" ] || { echo "SCRIPT LOAD differs on $server" >&2; exit 1; }
done

# run_one <workload> <port> -> prints "ops ops_per_s client_cpu_us_per_op" (the last "-" when not printed)
run_one() {
  local w=$1 port=$2 out
  case "$w" in
    pubsub-P1) out=$(dotnet "$LOADGEN_DLL" pubsub --port "$port" --subscribers 100 --pipeline 1 --messages "$(scale 20000)") ;;
    pubsub-P16) out=$(dotnet "$LOADGEN_DLL" pubsub --port "$port" --subscribers 100 --pipeline 16 --messages "$(scale 40000)") ;;
    pingpong) out=$(dotnet "$LOADGEN_DLL" pingpong --port "$port" --rounds "$(scale 20000)" --client "$LOADGEN_CLIENT") ;;
    stream) out=$(dotnet "$LOADGEN_DLL" stream --port "$port" --producers 2 --consumers 2 --count 10 --messages "$(scale 30000)" --client "$LOADGEN_CLIENT") ;;
    evalsha)
      local n; n=$(scale 200000)
      out=$(redis-benchmark -h 127.0.0.1 -p "$port" -c 50 -n "$n" -r 100000 --csv EVALSHA "$SHA" 1 'key:__rand_int__' 2>/dev/null |
        awk -F'","' -v n="$n" 'NR == 2 { gsub(/"/, "", $2); printf "RESULT ops=%d ops_per_s=%s\n", n, $2 }')
      ;;
    *) echo "unknown workload $w" >&2; exit 1 ;;
  esac
  echo "$out" | awk '/^RESULT/ { for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] } print v["ops"], v["ops_per_s"], (("client_cpu_us_per_op" in v) ? v["client_cpu_us_per_op"] : "-") }'
}

RESULTS="$WORK/results"; : >"$RESULTS"
start_time=$(date +%s)
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
for w in $WORKLOADS; do
  if [ "$WARMUP" = 1 ]; then # JIT and connection warm-up for both servers, not recorded
    N_SCALE_SAVED=$N_SCALE; N_SCALE=$(python3 -c "print($N_SCALE / 5)")
    for server in "${SERVERS[@]}"; do run_one "$w" "${PORT_OF[$server]}" >/dev/null; done
    N_SCALE=$N_SCALE_SAVED
  fi
  for rep in $(seq 1 "$REPEATS"); do
    for server in "${SERVERS[@]}"; do
      port=${PORT_OF[$server]}; pid=${PID_OF[$server]}
      before=$(cpu_ticks "$pid")
      read -r ops rate client_cpu < <(run_one "$w" "$port")
      after=$(cpu_ticks "$pid")
      [ -n "${rate:-}" ] || { echo "$w on $server produced no result" >&2; exit 1; }
      echo "$w $server $rate $(python3 -c "print(($after - $before) / $CLK_TCK * 1e6 / $ops)") $client_cpu" >>"$RESULTS"
    done
    echo "  $w run $rep/$REPEATS done ($(( $(date +%s) - start_time )) s)" >&2
  done
done
for server in "${SERVERS[@]}"; do kill -0 "${PID_OF[$server]}" || { echo "$server died during the run" >&2; exit 1; }; done

echo
echo "Machine: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), $(redis-server --version | awk '{print $1, $2, $3}'), dotnet $(dotnet --version)"
echo "Load average (1/5/15 min) before: $load_before; after: $(cut -d' ' -f1-3 /proc/loadavg) (other work on the machine skews ops/s more than CPU/op)."
echo "Median of $REPEATS runs per server (runs alternate ${SERVERS[*]}). DURABILITY=$DURABILITY: both servers with"
echo "$DURABLE_TEXT. CPU/op: server process user+system µs per op."
echo "Extra arguments: redis-server '${REDIS_ARGS:-}', EioSharp.Kv '${KV_ARGS:-}'. Load generator: $LOADGEN_DLL, --client $LOADGEN_CLIENT."
echo
python3 - "$RESULTS" <<'EOF'
import sys, statistics, collections
rate = collections.defaultdict(list); cpu = collections.defaultdict(list); order = []; servers = []
for line in open(sys.argv[1]):
    w, server, r, c = line.split()[:4]
    if w not in order: order.append(w)
    if server not in servers: servers.append(server)
    rate[(w, server)].append(float(r)); cpu[(w, server)].append(float(c))
labels = {
    "pubsub-P1": "PUBLISH to 100 subscribers, unpipelined (deliveries/s)",
    "pubsub-P16": "PUBLISH to 100 subscribers, pipelined -P 16 (deliveries/s)",
    "pingpong": "BLPOP/LPUSH ping-pong, 2 clients (round trips/s)",
    "stream": "XADD + XREADGROUP + XACK, 2+2 clients (messages/s)",
    "evalsha": "EVALSHA INCR+SET+GET, 50 clients (calls/s)",
}
names = {"redis": "redis-server", "kvbase": "Kv base", "kv": "EioSharp.Kv"}
kvs = [s for s in servers if s != "redis"]
head = ("| workload | redis-server ops/s | " + " | ".join(f"{names[s]} ops/s (vs redis)" for s in kvs)
        + " | redis CPU µs/op | " + " | ".join(f"{names[s]} CPU µs/op" for s in kvs) + " | "
        + " | ".join(f"CPU ratio redis/{names[s]}" for s in kvs) + " |")
print(head)
print("|---|" + "---:|" * (head.count("|") - 2))
for w in order:
    r = statistics.median(rate[(w, "redis")]); rc = statistics.median(cpu[(w, "redis")])
    ks = [statistics.median(rate[(w, s)]) for s in kvs]; kc = [statistics.median(cpu[(w, s)]) for s in kvs]
    print(f"| {labels.get(w, w)} | {r:,.0f} | " + " | ".join(f"{k:,.0f} ({k / r:.2f}x)" for k in ks)
          + f" | {rc:.2f} | " + " | ".join(f"{c:.2f}" for c in kc) + " | " + " | ".join(f"{rc / c:.2f}x" for c in kc) + " |")
client = collections.defaultdict(list)
for line in open(sys.argv[1]):
    f = line.split()
    if len(f) > 4 and f[4] != "-": client[(f[0], f[1])].append(float(f[4]))
if client:
    print()
    print("Load generator CPU µs/op (medians): " + "; ".join(
        f"{w} " + ", ".join(f"{names[s]} {statistics.median(client[(w, s)]):.2f}" for s in servers if client[(w, s)])
        for w in order if any(client[(w, s)] for s in servers)))
EOF
echo
echo "Raw runs (workload server ops/s cpu_us_per_op client_cpu_us_per_op):"
sed 's/^/    /' "$RESULTS"
echo "Total time: $(( $(date +%s) - start_time )) s"
