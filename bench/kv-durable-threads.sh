#!/usr/bin/env bash
# The durable row (50 clients SET, appendfsync always) on one fresh server, RUNS consecutive runs of N requests after
# WARM requests: per run, ops/s, the process's CPU per request, the CPU per request of each thread kind (by name, from
# /proc/PID/task/*/stat; threads that ended during the run, e.g. io_uring's iou-wrk workers, show as "(ended)"), the
# voluntary and involuntary context switches per request, fsyncs per request (Kv: INFO aof_fsyncs), and (JITLOG=1, Kv)
# the methods the JIT compiled during the run, by tier (DOTNET_JitStdOutFile + DOTNET_JitDisasmSummary). Shows how
# much of a run's CPU is the server's warm-up (the runtime's tiered compilation) rather than the requests, and which
# thread pays the fsyncs (issue 14, session 23, h147).
#
#   bash bench/kv-durable-threads.sh TARGET      # TARGET: a directory or path of EioSharp.Kv.dll, or "redis"
#
# Environment: RUNS (6), N (20000), WARM (4000: what bench/kv-vs-redis.sh's WARMUP=0.2 gives this row at N_SCALE=1),
# C (50), KV_ARGS, KV_ENV (e.g. "DOTNET_TieredPGO=0"), JITLOG (1: count JIT compilations; Kv only).
set -u
target=$1
RUNS=${RUNS:-6}; N=${N:-20000}; WARM=${WARM:-4000}; C=${C:-50}
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
D=$(mktemp -d /tmp/kv-durable-threads.XXXXXX)
if [ "$target" = redis ]; then
  redis-server --port "$PORT" --bind 127.0.0.1 --dir "$D" --save '' --appendonly yes --appendfsync always \
    --daemonize no --logfile "$D/log" --maxclients 10000 &
else
  dll=$target; [ -d "$dll" ] && dll="$dll/EioSharp.Kv.dll"
  jit=()
  [ "${JITLOG:-0}" = 1 ] && jit=(DOTNET_JitStdOutFile="$D/jit.txt" DOTNET_JitDisasmSummary=1)
  # shellcheck disable=SC2086
  env "${jit[@]}" ${KV_ENV:-} dotnet "$dll" --port "$PORT" --bind 127.0.0.1 --dir "$D/data" --maxclients 10000 \
    --appendfsync always ${KV_ARGS:-} >"$D/log" 2>&1 &
fi
PID=$!
trap 'kill $PID 2>/dev/null; wait $PID 2>/dev/null; rm -rf "$D"' EXIT
for _ in $(seq 1 600); do [ "$(redis-cli -p "$PORT" ping 2>/dev/null)" = PONG ] && break; sleep 0.1; done
rb() { redis-benchmark -p "$PORT" -n "$1" -r 100000 -d 16 -c "$C" -t set --csv 2>/dev/null | awk -F'","' 'NR>1 {gsub(/"/,"",$2); print $2; exit}'; }
snap() { # tid comm utime stime vcs nvcs
  for t in /proc/"$PID"/task/*; do
    c=$(tr ' ' _ <"$t/comm" 2>/dev/null) || continue
    st=$(sed 's/.*) //' "$t/stat" 2>/dev/null | awk '{print $12, $13}')
    cs=$(awk '/^voluntary_ctxt_switches/ {v=$2} /^nonvoluntary_ctxt_switches/ {n=$2} END {print v+0, n+0}' "$t/status" 2>/dev/null)
    [ -n "$st" ] && [ -n "$cs" ] && echo "$(basename "$t") ${c:-?} $st $cs"
  done
  echo "process - $(awk '{print $14, $15}' "/proc/$PID/stat") 0 0"
}
fsyncs() { redis-cli -p "$PORT" info persistence 2>/dev/null | awk -F: '/^aof_fsyncs:/ {print $2+0; f=1} END {if (!f) print -1}' | tr -d '\r'; }
jitcount() { [ -f "$D/jit.txt" ] && wc -l <"$D/jit.txt" || echo 0; }
[ "$WARM" -gt 0 ] && rb "$WARM" >/dev/null
echo "target=$target runs=$RUNS n=$N warm=$WARM clients=$C KV_ENV='${KV_ENV:-}' KV_ARGS='${KV_ARGS:-}' load=$(cut -d' ' -f1 /proc/loadavg)"
for run in $(seq 1 "$RUNS"); do
  sleep 0.2
  snap >"$D/before"; f0=$(fsyncs); j0=$(jitcount)
  rps=$(rb "$N")
  sleep 0.2
  snap >"$D/after"; f1=$(fsyncs); j1=$(jitcount)
  [ -f "$D/jit.txt" ] && sed -n "$((j0 + 1)),${j1}p" "$D/jit.txt" >"$D/jit.run" || : >"$D/jit.run"
  python3 - "$D/before" "$D/after" "$N" "$run" "$rps" "$f0" "$f1" "$D/jit.run" "$(cut -d' ' -f1 /proc/loadavg)" <<'PY'
import sys, os, re, collections
tck = os.sysconf('SC_CLK_TCK'); n = int(sys.argv[3])
def read(p):
    d = {}
    for l in open(p):
        tid, comm, u, s, v, nv = l.split()
        d[tid] = (comm, int(u), int(s), int(v), int(nv))
    return d
b, a = read(sys.argv[1]), read(sys.argv[2])
proc = (a['process'][1] + a['process'][2]) - (b['process'][1] + b['process'][2])
agg = collections.defaultdict(lambda: [0, 0, 0, 0])
for tid, (comm, u, s, v, nv) in a.items():
    if tid == 'process': continue
    kind = re.sub(r'[-_]?\d+$', '', comm)  # iou-wrk-123 -> iou-wrk, eio_systhread_2 -> eio_systhread
    if tid in b:
        _, u0, s0, v0, nv0 = b[tid]; u -= u0; s -= s0; v -= v0; nv -= nv0
    agg[kind][0] += u; agg[kind][1] += s; agg[kind][2] += v; agg[kind][3] += nv
live = sum(x[0] + x[1] for x in agg.values())
# threads alive at the start that ended during the run: their CPU is in the process's total only
agg['(ended)'][0] += max(0, proc - live)
us = lambda t: t * 1e6 / tck / n
f0, f1 = int(sys.argv[6]), int(sys.argv[7])
fs = f"{(f1 - f0) / n:.4f}" if f0 >= 0 else "n/a"
vcs = sum(x[2] for x in agg.values()); nvcs = sum(x[3] for x in agg.values())
tiers = collections.Counter()
for l in open(sys.argv[8]):
    m = re.search(r'Tier[^,\]]*|Instrumented Tier[^,\]]*|FullOpts|OSR|MinOpts', l)
    tiers[m.group(0).strip() if m else 'other'] += 1
jit = (" jit=" + str(sum(tiers.values())) + " (" + ", ".join(f"{k} {v}" for k, v in tiers.most_common()) + ")") if tiers else ""
print(f"run {sys.argv[4]}: rps={sys.argv[5]} cpu_us/req={us(proc):.2f} fsyncs/req={fs} vcs/req={vcs/n:.3f} ivcs/req={nvcs/n:.3f} load={sys.argv[9]}{jit}")
for k, (u, s, v, nv) in sorted(agg.items(), key=lambda x: -(x[1][0] + x[1][1])):
    if u + s or v + nv:
        print(f"    {k:20s} user {us(u):6.2f} sys {us(s):6.2f} us/req  vcs/req {v/n:.3f} ivcs/req {nv/n:.3f}")
PY
done
