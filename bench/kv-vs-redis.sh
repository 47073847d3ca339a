#!/usr/bin/env bash
# EioSharp.Kv vs redis-server vs Garnet under the same redis-benchmark workloads, on loopback, all in one run.
#
#   bench/kv-vs-redis.sh            # builds EioSharp.Kv (Release), installs Garnet, prints markdown tables
#
# Environment (all optional):
#   REPEATS=3        runs per workload and server; the tables show the median
#   N_SCALE=1        multiply every request count (-n) by this (e.g. 0.2 for a smoke run)
#   KV_DOMAINS=      --domains for EioSharp.Kv (default: the server's own default)
#   KV_ARGS=         more EioSharp.Kv arguments (e.g. "--store-domain own")
#   KV_BASE_ARGS=    more arguments for the kvbase server only, after KV_ARGS (one build twice with a server setting on one
#                    side: KV_BASE_DLL=KV_DLL KV_BASE_ARGS="--appendonly no")
#   REDIS_ARGS=      more redis-server arguments, after the script's own (so they win): e.g. REDIS_ARGS="--appendonly yes
#                    --appendfsync everysec" with KV_ARGS="--appendonly yes --appendfsync everysec" runs both servers
#                    with the same persistence (the default run gives Kv its AOF and redis-server none); not used by
#                    the durable workload (its --appendfsync always would be overridden): run that one without it
#   GARNET_ARGS=     more garnet-server arguments
#   SERVERS="redis garnet kv"   which servers to run (add "kvbase" with KV_BASE_DLL=path/EioSharp.Kv.dll, or
#                    KV_BASE_BIN=path/EioSharp.Kv for a NativeAOT executable, to compare builds;
#                    "kv-portable", "kv-epoll", "kv-uring": EioSharp.Kv with --backend portable|epoll|uring, checked
#                    against the backend its ready line names; e.g. the per-backend rows of issue 15:
#                    SERVERS="redis kv-portable kv-epoll kv-uring" WORKLOADS_ONLY="c50 c50-P16" NO_MEMORY=1)
#   KV_DLL=          the EioSharp.Kv build to run (default: this tree's Release build)
#   PRINT_RUNS=1     print each run's ops/s and CPU per request (stderr) as it ends (a Kv server's fsyncs per request
#                    too, from INFO aof_fsyncs, and under fsync always its rounds overlapped and guard probes in the run)
#                    Also per run: the client's CPU per request (redis-benchmark's user+system, /usr/bin/time), the CPU
#                    per request the workload's other servers took during it (a server still busy after its own run),
#                    and the rest of the machine's busy time over the run in cores ("outside": other work on the
#                    machine); the client's share decides a pipelined row's ops/s on two cores (session 41, h223, §220)
#   ORDER=alternate  every second run of a workload goes through SERVERS in the reverse order (the servers of a round
#                    run one after the other in a fixed order, the last Kv column last; at load 4-33 no place effect
#                    showed on the -P 16 rows, one set 1.25x for the second place, the A/A set 0.86x: docs/BENCHMARKS.md
#                    session 41 h223, §220; bench/kv-ab-rounds.sh swaps places between rounds of fresh servers)
#   PRINT_THREADS=1  with PRINT_RUNS, also each Kv run's CPU per request by thread kind (/proc/PID/task/*/stat, the
#                    comm's trailing number dropped; threads that ended in the run as "(ended)") and the GC's
#                    collections by generation in the run (MEMORY MALLOC-STATS): what a run pays beside its requests
#                    (the JIT's tiering thread, the GC, the system-thread offload; issue 14, session 37, h207)
#   KV_ENV="V=x ..." / KV_BASE_ENV="V=x ..."   environment for the kv (and kv-*) / kvbase servers only: one build twice
#                    (KV_BASE_DLL=KV_DLL) with a backend switch on one side, e.g. KV_ENV=EIOSHARP_URING_IDLE_PREPASS=0
#   WORKLOADS_ONLY=  space-separated workload names to run (default: all)
#   NO_BUILD=1       skip `dotnet build`;  NO_MEMORY=1  skip the 1M-key RSS table
#   RESULTS_COPY=F   copy the per-run results ("workload test server ops/s cpu_us", one line a run) to F at the end
#   WARMUP=0.2       before a workload's measured runs, every server gets one unmeasured pass of each of its tests
#                    with this fraction of the requests (0: none, as before session 16). A fresh JIT server (EioSharp.Kv,
#                    Garnet) compiles its hot code during its first requests: EioSharp.Kv's tiered JIT thread took
#                    ~1.0 us/request of the first 1M -P 16 SETs (~1 s of CPU, docs/BENCHMARKS.md, session 16 h107), a
#                    start-up cost that a cold first run charged to that row (and, through the median, to the next).
#   WARMUP_SECONDS=0 repeat that warm-up pass (every server, alternating, the same requests each) until this many seconds
#                    have passed for the workload. The runtime's tiered JIT works by time (a 100 ms call-counting delay
#                    after each burst of new methods, then a background thread), not by requests: in the durable row
#                    after WARMUP=0.2's 4,000 requests EioSharp.Kv's JIT thread took 23.5 us/request of the next 20,000
#                    and 6 of the 20,000 after (1,492 and 342 methods compiled), and at load 18-20 it was still compiling
#                    (4-6 us/request) 40,000 requests in (docs/BENCHMARKS.md, session 23, h147). redis-server has no JIT:
#                    the extra passes change nothing for it. Suggested for the durable row: WARMUP_SECONDS=10.
#   WARMUP_MIN_PASSES=1  and repeat it at least this many times (every server, alternating), whatever WARMUP_SECONDS says.
#                    The durable row's 4,000-request passes run at redis-server's fsync rate, and a cold Garnet's or a cold
#                    Kv's first pass takes seconds: in the quiet table of session 37 Kv got about one pass (~140 hinted rounds
#                    outside its measured runs) in its 10 s, and its first measured run then paid the JIT's tier-up of ~730 methods (the `.NET
#                    Tiered Compilation` thread 21 us/request; docs/BENCHMARKS.md, session 37, h207). A count rather
#                    than a time is what the tiering needs: 30 calls of each method after a 100 ms call-counting delay.
#   DURABLE_WARMUP_MIN_PASSES=5  the default of WARMUP_MIN_PASSES for the durable row (fsync always) only, where one
#                    pass is what 10 s gave (above); with 5 Kv's first run was not its outlier (11.5 vs 51.5 us CPU per
#                    request, session 37 h207). The other rows get 5+ passes from WARMUP_SECONDS=10 anyway. 1: the old protocol.
#   C1_WARMUP_SECONDS=10  the same for the one-client workload (c1) when WARMUP_SECONDS is not set: its warm-up pass is
#                    8,000 requests, ~0.3-0.5 s at one client, and the JIT's tiering works by time: with one pass the
#                    `.NET Tiered Compilation Worker` took 2.81 / 1.10 / 0.44 us per SET and 4.63 / 1.77 / 0.38 per GET
#                    of the three measured runs (the main thread ran 14.3-17.0 us per SET on not yet optimized code),
#                    with 10 s of passes 0.02-0.38 and 0.02-0.09 (main thread 13.0-14.0): docs/BENCHMARKS.md, session 27,
#                    h165. C1_WARMUP_SECONDS=0 gives the old protocol.
#   C1_CONN_WARMUP=10  before the one-client workload's timed warm-up, this many short passes (50 requests) of each test
#                    per server (2 connections each: 40 per server), so that code run once per connection (accept, the
#                    session's set-up and end; ~500 methods, tier 1 after 30 calls) is compiled before the measured runs.
#                    The row's own passes open 2 connections each, and without these the 30th connection and its JIT
#                    burst fell in or next to the measured runs (a Kv's JIT thread 1.2-1.9 us per request summed over its
#                    six runs; with them 0.08-0.09: docs/BENCHMARKS.md, session 36, h203). 0 gives the old protocol.
#   KV_BIN=path      run that native EioSharp.Kv executable (NativeAOT: scripts/publish-kv-aot.sh) instead of the JIT
#                    build; KV_BIN=aot publishes it first
#
# Garnet: garnet-server 2.2.8 (Microsoft's C# server) installed as a dotnet tool into bench/.tools (gitignored).
# (durable run: --device-type RandomAccess, since its native device needs libaio.so.1, absent here)
#
# Workloads (the same redis-benchmark command lines against every server, -r 100000 random keys, 16-byte values
# unless said otherwise; each test (SET, GET) is a separate redis-benchmark run so its server CPU can be read):
#   c50: 50 clients P1; c50-P16: 50 clients -P 16; c1: one client; durable-c50: 50 clients SET with fsync per write
#   (redis --appendonly yes --appendfsync always; Garnet --aof --aof-commit-wait; EioSharp.Kv --appendfsync always);
#   1k-P16: 1 KB values, 50 clients -P 16; c1000: 1000 clients P1.
# Non-durable runs: redis-server --save '' --appendonly no; Garnet defaults (no AOF); EioSharp.Kv with its defaults
# (appendonly yes, appendfsync everysec: it keeps an AOF, so it does more work than the others there).
# CPU/req: the server process's utime+stime+cutime+cstime (/proc/PID/stat: with the AOF-rewrite children redis-server
# forks and waits for) over the run divided by the requests, in microseconds:
# steadier than throughput on a shared machine.
# Memory: 1,000,000 SET key:<n> <16-byte value> loaded with redis-cli --pipe into a fresh server; VmRSS after 2 s idle.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
REPEATS="${REPEATS:-3}"
N_SCALE="${N_SCALE:-1}"
WARMUP="${WARMUP:-0.2}"
SERVERS="${SERVERS:-redis garnet kv}"
KV_DLL="${KV_DLL:-$ROOT/apps/EioSharp.Kv/bin/Release/net10.0/EioSharp.Kv.dll}"
KV_BASE_DLL="${KV_BASE_DLL:-}" # server "kvbase": another build of EioSharp.Kv (e.g. before a change), same arguments
KV_BASE_BIN="${KV_BASE_BIN:-}" # or another native (NativeAOT) executable as "kvbase" (takes precedence over KV_BASE_DLL)
TOOLS="$ROOT/bench/.tools"
GARNET="$TOOLS/garnet-server"
GARNET_VERSION=2.2.8
# WORK, PIDS, CLK_TCK, the cleanup trap, free_port, wait_ping
source "$ROOT/bench/lib/servers.sh" kv-vs-redis
# thread_snap, thread_diff (PRINT_THREADS)
source "$ROOT/bench/lib/thread-cpu.sh"

