#!/usr/bin/env bash
# Managed bytes allocated, GC collections and server CPU per request of 1 KB SETs (50 clients -P 16) on keys that
# already exist, per EioSharp.Kv build: the allocation count does not depend on the machine's load. Each build runs on
# a fresh server: FILL requests of fill, then N measured ones, on the same -r 100000 keys; "Allocated since start" and
# the per-generation collection counts come from MEMORY MALLOC-STATS before and after the measured run.
#
#   bench/kv-set-alloc.sh BEFORE.dll AFTER.dll        # e.g. /tmp/base/EioSharp.Kv.dll apps/EioSharp.Kv/bin/Release/net10.0/EioSharp.Kv.dll
#
# Environment: N (100000), FILL (200000), REPEATS (2), KV_ARGS (more server arguments, e.g. "--appendonly no").
set -u
N=${N:-100000}; FILL=${FILL:-200000}; REPEATS=${REPEATS:-2}
[ $# -gt 0 ] || { echo "usage: $0 KV_DLL..." >&2; exit 2; }
CLK_TCK=$(getconf CLK_TCK)
gcs() { redis-cli -p "$1" MEMORY MALLOC-STATS | grep -o "Generation [0-2]: .*collections [0-9]*" | sed "s/Generation \([0-9]\).*collections \([0-9]*\)/g\1=\2/" | tr "\n" " "; }
allocated() { redis-cli -p "$1" MEMORY MALLOC-STATS | awk -F': ' '/^Allocated since start/ {print $2}'; }
for rep in $(seq 1 "$REPEATS"); do
  for dll in "$@"; do
    d=$(mktemp -d /tmp/kv-set-alloc.XXXXXX)
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
    # shellcheck disable=SC2086
    dotnet "$dll" --port "$port" --bind 127.0.0.1 --dir "$d" ${KV_ARGS:-} >"$d/log" 2>&1 &
    pid=$!
    for _ in $(seq 1 400); do [ "$(redis-cli -p "$port" ping 2>/dev/null)" = PONG ] && break; sleep 0.05; done
    redis-benchmark -h 127.0.0.1 -p "$port" -n "$FILL" -r 100000 -c 50 -P 16 -d 1024 -t set -q >/dev/null 2>&1
    a0=$(allocated "$port"); g0=$(gcs "$port"); t0=$(awk '{print $14+$15+$16+$17}' "/proc/$pid/stat")
    redis-benchmark -h 127.0.0.1 -p "$port" -n "$N" -r 100000 -c 50 -P 16 -d 1024 -t set -q >/dev/null 2>&1
    t1=$(awk '{print $14+$15+$16+$17}' "/proc/$pid/stat"); a1=$(allocated "$port"); g1=$(gcs "$port")
    echo "run $rep $dll: bytes/req $(python3 -c "print(round(($a1-$a0)/$N,1))"), CPU us/req $(python3 -c "print(round(($t1-$t0)*1e6/$CLK_TCK/$N,2))"), GCs before [$g0] after [$g1]"
    kill "$pid"; wait "$pid" 2>/dev/null; rm -rf "$d"
  done
done
