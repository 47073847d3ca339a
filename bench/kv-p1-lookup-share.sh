#!/usr/bin/env bash
# Share of the Kv domain's user-time samples (perf record -e cpu-clock:u, JIT perf map) in the key lookup (KvStore::*,
# KvDatabase::*), the session's RunBatchAsync and the store's RunInline/RunRequest, over one redis-benchmark run of N
# requests after 300,000 SETs (so GETs hit) and two warm runs (issue 14, session 29, h170). PREFETCH: EIOSHARP_KV_PREFETCH.
# The 14 hottest symbols of the last run go to /tmp/kv-p1-lookup-share.top.
#
#   bash bench/kv-p1-lookup-share.sh PATH/EioSharp.Kv.dll ROW N PREFETCH(0|1)
set -u
dll=$1; row=$2; n=$3; pf=$4
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
d=$(mktemp -d /tmp/kv-p1-lookup-share.XXXXXX)
EIOSHARP_KV_PREFETCH=$pf DOTNET_PerfMapEnabled=1 DOTNET_EnableWriteXorExecute=0 dotnet "$dll" --port "$port" --bind 127.0.0.1 --dir "$d/data" >"$d/out" 2>&1 &
pid=$!
for _ in $(seq 600); do [ "$(redis-cli -p "$port" ping 2>/dev/null)" = PONG ] && break; sleep 0.1; done
c=${row%%-*}; t=${row#*-}
run() { redis-benchmark -p "$port" -n "$1" -r 100000 -c "${c#c}" -d 16 -t "$t" -q >/dev/null; }
redis-benchmark -p "$port" -n 300000 -r 100000 -c 50 -d 16 -t set -q >/dev/null; for i in 1 2; do run "$n"; done
perf record -q -o "$d/p.data" -e cpu-clock:u -p "$pid" 2>/dev/null &
pp=$!; sleep 0.5
run "$n"
kill -INT $pp; wait $pp
perf report -i "$d/p.data" --no-children --sort sym --stdio -g none 2>/dev/null > "$d/rep"
tot=$(grep -m1 "^# Samples" "$d/rep" | awk '{print $3}')
look=$(grep -E "KvStore::|KvDatabase::" "$d/rep" | awk '{s+=$1} END {print s+0}')
batch=$(grep -E "RunBatchAsync" "$d/rep" | awk '{s+=$1} END {print s+0}')
inl=$(grep -E "StoreOwner::(RunInline|RunRequest)" "$d/rep" | awk '{s+=$1} END {print s+0}')
grep "%" "$d/rep" | head -14 | grep "%" | cut -c1-140 > /tmp/kv-p1-lookup-share.top; echo "pf=$pf $row samples=$tot lookup%=$look batch%=$batch runinline%=$inl load=$(cut -d' ' -f1 /proc/loadavg)"
kill "$pid"; wait "$pid" 2>/dev/null; rm -rf "$d"
