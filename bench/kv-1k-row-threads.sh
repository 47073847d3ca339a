#!/usr/bin/env bash
# The 1 KB -P16 row of bench/kv-vs-redis.sh (50 clients, -P 16, -d 1024, -r 100000) on one fresh server, run as that
# script runs it: warm-up passes of SET and GET (WARM requests each) repeated until WARMUP_SECONDS have passed, then
# RUNS rounds of a measured SET run and a measured GET run of N requests. Per measured run: ops/s, the process's CPU per
# request (utime+stime+cutime+cstime, as kv-vs-redis.sh counts it), the CPU per request of each thread kind (by name,
# from /proc/PID/task/*/stat; threads that ended in the run and children show as "(ended/children)"), the AOF rewrites
# done in the run (INFO persistence aof_rewrites) and, for Kv with JITLOG=1, the methods the JIT compiled in the run by
# tier (DOTNET_JitStdOutFile + DOTNET_JitDisasmSummary). Answers: how many rewrites each server makes in the row, what
# they cost, and whether the JIT thread still compiles after the warm-up (issue 14, session 24, h150).
#
#   bash bench/kv-1k-row-threads.sh TARGET [server arguments]
#     TARGET: a directory or path of EioSharp.Kv.dll, or "redis" (redis-server --save '' --appendonly no, then the
#     arguments: e.g. `redis --appendonly yes --appendfsync everysec` for the same persistence as Kv's defaults)
#
# Environment: RUNS (3), N (400000), WARM (80000: kv-vs-redis.sh's WARMUP=0.2), WARMUP_SECONDS (10), JITLOG (0),
# KV_ENV (e.g. "DOTNET_TieredCompilation=0"), TESTS ("set get"), REWRITE_LOG=1 (print the server log's rewrite lines with
# their times at the end: how long each rewrite took, h171).
set -u
target=$1; shift
RUNS=${RUNS:-3}; N=${N:-400000}; WARM=${WARM:-80000}; WARMUP_SECONDS=${WARMUP_SECONDS:-10}; TESTS=${TESTS:-set get}
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
D=$(mktemp -d /tmp/kv-1k-row-threads.XXXXXX)
if [ "$target" = redis ]; then
  redis-server --port "$PORT" --bind 127.0.0.1 --dir "$D" --save '' --appendonly no --daemonize no --logfile "$D/log" \
    --maxclients 10000 "$@" &
else
  dll=$target; [ -d "$dll" ] && dll="$dll/EioSharp.Kv.dll"
  jit=()
  [ "${JITLOG:-0}" = 1 ] && jit=(DOTNET_JitStdOutFile="$D/jit.txt" DOTNET_JitDisasmSummary=1)
  # shellcheck disable=SC2086
  env "${jit[@]}" ${KV_ENV:-} dotnet "$dll" --port "$PORT" --bind 127.0.0.1 --dir "$D/data" --maxclients 10000 "$@" \
    >"$D/log" 2>&1 &
fi
PID=$!
t_start=$(date +%s.%N)
trap 'kill $PID 2>/dev/null; wait $PID 2>/dev/null; if [ "${REWRITE_LOG:-0}" = 1 ]; then grep -iE "rewrit" "$D/log" | sed "s/^/log: /"; fi; rm -rf "$D"' EXIT
for _ in $(seq 1 1200); do [ "$(redis-cli -p "$PORT" ping 2>/dev/null)" = PONG ] && break; sleep 0.05; done
startup="start-up: first PONG after $(python3 -c "import time; print(round(time.time() - $t_start, 2))") s, CPU $(awk '{print ($14 + $15) * 10}' "/proc/$PID/stat") ms"
rb() { redis-benchmark -h 127.0.0.1 -p "$PORT" -n "$2" -r 100000 -c 50 -P 16 -d 1024 -t "$1" --csv 2>/dev/null |
  awk -F'","' 'NR>1 {gsub(/"/,"",$2); print $2; exit}'; }
