#!/usr/bin/env bash
# Which call site makes each io_uring_enter of the KV server on the EVALSHA row (issue 12, session 35, h198; the
# ping-pong's is bench/kv-pingpong-enter-sites.sh): for each TARGET (a path of EioSharp.Kv.dll, or "V=x,W=y@path"), a
# fresh server (AOF everysec, as bench/kv-features.sh) with a perf map (DOTNET_PerfMapEnabled=1,
# DOTNET_EnableWriteXorExecute=0), WARM EVALSHA calls of kv-features.sh's script from redis-benchmark -c 50, then
# `perf record -g` of syscalls:sys_enter_io_uring_enter on every server thread during N calls. Prints per call the
# entries by thread, the first UringPoller / Domain frame under the syscall and their kind (s/n: submits something or
# not; w/p: waits (min_complete > 0) or not), and min_complete's values.
#
#   bash bench/kv-evalsha-enter-sites.sh apps/EioSharp.Kv/bin/Release/net10.0/EioSharp.Kv.dll EIOSHARP_KV_BATCH_WAIT=0@...
#
# Environment: N (100000), WARM (100000).
set -u
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
N=${N:-100000}; WARM=${WARM:-100000}
[ $# -gt 0 ] || { sed -n '2,12p' "$0"; exit 2; }
source "$ROOT/bench/lib/servers.sh" kv-evalsha-sites
SCRIPT="local n = redis.call('INCR', KEYS[1]) redis.call('SET', KEYS[1] .. ':v', n) return redis.call('GET', KEYS[1] .. ':v')"
for target in "$@"; do
  start_server "$target" DOTNET_PerfMapEnabled=1 DOTNET_EnableWriteXorExecute=0 -- --appendonly yes --appendfsync everysec --save ""
  port=$SERVER_PORT; dir=$SERVER_DIR; pid=$SERVER_PID
  sha=$(redis-cli -p "$port" SCRIPT LOAD "$SCRIPT")
  redis-benchmark -h 127.0.0.1 -p "$port" -c 50 -n "$WARM" -r 100000 -q EVALSHA "$sha" 1 'key:__rand_int__' >/dev/null 2>&1
  perf record -q -g -e syscalls:sys_enter_io_uring_enter -p "$pid" -o "$dir/perf.data" 2>/dev/null &
  pp=$!; sleep 0.5
  rps=$(redis-benchmark -h 127.0.0.1 -p "$port" -c 50 -n "$N" -r 100000 --csv EVALSHA "$sha" 1 'key:__rand_int__' 2>/dev/null | tail -1 | cut -d, -f2 | tr -d '"')
  kill -INT $pp; wait $pp 2>/dev/null
  perf script -i "$dir/perf.data" 2>/dev/null >"$dir/script"
  kill "$pid"; wait "$pid" 2>/dev/null
  echo "$target (calls/s $rps, load $(cut -d' ' -f1 /proc/loadavg)):"
  python3 - "$dir/script" "$N" <<'PY'
import sys, re, collections
n = int(sys.argv[2]); c = collections.Counter(); mins = collections.Counter(); cur = None; frames = []; comm = None
def flush():
    if cur is None: return
    site = '?'
    for f in frames:
        m = re.search(r'(UringPoller::\w+|Domain::\w+|UringStreamTransport\S*::\w+|StoreOwner::\w+)', f)
        if m and 'EnterNs' not in f and '::Enter' not in m.group(1):
            site = m.group(1); break
    c[(comm, site, cur)] += 1
total = 0
for l in open(sys.argv[1]):
    if 'sys_enter_io_uring_enter' in l:
        flush(); frames = []
        comm = l.split()[0]
        m = re.search(r'to_submit: (0x[0-9a-f]+), min_complete: (0x[0-9a-f]+)', l)
        mc = int(m.group(2), 16)
        cur = ('s' if int(m.group(1), 16) else 'n') + ('w' if mc else 'p')
        mins[mc] += 1; total += 1
    elif l.strip(): frames.append(l)
flush()
print('  all entries: %.3f per call (%d); min_complete: %s' % (total / n, total, ', '.join('%d: %.3f' % (k, v / n) for k, v in sorted(mins.items()))))
for (t, s, k), v in c.most_common(14): print('  %-16s %-40s %s %.3f per call' % (t, s, k, v / n))
PY
  rm -rf "$dir"
done
