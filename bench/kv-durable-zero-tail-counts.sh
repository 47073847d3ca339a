#!/usr/bin/env bash
# The durable row's fsync by count, the AOF's appendfsync always tail appended past the end (off) or prepared ahead with
# written zeros (on: EIOSHARP_KV_ALWAYS_ZERO_TAIL=1, MappedTailAppender.ZeroFillAhead; session 36, h201, issue 14): one
# binary, two servers started at once, 50 clients SET with fsync always (redis-benchmark -c 50 -d 16 -r 100000 -t set, as
# kv-vs-redis.sh's durable-c50), the runs alternated. Each run is counted with `perf stat -p` on the server (all its
# threads: the store's domain, whose round fdatasyncs, and the system thread that fills the zeros): block requests issued
# (block:block_rq_issue), bios queued, ext4_mark_inode_dirty, block_dirty_buffer; printed per fsync (INFO aof_fsyncs)
# with ops/s and CPU per request (utime+stime from /proc) and per fsync, then each mode's medians.
# (The switch was off by default until session 38 and is on since (h213, rationale §210); "off" sets it =0, "on" =1, so
# the script reads the same on a build from before or after the flip.)
#
#   DLL=path/EioSharp.Kv.dll [REPEATS=5] [N=40000] [WARM_SECONDS=5] [EXTRA_ENV="V=x ..."] bash bench/kv-durable-zero-tail-counts.sh
#
# EXTRA_ENV: environment for both servers, e.g. EIOSHARP_KV_ALWAYS_OVERLAP=1 (or =0) to fix the schedule on both sides:
# the guard's choice moves with the fsync's length (a shorter fsync makes the overlap, with up to twice the fsyncs per
# request, win more often), which mixes the schedule into an off/on comparison.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
source "$ROOT/bench/lib/servers.sh" kv-durable-zero-tail-counts
DLL=${DLL:?DLL=path/EioSharp.Kv.dll}; REPEATS=${REPEATS:-5}; N=${N:-40000}; WARM_SECONDS=${WARM_SECONDS:-5}
MODES="off on"
declare -A PORT=() PID=()
for m in $MODES; do
  v=0; [ "$m" = on ] && v=1
  # shellcheck disable=SC2086
  start_server "$DLL" EIOSHARP_KV_ALWAYS_ZERO_TAIL=$v ${EXTRA_ENV:-} -- --appendfsync always --maxclients 10000
  PORT[$m]=$SERVER_PORT; PID[$m]=$SERVER_PID
done
rb() { redis-benchmark -h 127.0.0.1 -p "$1" -n "$2" -r 100000 -d 16 -c 50 -t set --csv 2>/dev/null | awk -F'","' 'NR>1 {gsub(/"/,"",$2); print $2; exit}'; }
fsyncs() { { redis-cli -p "$1" info persistence 2>/dev/null || true; } | awk -F: '/^aof_fsyncs:/ {print $2+0; f=1} END {if (!f) print -1}' | tr -d '\r'; }
t0=$(date +%s)
while [ $(( $(date +%s) - t0 )) -lt "$WARM_SECONDS" ]; do for m in $MODES; do rb "${PORT[$m]}" 5000 >/dev/null; done; done
RES="$WORK/results"; : >"$RES"
echo "start $(date -u +%H:%M:%S), load $(cut -d' ' -f1-3 /proc/loadavg), N=$N REPEATS=$REPEATS"
for rep in $(seq 1 "$REPEATS"); do
  for m in $MODES; do
    p=${PORT[$m]}; pid=${PID[$m]}
    f0=$(fsyncs "$p"); c0=$(awk '{print $14+$15}' "/proc/$pid/stat")
    perf stat -x, -o "$WORK/perf" -p "$pid" -e block:block_rq_issue,block:block_bio_queue,ext4:ext4_mark_inode_dirty,block:block_dirty_buffer \
      -- bash -c "redis-benchmark -h 127.0.0.1 -p $p -n $N -r 100000 -d 16 -c 50 -t set --csv 2>/dev/null >$WORK/rb"
    rps=$(awk -F'","' 'NR>1 {gsub(/"/,"",$2); print $2; exit}' "$WORK/rb")
    c1=$(awk '{print $14+$15}' "/proc/$pid/stat"); f1=$(fsyncs "$p")
    line=$(python3 - "$m" "$rps" "$c0" "$c1" "$f0" "$f1" "$N" "$CLK_TCK" "$WORK/perf" <<'PY'
import sys
m, rps, c0, c1, f0, f1, n, tck, perf = sys.argv[1:]
n = int(n); fs = int(f1) - int(f0); cpu = (float(c1) - float(c0)) * 1e6 / float(tck)
ev = {}
for l in open(perf):
    p = l.strip().split(",")
    if len(p) > 2 and not l.startswith("#"):
        ev[p[2].split(":")[-1]] = float(p[0]) if p[0].replace(".", "").isdigit() else float("nan")
print(m, rps, "%.2f" % (cpu / n), "%.4f" % (fs / n), "%.0f" % (cpu / max(fs, 1)),
      " ".join("%.2f" % (ev.get(k, float("nan")) / max(fs, 1)) for k in ["block_rq_issue", "block_bio_queue", "ext4_mark_inode_dirty", "block_dirty_buffer"]))
PY
)
    echo "$line" >>"$RES"; echo "  run $rep $line load $(cut -d' ' -f1 /proc/loadavg)"
  done
done
echo "columns: mode ops/s cpu_us/req fsyncs/req cpu_us/fsync | per fsync: rq_issue bio_queue mark_inode_dirty dirty_buffer"
python3 - "$RES" $MODES <<'PY'
import sys, statistics as st
rows = [l.split() for l in open(sys.argv[1])]
names = ["ops/s", "cpu us/req", "fsyncs/req", "cpu us/fsync", "rq_issue/fsync", "bio_queue/fsync", "mark_inode_dirty/fsync", "dirty_buffer/fsync"]
med = {}
for m in sys.argv[2:]:
    r = [x for x in rows if x[0] == m]
    med[m] = [st.median(float(x[i]) for x in r) for i in range(1, 9)]
    print(m + ": " + ", ".join(f"{n} {v:.4g} [{' '.join(x[i + 1] for x in r)}]" for i, (n, v) in enumerate(zip(names, med[m]))))
print("on/off: " + ", ".join(f"{n} {a / b:.2f}x" for n, a, b in zip(names, med["on"], med["off"]) if b))
PY
echo "end $(date -u +%H:%M:%S), load $(cut -d' ' -f1-3 /proc/loadavg)"
