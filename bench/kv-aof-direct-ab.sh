#!/usr/bin/env bash
# The 1 KB -P16 SET row with the AOF's incremental appends through the page cache or past it (issue 14, session 35,
# h200: EIOSHARP_KV_AOF_DIRECT=1), one build, the two settings on two fresh servers, alternated: per round and side one
# measured `redis-benchmark -c 50 -P 16 -d 1024 -r 100000 -t set -n N` after WARMUP_SECONDS of warm-up passes (SET, as
# kv-vs-redis.sh's row). Per run: ops/s; the server's CPU per request (utime+stime+cutime+cstime of /proc/PID/stat, as
# kv-vs-redis.sh); the kernel threads' (children of kthreadd: the flusher's writeback, jbd2, the block layer's
# workers) and the whole machine's non-idle CPU per request (/proc/stat: user+nice+system+irq+softirq+steal, the
# client's and everything else on the machine included), each in microseconds; the server's write system calls per request (/proc/PID/io syscw: the AOF's writes).
#
#   KV_DLL=apps/EioSharp.Kv/bin/Release/net10.0/EioSharp.Kv.dll ROUNDS=5 N=400000 bash bench/kv-aof-direct-ab.sh
#
# The switch exists only in commit 91d581b (reverted: docs/rationale.md §192): build that commit for KV_DLL; on a build
# without it both sides run the same code (the "on" server's log then lacks the "past the page cache" line printed here).
#
# Environment: KV_DLL (this tree's Release build), ROUNDS (5), N (400000), WARMUP_SECONDS (10), TEST (set), DATA (1024),
# PIPELINE (16), CLIENTS (50), SIDES ("off on": which settings, in this order each round), KV_ARGS (more server arguments).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
KV_DLL="${KV_DLL:-$ROOT/apps/EioSharp.Kv/bin/Release/net10.0/EioSharp.Kv.dll}"
ROUNDS="${ROUNDS:-5}" N="${N:-400000}" WARMUP_SECONDS="${WARMUP_SECONDS:-10}" TEST="${TEST:-set}" DATA="${DATA:-1024}"
PIPELINE="${PIPELINE:-16}" CLIENTS="${CLIENTS:-50}" SIDES="${SIDES:-off on}" KV_ARGS="${KV_ARGS:-}"
source "$ROOT/bench/lib/servers.sh" kv-aof-direct-ab
declare -A PORT PID
for side in $SIDES; do
  env=()
  [ "$side" = on ] && env=(EIOSHARP_KV_AOF_DIRECT=1)
  # shellcheck disable=SC2086
  start_server "$KV_DLL" "${env[@]}" -- $KV_ARGS
  PORT[$side]=$SERVER_PORT; PID[$side]=$SERVER_PID
  grep -h "past the page cache" "$SERVER_DIR/log" >&2 || true
done
bench() { redis-benchmark -h 127.0.0.1 -p "$1" -c "$CLIENTS" -P "$PIPELINE" -d "$DATA" -r 100000 -t "$TEST" -n "$2" -q 2>/dev/null | tr '\r' '\n' | grep -E '^[A-Z]+:' | tail -1 | grep -oE '[0-9.]+ requests' | cut -d' ' -f1; }
proc_cpu() { awk -v t="$CLK_TCK" '{printf "%.0f\n", ($14+$15+$16+$17)*1e6/t}' "/proc/$1/stat"; }
machine() { awk -v t="$CLK_TCK" '/^cpu /{printf "%.0f\n", ($2+$3+$4+$7+$8+$9)*1e6/t}' /proc/stat; }
# kernel threads by PID (a thread that ends in the run drops out: sum the deltas of those seen at both ends)
kthreads() { for f in /proc/[0-9]*/stat; do read -r line < "$f" 2>/dev/null || continue; rest=${line##*) }; set -- $rest; [ "$2" = 2 ] && echo "${f//[^0-9]/} $((${12} + ${13}))"; done; }
kdelta() { awk -v t="$CLK_TCK" 'NR==FNR{a[$1]=$2; next} ($1 in a){s+=$2-a[$1]} END{printf "%.0f\n", s*1e6/t}' "$1" "$2"; }
# write system calls of the server (/proc/PID/io syscw: the AOF's pwrites; io_uring's sends are not counted)
syscw() { awk '/^syscw/{print $2}' "/proc/$1/io"; }
for side in $SIDES; do # warm-up (the JIT's tiering works by time)
  end=$((SECONDS + WARMUP_SECONDS))
  while [ "$SECONDS" -lt "$end" ]; do bench "${PORT[$side]}" 80000 >/dev/null; done
done
OUT="$WORK/runs"
for r in $(seq 1 "$ROUNDS"); do
  for side in $SIDES; do
    load=$(cut -d' ' -f1 /proc/loadavg)
    kthreads > "$WORK/k0"; p0=$(proc_cpu "${PID[$side]}"); m0=$(machine); w0=$(syscw "${PID[$side]}")
    ops=$(bench "${PORT[$side]}" "$N")
    p1=$(proc_cpu "${PID[$side]}"); m1=$(machine); w1=$(syscw "${PID[$side]}"); kthreads > "$WORK/k1"
    line=$(awk -v s="$side" -v r="$r" -v l="$load" -v o="$ops" -v n="$N" -v p="$((p1 - p0))" -v m="$((m1 - m0))" -v k="$(kdelta "$WORK/k0" "$WORK/k1")" -v w="$((w1 - w0))" \
      'BEGIN{printf "round %d %s load %s: %s ops/s, server %.2f us/req, kthreads %.2f, machine %.2f; %.4f write calls/req\n", r, s, l, o, p/n, k/n, m/n, w/n}')
    echo "$line" | tee -a "$OUT" >&2
  done
done
python3 - "$OUT" <<'PY'
import re, statistics, sys
rows = {}
for l in open(sys.argv[1]):
    m = re.match(r'round \d+ (\w+) load [\d.]+: ([\d.]+) ops/s, server ([\d.]+) us/req, kthreads ([\d.]+), machine ([\d.]+)', l)
    if m: rows.setdefault(m.group(1), []).append([float(x) for x in m.groups()[1:]])
names = ["ops/s", "server us/req", "kthreads us/req", "machine us/req"]
for side, rs in rows.items():
    print(f"{side}: " + "; ".join(f"{n} {statistics.median(r[i] for r in rs):.2f} [{' '.join(f'{r[i]:.2f}' for r in rs)}]" for i, n in enumerate(names)))
if "on" in rows and "off" in rows:
    print("on/off: " + "; ".join(f"{n} {statistics.median(r[i] for r in rows['on']) / statistics.median(r[i] for r in rows['off']):.3f}x" for i, n in enumerate(names)))
PY
