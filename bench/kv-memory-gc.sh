#!/usr/bin/env bash
# Where a GC's extra RSS is (issue 14, session 34, h193): for each EioSharp.Kv target, a fresh server (--appendonly no)
# loaded with 1,000,000 `SET key:<n> <16-byte value>` through `redis-cli --pipe`, then DEBUG GC, 3 s idle, and prints
# VmRSS/RssAnon, MEMORY MALLOC-STATS (the GC's heap size against what it keeps committed) and the largest resident
# mappings. A target is PATH/EioSharp.Kv.dll with environment before `@` (bench/lib/servers.sh's SPEC), e.g. the
# regions GC against the segments GC on one build:
#
#   bash bench/kv-memory-gc.sh DOTNET_GCName=libclrgcexp.so@/tmp/kv/EioSharp.Kv.dll DOTNET_GCName=libclrgc.so@/tmp/kv/EioSharp.Kv.dll
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/bench/lib/servers.sh" kv-memory-gc
python3 -c '
import sys
o = sys.stdout.buffer
for i in range(1000000):
    k = b"key:%d" % i
    o.write(b"*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$16\r\n%s\r\n" % (len(k), k, b"x" * 16))
' >"$WORK/strings.resp"
for spec in "$@"; do
  start_server "$spec" -- --appendonly no
  redis-cli -p "$SERVER_PORT" --pipe <"$WORK/strings.resp" >/dev/null
  redis-cli -p "$SERVER_PORT" debug gc >/dev/null; sleep 3
  echo "== $spec: $(grep -o 'libclrgc[a-z]*\.so' "/proc/$SERVER_PID/maps" | sort -u | tr '\n' ' ')"
  grep -E "VmRSS|RssAnon" "/proc/$SERVER_PID/status" | tr -s ' \t' ' ' | tr '\n' ' '; echo
  redis-cli -p "$SERVER_PORT" memory malloc-stats | grep -E "^Allocated|^Heap size|^Generation [0-2]|^Process RSS"
  awk '/^[0-9a-f]+-/{name=$6; range=$1} /^Rss:/{ if ($2 > 2000) print "  " range, name, $2 " kB"}' "/proc/$SERVER_PID/smaps" |
    sort -k3 -n -r | head -8
  kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true
done
