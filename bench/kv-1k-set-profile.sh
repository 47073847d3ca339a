#!/usr/bin/env bash
# Where the 1 KB -P16 SET row's CPU goes (issue 14, h123): one fresh server, a warm-up, then one measured run of
# `redis-benchmark -c 50 -P 16 -d 1024 -r 100000 -t set -n N`; prints per-thread CPU (user/sys us per request, from
# /proc/PID/task/*/stat, threads that came and went in the run counted from the process's totals), and for Kv the
# allocated bytes, GCs, AOF rewrites, copy-on-write arrays (new / recycled, h132) and incompressibility proofs (h140) per run (MEMORY MALLOC-STATS, INFO); PROFILE=strace adds `strace -c -f`
# syscall counts per request over the measured run, PROFILE=perf a `perf record -e cpu-clock -g` report by thread.
#
#   bash bench/kv-1k-set-profile.sh kv /tmp/s18-base/kv/EioSharp.Kv.dll [Kv arguments]
#   bash bench/kv-1k-set-profile.sh redis - [redis-server arguments, after --save '' --appendonly no]
#   (DOTNET_JitStdOutFile=F DOTNET_JitDisasmSummary=1: also counts the methods the JIT compiled in the measured run; F is kept)
#   IDLE_SECONDS=1 (pause before the measured run) N=400000 WARM=200000 PROFILE=none|strace|perf OUT=dir (keeps the perf/strace output there)
set -euo pipefail
which=$1; dll=$2; shift 2
n=${N:-400000}; warm=${WARM:-200000}; profile=${PROFILE:-none}
dir=$(mktemp -d /tmp/kv-1k-profile.XXXXXX); out=${OUT:-$dir}; mkdir -p "$out"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
case $which in
  kv) DOTNET_PerfMapEnabled=1 DOTNET_EnableWriteXorExecute=0 dotnet "$dll" --port "$port" --bind 127.0.0.1 --dir "$dir/data" --maxclients 10000 "$@" >"$dir/log" 2>&1 & ;;
  redis) redis-server --port "$port" --bind 127.0.0.1 --dir "$dir" --save '' --appendonly no --daemonize no --logfile "$dir/log" "$@" & ;;
