#!/usr/bin/env bash
# The AOF incremental file's page cache by folio size (issue 14, session 35, h197): does ext4 on this kernel give the
# appended file large folios (regular files gained them in 6.16)? For each target, a fresh EioSharp.Kv (its defaults:
# appendonly yes, everysec), WARM 1 KB SETs (`redis-benchmark -c 50 -P 16 -d 1024 -r 100000`), then N more under
# `perf record -e filemap:mm_filemap_add_to_page_cache -p PID`; prints the insertions by folio order, per inode (the
# file's name where it still exists), and per MB appended (a SET appends 1,069 bytes: `*3 $3 SET $16 key:... $1024 ...`).
# Then the same count for `dd` appending 64 KiB writes to a file in the same directory (the filesystem's own answer).
#
#   bash bench/kv-aof-folios.sh /tmp/h197/new/EioSharp.Kv.dll        (N=200000 WARM=200000)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/bench/lib/servers.sh" kv-aof-folios
n=${N:-200000}; warm=${WARM:-200000}
orders() { # perf.data -> "order count" lines and the inodes
  perf script -i "$1" -F trace 2>/dev/null | python3 -c '
import sys, re, collections
by_order, by_ino, total = collections.Counter(), collections.Counter(), 0
for line in sys.stdin:
    m = re.search(r"ino (\w+) .*order=(\d+)", line)
    if not m: continue
    by_order[int(m.group(2))] += 1; by_ino[m.group(1)] += 1 << int(m.group(2)); total += 4096 << int(m.group(2))
print("insertions by order: " + ", ".join(f"order {o}: {c}" for o, c in sorted(by_order.items())))
print(f"insertions {sum(by_order.values())}, bytes inserted {total:,}")
for ino, pages in by_ino.most_common(4): print(f"  inode 0x{ino} {pages * 4096:,} bytes")
'
}
for spec in "$@"; do
  start_server "$spec"
  redis-benchmark -h 127.0.0.1 -p "$SERVER_PORT" -n "$warm" -r 100000 -t set -c 50 -P 16 -d 1024 -q >/dev/null 2>&1
  perf record -e filemap:mm_filemap_add_to_page_cache -p "$SERVER_PID" -o "$WORK/folios.data" >"$WORK/perf.log" 2>&1 & rec=$!
  sleep 1
  redis-benchmark -h 127.0.0.1 -p "$SERVER_PORT" -n "$n" -r 100000 -t set -c 50 -P 16 -d 1024 -q 2>/dev/null | tr '\r' '\n' | tail -1
  kill -INT "$rec" 2>/dev/null || cat "$WORK/perf.log"; wait "$rec" 2>/dev/null || true
  echo "== $spec: $n SETs, $(( n * 1069 / 1048576 )) MB appended, load $(cut -d' ' -f1 /proc/loadavg)"
  orders "$WORK/folios.data"
  for f in "$SERVER_DIR"/data/*/* "$SERVER_DIR"/data/*; do [ -f "$f" ] && printf '  %s inode 0x%x\n' "$f" "$(stat -c %i "$f")"; done
  kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true
done
echo "== dd: 64 MiB appended in 64 KiB writes (oflag=append) to $WORK"
perf record -e filemap:mm_filemap_add_to_page_cache -o "$WORK/dd.data" -- \
  dd if=/dev/zero of="$WORK/dd.out" bs=64k count=1024 oflag=append conv=notrunc status=none >/dev/null 2>&1
orders "$WORK/dd.data"
