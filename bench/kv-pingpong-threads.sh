#!/usr/bin/env bash
# Per-thread CPU (user and system µs per BLPOP/LPUSH round trip, from /proc/PID/task/*/stat) and context switches
# (voluntary = the thread slept, involuntary = it was preempted) of each server over the ping-pong
# (bench/EioSharp.Kv.LoadGen pingpong: one round trip = four requests: A LPUSH ping, BLPOP pong; B BLPOP ping, LPUSH pong).
#   bench/kv-pingpong-threads.sh TARGET ...   # TARGET: a path of EioSharp.Kv.dll, "V=x,W=y@path" (that Kv run with
#                                             # that environment), or "redis"
# All targets start first (appendonly yes, appendfsync everysec, no save points: as bench/kv-features.sh), each is warmed
# with WARM round trips (4000, as kv-features.sh), then WINDOWS windows of ROUNDS round trips run, alternating the
# targets window by window (as kv-features.sh alternates its runs); each window prints its per-thread figures, the end
# a median per target over windows SKIP+1.. (SKIP=0). Environment: WARM, ROUNDS (20000), WINDOWS (6), SKIP, LOADGEN_DLL.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WARM="${WARM:-4000}"; ROUNDS="${ROUNDS:-20000}"; WINDOWS="${WINDOWS:-6}"; SKIP="${SKIP:-0}"
LOADGEN_DLL="${LOADGEN_DLL:-$ROOT/bench/EioSharp.Kv.LoadGen/bin/Release/net10.0/EioSharp.Kv.LoadGen.dll}"
[ $# -gt 0 ] || { sed -n '2,10p' "$0"; exit 2; }
WORK="$(mktemp -d /tmp/kv-pp-thr.XXXXXX)"; SPIDS=()
cleanup() { for p in "${SPIDS[@]}"; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done; rm -rf "$WORK"; }
trap cleanup EXIT INT TERM
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
snap() { for t in /proc/$1/task/*; do # a thread that ends meanwhile is left out
  c=$( { tr ' ' _ <"$t/comm"; } 2>/dev/null) || continue
  st=$( { sed 's/.*) //' "$t/stat" | awk '{print $12, $13}'; } 2>/dev/null) || continue
  cs=$( { awk '/^voluntary_ctxt_switches/{v=$2} /^nonvoluntary_ctxt_switches/{n=$2} END{print v+0, n+0}' "$t/status"; } 2>/dev/null) || continue
  [ -n "$c" ] && [ -n "$st" ] && echo "$(basename "$t") $c $st $cs"; done; true; }
declare -a PORTS PIDS
i=0
for target in "$@"; do
  port=$(free_port); dir="$WORK/data$i"; mkdir -p "$dir"
  if [ "$target" = redis ]; then
    redis-server --port "$port" --bind 127.0.0.1 --dir "$dir" --appendonly yes --appendfsync everysec --save '' >"$WORK/log$i" 2>&1 &
  else
    envs=""; dll=$target
    case "$target" in *@*) envs=${target%@*}; envs=${envs//,/ }; dll=${target##*@} ;; esac
    # shellcheck disable=SC2086
    env $envs dotnet "$dll" --port "$port" --bind 127.0.0.1 --dir "$dir" --appendonly yes --appendfsync everysec --save "" >"$WORK/log$i" 2>&1 &
  fi
  PIDS[$i]=$!; SPIDS+=($!); PORTS[$i]=$port
  for _ in $(seq 400); do [ "$(redis-cli -p "$port" ping 2>/dev/null)" = PONG ] && break; sleep 0.05; done
  i=$((i + 1))
done
for j in $(seq 0 $((i - 1))); do dotnet "$LOADGEN_DLL" pingpong --port "${PORTS[$j]}" --rounds "$WARM" >/dev/null; done
: >"$WORK/all"
for win in $(seq 1 "$WINDOWS"); do
  for j in $(seq 0 $((i - 1))); do
    pid=${PIDS[$j]}; target=${*:$((j + 1)):1}
    snap "$pid" >"$WORK/before"
    out=$(dotnet "$LOADGEN_DLL" pingpong --port "${PORTS[$j]}" --rounds "$ROUNDS" | tail -1)
    snap "$pid" >"$WORK/after"
    echo "== $target window $win (load $(cut -d' ' -f1 /proc/loadavg)): ${out#RESULT workload=pingpong }"
    python3 - "$WORK/before" "$WORK/after" "$ROUNDS" "$target" "$win" "$WORK/all" <<'PY'
import sys, collections, os
tck = os.sysconf('SC_CLK_TCK'); n = int(sys.argv[3])
b = {l.split()[0]: l.split() for l in open(sys.argv[1])}
agg = collections.defaultdict(lambda: [0, 0, 0, 0])
for l in open(sys.argv[2]):
    tid, comm, u, s, v, iv = l.split(); x = [int(u), int(s), int(v), int(iv)]
    if tid in b: x = [x[k] - int(b[tid][k + 2]) for k in range(4)]
    if comm in ('dotnet', 'redis-server'): comm = 'main:' + tid
    for k in range(4): agg[comm][k] += x[k]
f = lambda t: t / tck * 1e6 / n
tu = sum(v[0] for v in agg.values()); ts = sum(v[1] for v in agg.values())
tv = sum(v[2] for v in agg.values()) / n; ti = sum(v[3] for v in agg.values()) / n
print(f"  total user {f(tu):.1f} sys {f(ts):.1f} = {f(tu + ts):.1f} us/rt; switches voluntary {tv:.2f} involuntary {ti:.2f} /rt")
for c, (u, s, v, iv) in sorted(agg.items(), key=lambda x: -(x[1][0] + x[1][1])):
    if u + s or v + iv > n / 100: print(f"    {c:24s} user {f(u):6.1f} sys {f(s):6.1f}  vol {v / n:5.2f} invol {iv / n:5.2f}")
with open(sys.argv[6], 'a') as o: o.write(f"{sys.argv[4]} {sys.argv[5]} {f(tu):.2f} {f(ts):.2f} {tv:.3f} {ti:.3f}\n")
PY
  done
done
echo "== medians over windows $((SKIP + 1))..$WINDOWS (user, sys, total µs per round trip; voluntary, involuntary switches per round trip)"
python3 - "$WORK/all" "$SKIP" <<'PY'
import sys, statistics, collections
rows = collections.defaultdict(list); order = []
for l in open(sys.argv[1]):
    t, w, u, s, v, iv = l.split()
    if int(w) <= int(sys.argv[2]): continue
    if t not in rows: order.append(t)
    rows[t].append((float(u), float(s), float(u) + float(s), float(v), float(iv)))
for t in order:
    m = [statistics.median(x[k] for x in rows[t]) for k in range(5)]
    print(f"  {t}: user {m[0]:.1f} sys {m[1]:.1f} total {m[2]:.1f}; vol {m[3]:.2f} invol {m[4]:.2f} ({len(rows[t])} windows)")
PY
