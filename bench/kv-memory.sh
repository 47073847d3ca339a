#!/usr/bin/env bash
# Memory: RSS of EioSharp.Kv vs redis-server holding the same data, loaded the same way in the same run.
#
#   bench/kv-memory.sh              # builds EioSharp.Kv (Release), prints a markdown table
#
# Environment (optional): STRING_KEYS=1000000  COLLECTIONS=10000  MEMBERS=100  NO_BUILD=1  TYPES="string hash set zset list"
#   VALUE_BYTES=16  the string data set's value size (e.g. 100); COLLECTIONS=100000 MEMBERS=10 TYPES=hash: 100k hashes x 10
#   SMAPS_DIR=dir  also saves each server's /proc/PID/smaps and status at the reading (dir/<redis|kv>-<type>.smaps):
#                where a difference in RSS is (compare two builds with a per-mapping diff)
#   KV_BIN=path  runs that native executable (a NativeAOT publication: scripts/publish-kv-aot.sh) instead of the JIT
#                build with `dotnet`; KV_BIN=aot publishes it first (scripts/publish-kv-aot.sh, several minutes).
#
# Columns: VmRSS of each server and the ratio; B/item = RSS growth over the empty server per key (strings) or member
# (collections); RssAnon = the private (anonymous) part of the RSS, i.e. without mapped code and shared libraries
# (the .NET runtime maps ~25 MB of them, shared with other .NET processes); the empty servers' RSS.
#
# Data sets (each loaded into a fresh server with `redis-cli --pipe`, then RSS read from /proc/<pid>/status after the
# server has been idle and its RSS unchanged for 1 s (6-24 s); for EioSharp.Kv a full GC is forced first with DEBUG GC when available):
#   string: STRING_KEYS keys "key:<n>" with VALUE_BYTES-byte values (16 by default)
#   hash/set/zset/list: COLLECTIONS keys of MEMBERS small members each ("m<n>" members, small integer values/scores)
# Both servers run without persistence (redis: --save '' --appendonly no; EioSharp.Kv: --appendonly no).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STRING_KEYS="${STRING_KEYS:-1000000}"
COLLECTIONS="${COLLECTIONS:-10000}"
MEMBERS="${MEMBERS:-100}"
TYPES="${TYPES:-string hash set zset list}"
VALUE_BYTES="${VALUE_BYTES:-16}"
KV_DLL="$ROOT/apps/EioSharp.Kv/bin/Release/net10.0/EioSharp.Kv.dll"
WORK="$(mktemp -d /tmp/kv-memory.XXXXXX)"
PID=""

