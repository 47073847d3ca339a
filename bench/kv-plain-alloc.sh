#!/usr/bin/env bash
# Managed bytes allocated per request of plain INCR, GET and SET (16-byte values) by EioSharp.Kv, 50 clients P1 and
# -P 16, per build: "Allocated since start" (GC.GetTotalAllocatedBytes) from MEMORY MALLOC-STATS before and after N
# requests (the slope between a run of N and one of 3N: per request, without the per-connection cost), in the steady state: every key of the -r range exists first (FILL requests of SET, and of INCR, -P 16: the
# keyspace does not grow during the measured runs, so its tables' growth and new keys' rows are not counted), then a
# warm-up run of the same workload (JIT, pooled buffers). Does not depend on the load.
#
#   bench/kv-plain-alloc.sh KV_DLL...     # e.g. /tmp/base/EioSharp.Kv.dll apps/EioSharp.Kv/bin/Release/net10.0/EioSharp.Kv.dll
#
# Environment: N (100000), REPEATS (3; median printed), TESTS ("set get incr"), PIPES ("1 16"), KV_ARGS (more server
# arguments), VALUE_SIZE (16), RANGE (-r, 100000), FILL (1500000: about 15 x RANGE covers every key).
set -u
N=${N:-100000}; REPEATS=${REPEATS:-3}; TESTS=${TESTS:-"set get incr"}; R=${RANGE:-100000}; FILL=${FILL:-1500000}; PIPES=${PIPES:-"1 16"}; D=${VALUE_SIZE:-16}
[ $# -gt 0 ] || { echo "usage: $0 KV_DLL..." >&2; exit 2; }
allocated() { redis-cli -p "$1" MEMORY MALLOC-STATS | awk -F': ' '/^Allocated since start/ {print $2}'; }
echo "| build | test | -P | bytes allocated per request (median of $REPEATS) | runs |"
echo "|---|---|---:|---:|---|"
for dll in "$@"; do
  d=$(mktemp -d /tmp/kv-plain-alloc.XXXXXX)
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
  # shellcheck disable=SC2086
  dotnet "$dll" --port "$port" --bind 127.0.0.1 --dir "$d" ${KV_ARGS:-} >"$d/log" 2>&1 &
  pid=$!
  for _ in $(seq 1 400); do [ "$(redis-cli -p "$port" ping 2>/dev/null)" = PONG ] && break; sleep 0.05; done
  for t in set incr; do
    redis-benchmark -h 127.0.0.1 -p "$port" -n "$FILL" -r "$R" -c 50 -P 16 -d "$D" -t "$t" -q >/dev/null 2>&1
  done
  for t in $TESTS; do
    for p in $PIPES; do
      redis-benchmark -h 127.0.0.1 -p "$port" -n "$N" -r "$R" -c 50 -P "$p" -d "$D" -t "$t" -q >/dev/null 2>&1
      per=()
      for _ in $(seq 1 "$REPEATS"); do
        # Two runs, of N and 3N requests, each over 50 new connections: the difference is 2N requests' allocation
        # without the connections' own (session buffers: about 35 KB each, i.e. 35 B per request of a 50k run).
        a=$(allocated "$port")
        redis-benchmark -h 127.0.0.1 -p "$port" -n "$N" -r "$R" -c 50 -P "$p" -d "$D" -t "$t" -q >/dev/null 2>&1
        b=$(allocated "$port")
        redis-benchmark -h 127.0.0.1 -p "$port" -n "$((3 * N))" -r "$R" -c 50 -P "$p" -d "$D" -t "$t" -q >/dev/null 2>&1
        c=$(allocated "$port")
        per+=("$(python3 -c "print(round((($c-$b)-($b-$a))/(2*$N),1))")")
      done
      median=$(printf '%s\n' "${per[@]}" | sort -g | sed -n "$(( (REPEATS + 1) / 2 ))p")
      echo "| $dll | $t | $p | $median | ${per[*]} |"
    done
  done
  kill "$pid"; wait "$pid" 2>/dev/null; rm -rf "$d"
done
