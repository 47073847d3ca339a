#!/usr/bin/env bash
# Which call site in the KV server makes each io_uring_enter of the BLPOP/LPUSH ping-pong (issue 12, session 30, h177):
# for each TARGET (a path of EioSharp.Kv.dll, or "V=x,W=y@path" for that Kv run with that environment), a fresh server
# (AOF everysec) with a perf map (DOTNET_PerfMapEnabled=1, DOTNET_EnableWriteXorExecute=0 so that perf can resolve the
# JIT's code), WARM round trips, then `perf record -g` of the syscalls:sys_enter_io_uring_enter tracepoint on the main
# (domain) thread during ROUNDS round trips (bench/EioSharp.Kv.LoadGen pingpong). Prints per round trip the entries by
# the first UringPoller / Domain frame under the syscall and their kind (s/n: submits something or not; w/p: waits or
# not). Inlining can fold a site into its caller (UringPoller.TryIdle has shown up as Domain::RunLoop).
#
#   bash bench/kv-pingpong-enter-sites.sh apps/EioSharp.Kv/bin/Release/net10.0/EioSharp.Kv.dll
#
# Environment: ROUNDS (3000), WARM (20000), LOADGEN_DLL.
set -u
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ROUNDS=${ROUNDS:-3000}; WARM=${WARM:-20000}
LG=${LOADGEN_DLL:-$ROOT/bench/EioSharp.Kv.LoadGen/bin/Release/net10.0/EioSharp.Kv.LoadGen.dll}
[ $# -gt 0 ] || { sed -n '2,11p' "$0"; exit 2; }
source "$ROOT/bench/lib/servers.sh" kv-pp-sites
for target in "$@"; do
  start_server "$target" DOTNET_PerfMapEnabled=1 DOTNET_EnableWriteXorExecute=0 -- --appendonly yes --appendfsync everysec --save ""
  port=$SERVER_PORT; dir=$SERVER_DIR; pid=$SERVER_PID
  dotnet "$LG" pingpong --port "$port" --rounds "$WARM" >/dev/null
  perf record -q -g -e syscalls:sys_enter_io_uring_enter -t "$pid" -o "$dir/perf.data" 2>/dev/null &
  pp=$!; sleep 0.5
  dotnet "$LG" pingpong --port "$port" --rounds "$ROUNDS" >/dev/null
  kill -INT $pp; wait $pp 2>/dev/null
  perf script -i "$dir/perf.data" 2>/dev/null >"$dir/script"
  kill "$pid"; wait "$pid" 2>/dev/null
  echo "$target (load $(cut -d' ' -f1 /proc/loadavg)):"
  python3 - "$dir/script" "$ROUNDS" <<'PY'
import sys, re, collections
n = int(sys.argv[2]); c = collections.Counter(); cur = None; frames = []
def flush():
    if cur is None: return
    site = '?'
    for f in frames:
        m = re.search(r'(UringPoller::\w+|Domain::\w+|UringStreamTransport\S*::\w+)', f)
        if m and 'EnterNs' not in f and '::Enter' not in m.group(1):
            site = m.group(1); break
    c[(site, cur)] += 1
for l in open(sys.argv[1]):
    if 'sys_enter_io_uring_enter' in l:
        flush(); frames = []
        m = re.search(r'to_submit: (0x[0-9a-f]+), min_complete: (0x[0-9a-f]+)', l)
        cur = ('s' if int(m.group(1), 16) else 'n') + ('w' if int(m.group(2), 16) else 'p')
    elif l.strip(): frames.append(l)
flush()
for (s, k), v in c.most_common(12): print('  %-40s %s %.2f per round trip' % (s, k, v / n))
PY
  rm -rf "$dir"
done
