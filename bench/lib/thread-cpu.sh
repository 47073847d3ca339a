# Sourced by bench scripts that read a server's CPU by thread around a run (bench/kv-vs-redis.sh's PRINT_THREADS,
# bench/kv-durable-first-run.sh; issue 14, session 37, h207). Needs CLK_TCK (bench/lib/servers.sh sets it).
#   thread_snap PID SERVER PORT >FILE   one line a thread ("tid comm utime stime", ticks), "process - utime stime"
#                                       (children included) and, for a Kv server (SERVER kv*), "gc G0 G1 G2": the GC's
#                                       collections so far by generation (MEMORY MALLOC-STATS)
#   thread_diff BEFORE AFTER N          prints "      threads (us/req): KIND CPU, ...; gc +G0/+G1/+G2" for the N requests
#                                       between the two snapshots: a thread kind is its comm without a trailing number;
#                                       CPU of threads that ended between them (and children) shows as "(ended)"

# thread_snap <pid> <server>  -> one line a thread, "tid comm utime stime" (ticks), then "process - utime stime" and
# "gc gen0 gen1 gen2" (Kv's MEMORY MALLOC-STATS collections); PRINT_THREADS only (session 37, h207)
thread_snap() {
  local task c st
  for task in /proc/"$1"/task/*; do
    c=$(tr ' ' _ 2>/dev/null <"$task/comm") || continue
    st=$(sed 's/.*) //' "$task/stat" 2>/dev/null | awk '{print $12, $13}') || continue # ended meanwhile
    [ -n "$st" ] && echo "$(basename "$task") ${c:-?} $st"
  done
  echo "process - $(sed 's/.*) //' "/proc/$1/stat" | awk '{print $12 + $14, $13 + $15}')"
  if [[ $2 == kv* ]]; then
    { redis-cli -p "$3" memory malloc-stats 2>/dev/null || true; } | tr -d '\r' | awk '/^Generation [012]:/ {g = g " " $NF} END {print "gc" g}'
  fi
}

# thread_diff <before> <after> <n>  -> "  threads: kind user+sys us/req ..., gc +g0/+g1/+g2"
thread_diff() {
  python3 - "$1" "$2" "$3" "$CLK_TCK" <<'PY'
import sys, re, collections
n, tck = int(sys.argv[3]), int(sys.argv[4])
def read(p):
    d, gc = {}, None
    for l in open(p):
        f = l.split()
        if f[0] == 'gc': gc = [int(x) for x in f[1:]]; continue
        d[f[0]] = (f[1], int(f[2]), int(f[3]))
    return d, gc
(b, gb), (a, ga) = read(sys.argv[1]), read(sys.argv[2])
proc = sum(a['process'][1:]) - sum(b['process'][1:])
agg = collections.Counter()
for tid, (comm, u, s) in a.items():
    if tid == 'process': continue
    kind = re.sub(r'[-_ ]?\d+$', '', comm)
    if tid in b: u -= b[tid][1]; s -= b[tid][2]
    agg[kind] += u + s
agg['(ended)'] += max(0, proc - sum(agg.values()))
us = lambda t: t * 1e6 / tck / n
parts = [f"{k} {us(v):.2f}" for k, v in agg.most_common() if v > 0]
gc = f"; gc +{'/+'.join(str(y - x) for x, y in zip(gb, ga))}" if gb and ga and len(gb) == len(ga) else ""
print("      threads (us/req): " + ", ".join(parts) + gc)
PY
}