for tool in redis-server redis-benchmark redis-cli dotnet python3; do
  command -v "$tool" >/dev/null || { echo "missing $tool (scripts/setup.sh installs redis-tools redis-server)" >&2; exit 1; }
done

KV_BIN="${KV_BIN:-}"
if [ "$KV_BIN" = aot ]; then
  KV_BIN="$(bash "$ROOT/scripts/publish-kv-aot.sh" | tail -1)"
elif [ -z "$KV_BIN" ] && [ -z "${NO_BUILD:-}" ]; then
  dotnet build "$ROOT/apps/EioSharp.Kv" -c Release -v q -nologo >/dev/null
fi
if [[ " $SERVERS " == *" garnet "* ]] && { [ ! -x "$GARNET" ] || ! "$GARNET" --version 2>/dev/null | grep -q "$GARNET_VERSION"; }; then
  dotnet tool install garnet-server --version "$GARNET_VERSION" --tool-path "$TOOLS" >/dev/null
fi
KV_CMD=(dotnet "$KV_DLL"); [ -n "$KV_BIN" ] && KV_CMD=("$KV_BIN")

# start <server: redis|garnet|kv> <dir> <durable: no|always>  -> sets PORT, PID
start() {
  local dir="$WORK/$2"; mkdir -p "$dir"
  PORT=$(free_port)
  case "$1" in
    redis)
      if [ "$3" = always ]; then
        redis-server --port "$PORT" --bind 127.0.0.1 --dir "$dir" --save '' --appendonly yes --appendfsync always \
          --daemonize no --logfile "$dir/log" --maxclients 10000 &
      else
        # shellcheck disable=SC2086
        redis-server --port "$PORT" --bind 127.0.0.1 --dir "$dir" --save '' --appendonly no \
          --daemonize no --logfile "$dir/log" --maxclients 10000 ${REDIS_ARGS:-} &
      fi ;;
    garnet)
      local extra=()
      [ "$3" = always ] && extra=(--aof --aof-commit-wait --checkpointdir "$dir" --device-type RandomAccess)
      # shellcheck disable=SC2086
      "$GARNET" --port "$PORT" --bind 127.0.0.1 "${extra[@]}" ${GARNET_ARGS:-} >"$dir/log" 2>&1 & ;;
    kv|kvbase|kv-*)
      local cmd=("${KV_CMD[@]}"); [ "$1" = kvbase ] && { cmd=(dotnet "$KV_BASE_DLL"); [ -n "$KV_BASE_BIN" ] && cmd=("$KV_BASE_BIN"); }
      local extra=()
      [[ "$1" == kv-* ]] && extra+=(--backend "${1#kv-}")
      [ -n "${KV_DOMAINS:-}" ] && extra+=(--domains "$KV_DOMAINS")
      [ "$3" = always ] && extra+=(--appendfsync always)
      local envs=${KV_ENV:-}; [ "$1" = kvbase ] && envs=${KV_BASE_ENV:-}
      # shellcheck disable=SC2086
      local more=${KV_ARGS:-}; [ "$1" = kvbase ] && more="$more ${KV_BASE_ARGS:-}"
      # shellcheck disable=SC2086
      env $envs "${cmd[@]}" --port "$PORT" --bind 127.0.0.1 --dir "$dir/data" --maxclients 10000 "${extra[@]}" $more >"$dir/log" 2>&1 & ;;
  esac
  PID=$!; PIDS+=("$PID"); wait_ping "$PORT"
  if [[ "$1" == kv-* ]] && ! grep -q "backend ${1#kv-}" "$dir/log"; then
    echo "$1: the server did not run on the ${1#kv-} backend: $(grep -m1 -o 'backend [a-z_]*' "$dir/log")" >&2
    exit 1
  fi
}