cleanup() {
  [ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

for tool in redis-server redis-cli dotnet python3; do
  command -v "$tool" >/dev/null || { echo "missing $tool" >&2; exit 1; }
done
KV_BIN="${KV_BIN:-}"
if [ "$KV_BIN" = aot ]; then KV_BIN="$(bash "$ROOT/scripts/publish-kv-aot.sh" | tail -1)"
elif [ -z "$KV_BIN" ] && [ -z "${NO_BUILD:-}" ]; then dotnet build "$ROOT/apps/EioSharp.Kv" -c Release -v q -nologo >/dev/null; fi

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
wait_ping() { for _ in $(seq 1 400); do [ "$(redis-cli -p "$1" ping 2>/dev/null)" = "PONG" ] && return 0; sleep 0.05; done; echo "no server on $1" >&2; exit 1; }
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
anon_kb() { awk '/^RssAnon/ {print $2}' "/proc/$1/status"; } # private memory: RSS less mapped files (code, shared libraries)

# gen <type> > file: the RESP commands that load the data set
gen() {
  python3 - "$1" "$STRING_KEYS" "$COLLECTIONS" "$MEMBERS" "$VALUE_BYTES" <<'PY'
import sys
t, nkeys, ncoll, nmem, vbytes = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
out = sys.stdout.buffer
def cmd(*args):
    parts = [b"*%d\r\n" % len(args)]
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(a), a))
    out.write(b"".join(parts))
if t == "string":
    for i in range(nkeys):
        cmd("SET", "key:%d" % i, ("v%015d" % i * (vbytes // 16 + 1))[:vbytes])  # VALUE_BYTES-byte values
else:
    for k in range(ncoll):
        key = "%s:%d" % (t, k)
        for start in range(0, nmem, 50):
            ms = range(start, min(nmem, start + 50))
            if t == "hash": cmd("HSET", key, *[x for m in ms for x in ("f%d" % m, "v%d" % m)])
            elif t == "set": cmd("SADD", key, *["m%d" % m for m in ms])
            elif t == "zset": cmd("ZADD", key, *[x for m in ms for x in (str(m), "m%d" % m)])
            elif t == "list": cmd("RPUSH", key, *["m%d" % m for m in ms])
PY
}

# measure <server: redis|kv> <type> -> prints RSS in KB
measure() {
  local port; port=$(free_port)
  local dir="$WORK/$1-$2"; mkdir -p "$dir"
  if [ "$1" = redis ]; then
    redis-server --port "$port" --bind 127.0.0.1 --dir "$dir" --save '' --appendonly no --daemonize no --logfile "$dir/log" &
  else
    if [ -n "$KV_BIN" ]; then "$KV_BIN" --port "$port" --dir "$dir" --appendonly no >"$dir/log" 2>&1 &
    else dotnet "$KV_DLL" --port "$port" --dir "$dir" --appendonly no >"$dir/log" 2>&1 &
    fi
  fi
  PID=$!
  wait_ping "$port"
  local base; base=$(rss_kb "$PID")
  local abase; abase=$(anon_kb "$PID")
  redis-cli -p "$port" --pipe <"$WORK/$2.resp" >/dev/null
  redis-cli -p "$port" debug gc >/dev/null 2>&1 || true
  # Settle: EioSharp.Kv trims and compacts its heap once it has been idle for 1 s (docs/kv.md "Memory"); its RSS drops
  # 2-3 s after the load. Read the RSS once it has not changed for 1 s, at least 6 s and at most 24 s after the load.
  sleep 5
  local prev=-1 now; now=$(rss_kb "$PID")
  for _ in $(seq 1 18); do
    [ "$now" = "$prev" ] && break
    sleep 1; prev=$now; now=$(rss_kb "$PID")
  done
  local rss; rss=$(rss_kb "$PID")
  local anon; anon=$(anon_kb "$PID")
  local keys; keys=$(redis-cli -p "$port" dbsize)
  if [ -n "${SMAPS_DIR:-}" ]; then mkdir -p "$SMAPS_DIR"; cat "/proc/$PID/smaps" >"$SMAPS_DIR/$1-$2.smaps"; cat "/proc/$PID/status" >"$SMAPS_DIR/$1-$2.status"; fi
  kill "$PID"; wait "$PID" 2>/dev/null || true; PID=""
  echo "$rss $base $keys $anon $abase"; [ -n "${VERBOSE:-}" ] && echo "$1 $2 rss=$rss base=$base" >&2
}

echo "| data set | keys | redis-server RSS | EioSharp.Kv RSS | ratio | redis B/item | Kv B/item | redis RssAnon | Kv RssAnon | anon ratio | empty server RSS redis/Kv |"
echo "|---|---|---|---|---|---|---|---|---|---|---|"
for t in $TYPES; do
  gen "$t" >"$WORK/$t.resp"
  read -r r rbase rkeys ra rabase < <(measure redis "$t")
  read -r k kbase kkeys ka kabase < <(measure kv "$t")
  if [ "$t" = string ]; then items=$STRING_KEYS; label="$STRING_KEYS strings ($VALUE_BYTES B)"; else items=$((COLLECTIONS * MEMBERS)); case $t in hash) plural=hashes;; *) plural=${t}s;; esac; label="$COLLECTIONS $plural x $MEMBERS"; fi
  python3 - "$label" "$rkeys/$kkeys" "$r" "$k" "$rbase" "$kbase" "$items" "$ra" "$ka" <<'PY'
import sys
label, keys, r, k, rb, kb, items, ra, ka = sys.argv[1], sys.argv[2], *map(int, sys.argv[3:])
print(f"| {label} | {keys} | {r/1024:.0f} MB | {k/1024:.0f} MB | {k/r:.2f}x | {(r-rb)*1024/items:.0f} | {(k-kb)*1024/items:.0f} | {ra/1024:.0f} MB | {ka/1024:.0f} MB | {ka/ra:.2f}x | {rb/1024:.0f}/{kb/1024:.0f} MB |")
PY
  rm -f "$WORK/$t.resp"
done