esac
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 1 400); do [ "$(redis-cli -p "$port" ping 2>/dev/null)" = PONG ] && break; sleep 0.05; done
bench() { redis-benchmark -h 127.0.0.1 -p "$port" -n "$1" -r 100000 -t set -c 50 -P 16 -d 1024 --csv 2>/dev/null | tail -1; }
snap() {
  for t in /proc/$pid/task/*; do c=$(tr ' ' _ 2>/dev/null <"$t/comm") || continue
    st=$(sed 's/.*) //' "$t/stat" 2>/dev/null | awk '{print $12, $13}') || continue
    [ -n "$st" ] && echo "$(basename "$t") $c $st"; done
  echo "process all $(sed 's/.*) //' /proc/$pid/stat | awk '{print $12+$14, $13+$15}')"
  if [ "$which" = kv ]; then
    redis-cli -p "$port" memory malloc-stats | grep -E "^Allocated since|^Generation [012]:|^Copy-on-write|^Snapshot strings|^Snapshot entry" | sed 's/^/stat /'
  fi
  redis-cli -p "$port" info persistence | grep -E "aof_rewrites:" | sed 's/^/stat /'
  if [ -n "${DOTNET_JitStdOutFile:-}" ]; then echo "stat jitted: $(wc -l <"$DOTNET_JitStdOutFile" 2>/dev/null || echo 0)"; fi
}
bench "$warm" >/dev/null
sleep "${IDLE_SECONDS:-1}" # IDLE_SECONDS: the pause between the warm-up and the measured run (h221, §218: freed memory is reported to the host after ~2 s)
snap >"$dir/s0"
case $profile in
  strace) strace -c -f -p "$pid" -o "$out/strace.txt" & tracer=$! ;;
  perf) perf record -e cpu-clock -g -p "$pid" -o "$out/perf.data" 2>"$out/perf.err" >/dev/null & tracer=$! ;;
  *) tracer= ;;
esac
[ -n "$tracer" ] && sleep 1
result=$(bench "$n")
[ -n "$tracer" ] && { kill -INT "$tracer"; wait "$tracer" 2>/dev/null || true; }
snap >"$dir/s1"
echo "redis-benchmark: $result (load $(cut -d' ' -f1-3 /proc/loadavg))"
python3 - "$dir/s0" "$dir/s1" "$n" <<'PY'
import sys, os, re, collections
tck = os.sysconf('SC_CLK_TCK'); n = int(sys.argv[3])
def parse(f):
    th, st = {}, {}
    for l in open(f):
        p = l.split()
        if p[0] == 'stat':
            s = l[5:].strip()
            if s.startswith('Allocated since'): st['alloc'] = int(s.split(':')[1])
            m = re.match(r'Generation (\d).*collections (\d+)', s)
            if m: st['gc' + m.group(1)] = int(m.group(2))
            if s.startswith('aof_rewrites:'): st['rewrites'] = int(s.split(':')[1])
            m = re.match(r'Snapshot entry arrays reused: (\d+)', s)
            if m: st['entries_reused'] = int(m.group(1))
            m = re.match(r'Copy-on-write string arrays: allocated (\d+), recycled (\d+)', s)
            if m: st['cow_new'], st['cow_recycled'] = int(m.group(1)), int(m.group(2))
            if s.startswith('jitted:'): st['jitted'] = int(s.split(':')[1])
            m = re.match(r'Snapshot strings proven incompressible: recorded (\d+), written raw without LZF (\d+)', s)
            if m: st['proof_recorded'], st['proof_skipped'] = int(m.group(1)), int(m.group(2))
        else:
            th[p[0]] = (p[1], int(p[2]), int(p[3]))
    return th, st
(b, sb), (a, sa) = parse(sys.argv[1]), parse(sys.argv[2])
us = lambda t: t / tck * 1e6 / n
pa, pb = a.pop('process'), b.pop('process')
agg = collections.defaultdict(lambda: [0, 0])
for tid, (c, u, s) in a.items():
    if tid in b: u -= b[tid][1]; s -= b[tid][2]
    agg[c][0] += u; agg[c][1] += s
tu, ts = pa[1] - pb[1], pa[2] - pb[2]
gone = [tu - sum(v[0] for v in agg.values()), ts - sum(v[1] for v in agg.values())]
print(f"process user {us(tu):.3f} sys {us(ts):.3f} total {us(tu + ts):.3f} us/req")
for c, (u, s) in sorted(agg.items(), key=lambda x: -(x[1][0] + x[1][1])):
    if u + s: print(f"  {c:28s} user {us(u):.3f} sys {us(s):.3f}")
if gone[0] + gone[1]: print(f"  {'(threads ended in the run)':28s} user {us(gone[0]):.3f} sys {us(gone[1]):.3f}")
if 'alloc' in sa:
    print(f"allocated {(sa['alloc'] - sb['alloc']) / n:.1f} B/req, GCs gen0/1/2 {sa['gc0'] - sb['gc0']}/{sa['gc1'] - sb['gc1']}/{sa['gc2'] - sb['gc2']}")
if 'rewrites' in sa: print(f"AOF rewrites {sa['rewrites'] - sb['rewrites']}")
if 'cow_new' in sa:
    print(f"copy-on-write arrays (a snapshot held the key's array): new {sa['cow_new'] - sb['cow_new']}, recycled {sa['cow_recycled'] - sb['cow_recycled']}")
if 'entries_reused' in sa:
    print(f"snapshot entry arrays reused (h197) {sa['entries_reused'] - sb.get('entries_reused', 0)}")
if 'proof_recorded' in sa:
    print(f"incompressible strings (h140): proofs recorded {sa['proof_recorded'] - sb.get('proof_recorded', 0)}, written raw on a proof {sa['proof_skipped'] - sb.get('proof_skipped', 0)}")
if 'jitted' in sa: print(f"methods jitted in the run {sa['jitted'] - sb['jitted']} (lines {sb['jitted'] + 1}-{sa['jitted']} of DOTNET_JitStdOutFile)")
PY
if [ "$profile" = strace ]; then
  python3 - "$out/strace.txt" "$n" <<'PY'
import sys
n = int(sys.argv[2]); rows = []
for l in open(sys.argv[1]):
    p = l.split()
    if len(p) >= 5 and p[0][0].isdigit() and p[-1] != 'total':
        calls = int(p[3]); rows.append((calls, p[-1]))
print("syscalls per request: " + ", ".join(f"{name} {calls / n:.4f}" for calls, name in sorted(rows, reverse=True)[:12]))
print(f"all syscalls per request {sum(c for c, _ in rows) / n:.4f}")
PY
fi
if [ "$profile" = perf ]; then
  perf report -i "$out/perf.data" --no-children --sort comm,dso -g none --stdio 2>/dev/null | grep -v '^#' | grep -v '^$' | head -25
fi
