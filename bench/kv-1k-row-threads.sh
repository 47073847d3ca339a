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
# Session 36 (h202): PEER=redis runs a redis-server (`--appendonly no`) beside the target and gives it the same passes
# and runs right after the target's, as kv-vs-redis.sh alternates its servers (the target idles while the peer runs);
# MIN_PASSES=N makes the warm-up at least N passes (the row's 10 s give a quiet machine's Kv about 5-6 passes of 80k
# SETs; a loaded machine's fewer, so the first run would still be filling the keyspace);
# each measured run of a Kv target also prints a "state" line: the GC's collections by generation in the run and its
# heap at the last collection (MEMORY MALLOC-STATS), the copy-on-write arrays allocated in the run, the keys, the AOF's
# size and base size at the run's start, and each rewrite that started or finished in the run with its time from the
# run's start (the server's log), plus the whole machine's busy CPU per request (/proc/stat) beside the process's.
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
PEER_PID=
if [ "${PEER:-}" = redis ]; then
  PEER_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
  redis-server --port "$PEER_PORT" --bind 127.0.0.1 --dir "$D" --save '' --appendonly no --daemonize no \
    --logfile "$D/peer.log" --maxclients 10000 &
  PEER_PID=$!
fi
t_start=$(date +%s.%N)
trap 'kill $PID 2>/dev/null; wait $PID 2>/dev/null; [ -n "$PEER_PID" ] && { kill $PEER_PID 2>/dev/null; wait $PEER_PID 2>/dev/null; }; if [ "${REWRITE_LOG:-0}" = 1 ]; then grep -iE "rewrit" "$D/log" | sed "s/^/log: /"; fi; rm -rf "$D"' EXIT
for _ in $(seq 1 1200); do [ "$(redis-cli -p "$PORT" ping 2>/dev/null)" = PONG ] && break; sleep 0.05; done
startup="start-up: first PONG after $(python3 -c "import time; print(round(time.time() - $t_start, 2))") s, CPU $(awk '{print ($14 + $15) * 10}' "/proc/$PID/stat") ms"
rb() { redis-benchmark -h 127.0.0.1 -p "${3:-$PORT}" -n "$2" -r 100000 -c 50 -P 16 -d 1024 -t "$1" --csv 2>/dev/null |
  awk -F'","' 'NR>1 {gsub(/"/,"",$2); print $2; exit}'; }
peer() { [ -n "$PEER_PID" ] && rb "$1" "$2" "$PEER_PORT" >/dev/null; return 0; } # the peer's pass or run after the target's
if [ -n "$PEER_PID" ]; then
  for _ in $(seq 1 200); do [ "$(redis-cli -p "$PEER_PORT" ping 2>/dev/null)" = PONG ] && break; sleep 0.05; done
fi
# state: gen0 gen1 gen2 heap cow_allocated keys aof_current aof_base (Kv only; redis: zeros)
state() {
  local m i
  m=$(redis-cli -p "$PORT" memory malloc-stats 2>/dev/null | tr -d '\r')
  i=$(redis-cli -p "$PORT" info persistence 2>/dev/null | tr -d '\r')
  echo "$(echo "$m" | awk '/^Generation [012]:/ {printf "%s ", $NF}') $(echo "$m" | awk '/^Heap size at last GC:/ {gsub(",","",$6); print $6+0; f=1} END {if (!f) print 0}') $(echo "$m" | awk '/^Copy-on-write string arrays:/ {gsub(",","",$5); print $5+0; f=1} END {if (!f) print 0}') $(redis-cli -p "$PORT" dbsize 2>/dev/null | tr -d '\r') $(echo "$i" | awk -F: '/^aof_current_size:/ {print $2+0; f=1} END {if (!f) print 0}') $(echo "$i" | awk -F: '/^aof_base_size:/ {print $2+0; f=1} END {if (!f) print 0}')"
}
busy() { awk '/^cpu / {print $2 + $3 + $4 + $7 + $8}' /proc/stat; }
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
  for t in $TESTS; do rb "$t" "$WARM" >/dev/null; peer "$t" "$WARM"; done
  passes=$((passes + 1))
  [ $(( $(date +%s) - w0 )) -ge "$WARMUP_SECONDS" ] && [ "$passes" -ge "${MIN_PASSES:-1}" ] && break
done
echo "$startup"
echo "warm-up: $passes passes in $(( $(date +%s) - w0 )) s, rewrites $(rewrites), methods jitted $(jitcount)"
for run in $(seq 1 "$RUNS"); do
  for t in $TESTS; do
    s0=$(state); snap >"$D/before"; r0=$(rewrites); j0=$(jitcount); b0=$(busy); ms0=$(date +%s%3N)
    rps=$(rb "$t" "$N")
    ms1=$(date +%s%3N); b1=$(busy); snap >"$D/after"; r1=$(rewrites); j1=$(jitcount); s1=$(state)
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
    if [ "$target" != redis ]; then
      python3 - "$s0" "$s1" "$ms0" "$ms1" "$D/log" "$((b1 - b0))" "$N" <<'PY'
import sys, re, datetime, os
a = sys.argv[1].split(); b = sys.argv[2].split(); t0, t1 = int(sys.argv[3]), int(sys.argv[4])
d = [int(y) - int(x) for x, y in zip(a, b)]
ev = []
for l in open(sys.argv[5], errors='replace'):
    m = re.match(r'\d+:M (\d\d \w{3} \d{4} \d\d:\d\d:\d\d\.\d{3}) . (.*)', l)
    if not m: continue
    text = m.group(2)
    kind = 'start' if 'rewriting started' in text else 'end' if 'temporary AOF base file' in text else None
    if not kind: continue
    t = int(datetime.datetime.strptime(m.group(1), '%d %b %Y %H:%M:%S.%f').timestamp() * 1000)
    snap = re.search(r'snapshot taken in ([0-9.]+ ms(?:, CPU [0-9.]+ ms, \d+ collections)?)', text)
    if t0 - 1000 <= t <= t1: ev.append(f"{kind}@{(t - t0) / 1000:+.2f}s" + (f"(snapshot {snap.group(1)})" if snap else ""))
busy = int(sys.argv[6]) * 1e6 / os.sysconf('SC_CLK_TCK') / int(sys.argv[7])
print(f"    state: gc0/1/2 +{d[0]}/+{d[1]}/+{d[2]} heap {int(b[3]) / 1e6:.0f} MB, cow arrays +{d[4]}, keys {a[5]}, aof {int(a[6]) / 1e6:.0f} MB (base {int(a[7]) / 1e6:.1f} MB) at start, run {(t1 - t0) / 1000:.2f} s, machine busy {busy:.2f} us/req; rewrites: {' '.join(ev) or '-'}")
PY
    fi
    peer "$t" "$N"
    if [ -f "$D/jit.run" ] && [ -s "$D/jit.run" ] && [ -n "${JITKEEP:-}" ]; then cp "$D/jit.run" "$JITKEEP.$run.$t"; fi
  done
done
