#!/usr/bin/env bash
# Counts for the 1 KB -P16 SET row (issue 14, h106): allocated bytes, GCs per generation, AOF rewrites and server CPU per
# request over one redis-benchmark run on a warm EioSharp.Kv, read from MEMORY MALLOC-STATS, INFO and /proc/PID/stat.
#
#   bash bench/kv-aof-counts.sh <EioSharp.Kv.dll> <label> [more EioSharp.Kv arguments]
#   e.g. bash bench/kv-aof-counts.sh /tmp/s16-base/kv/EioSharp.Kv.dll base --auto-aof-rewrite-percentage 0
#
# N=400000 SETs (-r 100000 -c 50 -P 16 -d 1024) after WARM=200000; the server runs with its defaults plus the arguments.
set -euo pipefail
dll=$1; label=$2; shift 2
n=${N:-400000}; warm=${WARM:-200000}
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
dir=$(mktemp -d /tmp/kv-aof-counts.XXXXXX)
dotnet "$dll" --port "$port" --bind 127.0.0.1 --dir "$dir/data" --maxclients 10000 "$@" >"$dir/log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 1 400); do [ "$(redis-cli -p "$port" ping 2>/dev/null)" = PONG ] && break; sleep 0.05; done
bench() { redis-benchmark -h 127.0.0.1 -p "$port" -n "$1" -r 100000 -t set -c 50 -P 16 -d 1024 --csv >/dev/null 2>&1; }
stats() {
  redis-cli -p "$port" memory malloc-stats | grep -E "^Allocated since|^Generation [012]:"
  redis-cli -p "$port" info persistence | grep -E "aof_rewrites:"
  awk '{print "cpu_ticks", $14 + $15}' "/proc/$pid/stat"
}
bench "$warm"
stats >"$dir/s0"
bench "$n"
stats >"$dir/s1"
python3 - "$dir/s0" "$dir/s1" "$n" "$label" "$(getconf CLK_TCK)" "$(cut -d' ' -f1-3 /proc/loadavg)" <<'PY'
import re, sys
def parse(f):
    d = {}
    for l in open(f):
        l = l.strip()
        if l.startswith("Allocated since"): d["alloc"] = int(l.split(":")[1])
        m = re.match(r"Generation (\d).*collections (\d+)", l)
        if m: d["gc" + m.group(1)] = int(m.group(2))
        if l.startswith("aof_rewrites:"): d["rewrites"] = int(l.split(":")[1])
        if l.startswith("cpu_ticks"): d["cpu"] = int(l.split()[1])
    return d
a, b = parse(sys.argv[1]), parse(sys.argv[2]); n = int(sys.argv[3]); tck = int(sys.argv[5])
print(f"{sys.argv[4]}: allocated {(b['alloc'] - a['alloc']) / n:.1f} B/req, GCs gen0/1/2 "
      f"{b['gc0'] - a['gc0']}/{b['gc1'] - a['gc1']}/{b['gc2'] - a['gc2']} per {n}, rewrites {b['rewrites'] - a['rewrites']}, "
      f"cpu {(b['cpu'] - a['cpu']) * 1e6 / tck / n:.2f} us/req (load {sys.argv[6]})")
PY