stop() { # pid
  kill "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}

# utime + stime + cutime + cstime: the children a server waited for count too (redis-server rewrites its AOF in a forked
# child, EioSharp.Kv on a thread of its own process; neither starts other children here).
cpu_ticks() { awk '{print $14 + $15 + $16 + $17}' "/proc/$1/stat"; }

# others_ticks <pid>  -> the CPU ticks (as cpu_ticks) of this workload's other servers, summed
others_ticks() {
  local s t=0
  for s in "${!SPID[@]}"; do [ "${SPID[$s]}" != "$1" ] && t=$((t + $(cpu_ticks "${SPID[$s]}"))); done
  echo "$t"
}
# machine_ticks  -> "busy total" jiffies summed over the CPUs (/proc/stat: busy = all but idle and iowait)
machine_ticks() { awk '/^cpu / {t = 0; for (i = 2; i <= NF; i++) t += $i; print t - $5 - $6, t; exit}' /proc/stat; }

# bench <port> <pid> <n> <test> <extra redis-benchmark args...>  -> prints "rps cpu_us_per_request"
# (and writes "client_us others_us outside_cores" for the run to $WORK/bench.side: the client's user+system CPU per
# request (/usr/bin/time), the CPU per request this workload's other servers took meanwhile (an idle server that is
# still busy after its own run), and the rest of the machine's busy time over the run in cores: what else ran; session
# 41, h223, §220)
bench() {
  local port=$1 pid=$2 n=$3 test=$4; shift 4
  local before after rps o0 o1 m0 m1
  o0=$(others_ticks "$pid"); m0=$(machine_ticks)
  before=$(cpu_ticks "$pid")
  rps=$(/usr/bin/time -f "%U %S" -o "$WORK/bench.time" redis-benchmark -h 127.0.0.1 -p "$port" -n "$n" -r 100000 \
    -t "$test" --csv "$@" 2>/dev/null | awk -F'","' 'NR > 1 { gsub(/"/, "", $2); print $2; exit }')
  after=$(cpu_ticks "$pid")
  o1=$(others_ticks "$pid"); m1=$(machine_ticks)
  python3 -c "
u, s = [float(x) for x in open('$WORK/bench.time').read().split()[-2:]]
m0, m1 = '$m0'.split(), '$m1'.split()
busy, total = int(m1[0]) - int(m0[0]), int(m1[1]) - int(m0[1])
ncpu, tck, n = $(nproc), $CLK_TCK, $n
server, others, client = $after - $before, $o1 - $o0, (u + s) * tck
outside = (busy - server - others - client) / max(1, total / ncpu)  # in cores
print('%.3f %.3f %.2f' % (client * 1e6 / tck / n, others * 1e6 / tck / n, outside))" >"$WORK/bench.side"
  python3 -c "print('${rps:-0}', ($after - $before) * 1e6 / $CLK_TCK / $n)"
}

# aof_counts <port> <server>  -> a Kv server's INFO aof_fsyncs and, under appendfsync always, its aof_always_* counts
# (hinted rounds, overlapped rounds, guard probes and kept switches; since session 39, h215, §212, the rounds' own time,
# their fdatasyncs' and the hinted waits', in µs), for PRINT_RUNS' lines (session 36, h201); "-1" for
# the others and when INFO does not say
aof_counts() {
  if [[ $2 != kv* ]]; then echo -1; return; fi
  { redis-cli -p "$1" info persistence 2>/dev/null || true; } | tr -d '\r' | awk -F: '
    /^aof_fsyncs:/ {f=$2+0; ok=1} /^aof_always_hinted_rounds:/ {h=$2+0} /^aof_always_overlap_rounds:/ {o=$2+0}
    /^aof_always_guard_probes:/ {p=$2+0} /^aof_always_guard_switches:/ {w=$2+0}
    /^aof_always_timed_rounds:/ {tr=$2+0} /^aof_always_round_us:/ {ru=$2+0} /^aof_always_fsync_us:/ {fu=$2+0}
    /^aof_always_wait_us:/ {wu=$2+0} /^aof_always_timed_waits:/ {tw=$2+0}
    END {if (!ok) print -1; else print f+0, h+0, o+0, p+0, w+0, tr+0, ru+0, fu+0, wu+0, tw+0}'
}

scale() { python3 -c "print(max(1000, int($1 * $N_SCALE)))"; }

# name | n | tests | durable | redis-benchmark args
ALL_WORKLOADS=(
  "c50|$(scale 200000)|set,get|no|-c 50 -d 16"
  "c50-P16|$(scale 1000000)|set,get|no|-c 50 -P 16 -d 16"
  "c1|$(scale 40000)|set,get|no|-c 1 -d 16"
  "durable-c50|$(scale 20000)|set|always|-c 50 -d 16"
  "1k-P16|$(scale 400000)|set,get|no|-c 50 -P 16 -d 1024"
  "c1000|$(scale 200000)|set,get|no|-c 1000 -d 16"
)

ulimit -n 20000 2>/dev/null || true
RESULTS="$WORK/results"; : >"$RESULTS"
start_time=$(date +%s)
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
for spec in "${ALL_WORKLOADS[@]}"; do
  IFS='|' read -r name n tests durable args <<<"$spec"
  if [ -n "${WORKLOADS_ONLY:-}" ] && [[ " $WORKLOADS_ONLY " != *" $name "* ]]; then continue; fi
  # Fresh servers per workload; runs alternate between them so drift on the shared machine hits all alike.
  declare -A SPORT=() SPID=()
  for s in $SERVERS; do start "$s" "$s-$name" "$durable"; SPORT[$s]=$PORT; SPID[$s]=$PID; done
  if python3 -c "import sys; sys.exit(0 if float('$WARMUP') > 0 else 1)"; then
    warm_n=$(python3 -c "print(max(1000, int($n * $WARMUP)))")
    if [ "$name" = c1 ] && [ "${C1_CONN_WARMUP:-10}" -gt 0 ]; then
      # Code run once per connection (accept, the session's set-up and end) reaches tier 1 after 30 connections; the
      # row's passes open 2 each (redis-benchmark's CONFIG GET and its client), so without these its tier-up fell into
      # the measured runs (docs/BENCHMARKS.md session 36, h203). Before the timed passes, which give the JIT time.
      for _ in $(seq 1 "${C1_CONN_WARMUP:-10}"); do
        for t in ${tests//,/ }; do
          for s in $SERVERS; do
            # shellcheck disable=SC2086
            redis-benchmark -h 127.0.0.1 -p "${SPORT[$s]}" -n 50 -r 100000 -t "$t" $args >/dev/null 2>&1 || true # not recorded
          done
        done
      done
    fi
    warm_start=$(date +%s); warm_passes=0
    while true; do
      warm_passes=$((warm_passes + 1))
      for t in ${tests//,/ }; do
        for s in $SERVERS; do
          # shellcheck disable=SC2086
          bench "${SPORT[$s]}" "${SPID[$s]}" "$warm_n" "$t" $args >/dev/null # not recorded
        done
      done
      warm_seconds=${WARMUP_SECONDS:-0}
      min_passes=${WARMUP_MIN_PASSES:-1}
      [ "$durable" = always ] && [ -z "${WARMUP_MIN_PASSES:-}" ] && min_passes=${DURABLE_WARMUP_MIN_PASSES:-5}
      [ "$name" = c1 ] && [ -z "${WARMUP_SECONDS:-}" ] && warm_seconds=${C1_WARMUP_SECONDS:-10}
      [ $(( $(date +%s) - warm_start )) -ge "$warm_seconds" ] && [ "$warm_passes" -ge "$min_passes" ] && break
    done
  fi
  for rep in $(seq 1 "$REPEATS"); do
    order=$SERVERS # ORDER=alternate: every second run in the reverse order (a server's place in the round matters, §220)
    [ "${ORDER:-}" = alternate ] && [ $((rep % 2)) = 0 ] && order=$(echo "$SERVERS" | tr ' ' '\n' | tac | tr '\n' ' ')
    for t in ${tests//,/ }; do
      for s in $order; do
        a0=$(aof_counts "${SPORT[$s]}" "$s")
        [ -n "${PRINT_THREADS:-}" ] && [[ $s == kv* ]] && thread_snap "${SPID[$s]}" "$s" "${SPORT[$s]}" >"$WORK/threads.before"
        # shellcheck disable=SC2086
        read -r rps cpu < <(bench "${SPORT[$s]}" "${SPID[$s]}" "$n" "$t" $args)
        [ -n "${PRINT_THREADS:-}" ] && [[ $s == kv* ]] && thread_snap "${SPID[$s]}" "$s" "${SPORT[$s]}" >"$WORK/threads.after"
        a1=$(aof_counts "${SPORT[$s]}" "$s")
        echo "$name $t $s $rps $cpu" >>"$RESULTS"
        fs=""; [ "$a0" != -1 ] && [ "$a1" != -1 ] && fs=$(python3 -c "
a, b, n = [int(x) for x in '$a0'.split()], [int(x) for x in '$a1'.split()], $n
d = [y - x for x, y in zip(a, b)]
print(', %.4f fsyncs/req' % (d[0] / n) + (', %d of %d hinted rounds overlapped, %d probes (%d kept)' % (d[2], d[1], d[3], d[4]) if d[1] else '')
      + (', per hinted round %.0f us own (fdatasync %.0f), wait %.0f us' % (d[6] / d[5], d[7] / d[5], d[8] / d[9]) if d[5] > 0 and d[9] > 0 else ''))")
        side=$(awk '{printf ", client %s us/req, other servers %s us/req, outside %s cores", $1, $2, $3}' "$WORK/bench.side")
        [ -n "${PRINT_RUNS:-}" ] && echo "    $name $t $s $rps ops/s $cpu us/req$fs$side (load $(cut -d' ' -f1 /proc/loadavg))" >&2
        if [ -n "${PRINT_RUNS:-}" ] && [ -n "${PRINT_THREADS:-}" ] && [[ $s == kv* ]]; then
          thread_diff "$WORK/threads.before" "$WORK/threads.after" "$n" >&2
        fi
      done
    done
    echo "  $name run $rep/$REPEATS done ($(( $(date +%s) - start_time )) s, load $(cut -d' ' -f1 /proc/loadavg))" >&2
  done
  for s in $SERVERS; do stop "${SPID[$s]}"; done
  # A Kv server's summary at exit (its `h149:` line: the always path's hinted rounds, the overlap and its guard, h195).
  # (|| true: under set -e -o pipefail a server without that line, or a last server that is not Kv, ended the script here)
  for s in $SERVERS; do { [[ $s == kv* ]] && grep -h 'h149:' "$WORK/$s-$name/log" 2>/dev/null | sed "s/^/  $s: /" >&2; } || true; done
done

# 1M keys: RSS after loading (each server fresh, no persistence where it has a switch).
MEM="$WORK/memory"; : >"$MEM"
if [ -z "${NO_MEMORY:-}" ]; then
  python3 - >"$WORK/load.resp" <<'PY'
import sys
out = sys.stdout.buffer
for i in range(1000000):
    k = b"key:%d" % i; v = b"v%015d" % i
    out.write(b"*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$16\r\n%s\r\n" % (len(k), k, v))
PY
  for s in $SERVERS; do
    case $s in
      redis) start redis "mem-redis" no ;;
      garnet) start garnet "mem-garnet" no ;;
      kv|kvbase|kv-*) KV_ARGS="${KV_ARGS:-} --appendonly no" start "$s" "mem-$s" no ;;
    esac
    empty=$(awk '/^VmRSS/ {print $2}' "/proc/$PID/status")
    redis-cli -p "$PORT" --pipe <"$WORK/load.resp" >/dev/null
    sleep 2
    [[ "$s" == kv* ]] && redis-cli -p "$PORT" DEBUG GC >/dev/null 2>&1 && sleep 1
    echo "$s $empty $(awk '/^VmRSS/ {print $2}' "/proc/$PID/status") $(redis-cli -p "$PORT" dbsize)" >>"$MEM"
    stop "$PID"
  done
fi

echo
echo "Machine: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), $(redis-server --version | awk '{print $1, $2, $3}'), garnet-server $GARNET_VERSION, dotnet $(dotnet --version)"
echo "Arguments: REDIS_ARGS='${REDIS_ARGS:-}' KV_ARGS='${KV_ARGS:-}' GARNET_ARGS='${GARNET_ARGS:-}'"
echo "Load average (1/5/15 min) before: $load_before; after: $(cut -d' ' -f1-3 /proc/loadavg) (other work on the machine skews the numbers)."
echo "Warm-up: unmeasured passes of each test per server and workload with WARMUP=$WARMUP of the requests, repeated for WARMUP_SECONDS=${WARMUP_SECONDS:-0} s (at least ${WARMUP_MIN_PASSES:-1} pass(es), the durable row ${WARMUP_MIN_PASSES:-${DURABLE_WARMUP_MIN_PASSES:-5}}; the one-client workload C1_WARMUP_SECONDS=${C1_WARMUP_SECONDS:-10} s unless WARMUP_SECONDS is set)."
echo "Median of $REPEATS runs; ops/s from redis-benchmark -r 100000 --csv; CPU = server utime+stime+cutime+cstime per request (us)."
echo
python3 - "$RESULTS" "$MEM" "$SERVERS" <<'EOF'
import sys, statistics, collections
runs = collections.defaultdict(list); cpu = collections.defaultdict(list); order = []
servers = sys.argv[3].split()
for line in open(sys.argv[1]):
    name, test, server, rps, c = line.split()
    if (name, test) not in order: order.append((name, test))
    runs[(name, test, server)].append(float(rps)); cpu[(name, test, server)].append(float(c))
labels = {"c50": "50 clients P1", "c50-P16": "50 clients -P 16", "c1": "1 client", "durable-c50": "50 clients, fsync always",
          "1k-P16": "1 KB values, 50 clients -P 16", "c1000": "1000 clients P1"}
names = {"redis": "redis-server", "garnet": "Garnet", "kv": "EioSharp.Kv", "kvbase": "Kv before",
         "kv-portable": "Kv portable", "kv-epoll": "Kv epoll", "kv-uring": "Kv io_uring"}
backends = [s for s in servers if s.startswith("kv-")]
hdr = "| workload | cmd | " + " | ".join(f"{names[s]} ops/s" for s in servers) + " | " + " | ".join(f"{names[s]} CPU us/req" for s in servers)
if "kv" in servers and "redis" in servers: hdr += " | Kv/redis ops | Kv/redis CPU"
if "kv" in servers and "garnet" in servers: hdr += " | Kv/Garnet ops"
if "kv" in servers and "kvbase" in servers: hdr += " | Kv/before CPU"
if "redis" in servers: hdr += "".join(f" | {names[b]}/redis CPU" for b in backends)
if "kv-uring" in servers and "kv-epoll" in servers: hdr += " | io_uring/epoll CPU"
hdr += " |"; print(hdr); print("|" + "---|" * (hdr.count("|") - 1))
for name, test in order:
    r = {s: statistics.median(runs[(name, test, s)]) for s in servers}
    c = {s: statistics.median(cpu[(name, test, s)]) for s in servers}
    row = f"| {labels.get(name, name)} | {test} | " + " | ".join(f"{r[s]:,.0f}" for s in servers) + " | " + " | ".join(f"{c[s]:.2f}" for s in servers)
    if "kv" in servers and "redis" in servers: row += f" | {r['kv']/r['redis']:.2f}x | {c['kv']/c['redis']:.2f}x"
    if "kv" in servers and "garnet" in servers: row += f" | {r['kv']/r['garnet']:.2f}x"
    if "kv" in servers and "kvbase" in servers: row += f" | {c['kv']/c['kvbase']:.2f}x"
    if "redis" in servers: row += "".join(f" | {c[b]/c['redis']:.2f}x" for b in backends)
    if "kv-uring" in servers and "kv-epoll" in servers: row += f" | {c['kv-uring']/c['kv-epoll']:.2f}x"
    print(row + " |")
mem = [l.split() for l in open(sys.argv[2])]
if mem:
    print(); print("| 1M keys (16-byte values) | empty RSS MB | RSS MB | keys |"); print("|---|---:|---:|---:|")
    for s, e, f, k in mem: print(f"| {names[s]} | {int(e)/1024:.0f} | {int(f)/1024:.0f} | {k} |")
EOF
echo
[ -n "${RESULTS_COPY:-}" ] && cp "$RESULTS" "$RESULTS_COPY" # every run's "workload test server ops/s cpu" line
echo "Total time: $(( $(date +%s) - start_time )) s"