snap() { # tid comm utime stime
  local task c st
  for task in /proc/"$PID"/task/*; do
    c=$(tr ' ' _ <"$task/comm" 2>/dev/null) || continue
    st=$(sed 's/.*) //' "$task/stat" 2>/dev/null | awk '{print $12, $13}')
    [ -n "$st" ] && echo "$(basename "$task") ${c:-?} $st"
  done
  echo "process - $(sed 's/.*) //' "/proc/$PID/stat" | awk '{print $12 + $14, $13 + $15}')"
}
rewrites() { redis-cli -p "$PORT" info persistence 2>/dev/null | awk -F: '/^aof_rewrites:/ {print $2+0; f=1} END {if (!f) print 0}' | tr -d '\r'; }
jitcount() { [ -f "$D/jit.txt" ] && wc -l <"$D/jit.txt" || echo 0; }
echo "target=$target args='$*' runs=$RUNS n=$N warm=$WARM warmup_seconds=$WARMUP_SECONDS KV_ENV='${KV_ENV:-}' load=$(cut -d' ' -f1 /proc/loadavg)"
w0=$(date +%s); passes=0
while true; do
  for t in $TESTS; do rb "$t" "$WARM" >/dev/null; done
  passes=$((passes + 1))
  [ $(( $(date +%s) - w0 )) -ge "$WARMUP_SECONDS" ] && break
done
echo "$startup"
echo "warm-up: $passes passes in $(( $(date +%s) - w0 )) s, rewrites $(rewrites), methods jitted $(jitcount)"
for run in $(seq 1 "$RUNS"); do
  for t in $TESTS; do
    snap >"$D/before"; r0=$(rewrites); j0=$(jitcount)
    rps=$(rb "$t" "$N")
    snap >"$D/after"; r1=$(rewrites); j1=$(jitcount)
    [ -f "$D/jit.txt" ] && sed -n "$((j0 + 1)),${j1}p" "$D/jit.txt" >"$D/jit.run" || : >"$D/jit.run"
    python3 - "$D/before" "$D/after" "$N" "$run $t" "$rps" "$((r1 - r0))" "$D/jit.run" "$(cut -d' ' -f1 /proc/loadavg)" <<'PY'
import sys, os, re, collections
tck = os.sysconf('SC_CLK_TCK'); n = int(sys.argv[3])
def read(p):
    d = {}
    for l in open(p):
        tid, comm, u, s = l.split()
        d[tid] = (comm, int(u), int(s))
    return d
b, a = read(sys.argv[1]), read(sys.argv[2])
proc = (a['process'][1] + a['process'][2]) - (b['process'][1] + b['process'][2])
agg = collections.defaultdict(lambda: [0, 0])
for tid, (comm, u, s) in a.items():
    if tid == 'process': continue
    kind = re.sub(r'[-_]?\d+$', '', comm)  # eio_systhread_2 -> eio_systhread
    if tid in b:
        _, u0, s0 = b[tid]; u -= u0; s -= s0
    agg[kind][0] += u; agg[kind][1] += s
live = sum(x[0] + x[1] for x in agg.values())
agg['(ended/children)'][0] += max(0, proc - live)
us = lambda t: t * 1e6 / tck / n
tiers = collections.Counter()
for l in open(sys.argv[7]):
    m = re.search(r'Instrumented Tier[^,\]]*|Tier[^,\]]*|FullOpts|OSR|MinOpts', l)
    tiers[m.group(0).strip() if m else 'other'] += 1
jit = (" jit=" + str(sum(tiers.values())) + " (" + ", ".join(f"{k} {v}" for k, v in tiers.most_common()) + ")") if tiers else ""
print(f"run {sys.argv[4]}: rps={sys.argv[5]} cpu_us/req={us(proc):.2f} rewrites={sys.argv[6]} load={sys.argv[8]}{jit}")
for k, (u, s) in sorted(agg.items(), key=lambda x: -(x[1][0] + x[1][1])):
    if u + s:
        print(f"    {k:20s} user {us(u):6.3f} sys {us(s):6.3f} us/req")
PY
    if [ -f "$D/jit.run" ] && [ -s "$D/jit.run" ] && [ -n "${JITKEEP:-}" ]; then cp "$D/jit.run" "$JITKEEP.$run.$t"; fi
  done
done
