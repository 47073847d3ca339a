#!/usr/bin/env bash
# errno marshalling calls (libSystem.Native SystemNative_GetErrNo/SetErrNo: a P/Invoke with SetLastError=true makes one of
# each per call) and io_uring_enter per request, by uprobe and tracepoint, over one redis-benchmark run of N requests
# (issue 14, session 29, h170). Needs root (perf probe). The uprobes hit every process that uses libSystem.Native: run alone.
#
#   bash bench/kv-errno-calls.sh PATH/EioSharp.Kv.dll ROW N      # ROW: c1-get, c1-set, c50-get, c50-set
set -u
dll=$1; row=$2; n=$3
SN=$(ls /usr/share/dotnet/shared/Microsoft.NETCore.App/*/libSystem.Native.so | tail -1)
perf probe -q -x $SN -a SystemNative_GetErrNo 2>/dev/null; perf probe -q -x $SN -a SystemNative_SetErrNo 2>/dev/null
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
d=$(mktemp -d /tmp/kv-errno-calls.XXXXXX)
dotnet "$dll" --port "$port" --bind 127.0.0.1 --dir "$d/data" >"$d/out" 2>&1 &
pid=$!
for _ in $(seq 600); do [ "$(redis-cli -p "$port" ping 2>/dev/null)" = PONG ] && break; sleep 0.1; done
c=${row%%-*}; t=${row#*-}
run() { redis-benchmark -p "$port" -n "$1" -r 100000 -c "${c#c}" -d 16 -t "$t" -q >/dev/null; }
run "$n"; run "$n"
perf stat -x, -o "$d/perf" -e probe_libSystem:SystemNative_GetErrNo,probe_libSystem:SystemNative_SetErrNo,syscalls:sys_enter_io_uring_enter -p "$pid" &
pp=$!; sleep 0.5
run "$n"
kill -INT $pp; wait $pp
printf '%s %s:' "$dll" "$row"
awk -F, -v n="$n" '$1 ~ /^[0-9]+$/ { printf "  %s %.3f", $3, $1 / n } END { print "  (per request)" }' "$d/perf"
kill "$pid"; wait "$pid" 2>/dev/null; rm -rf "$d"
perf probe -q -d 'probe_libSystem:*' 2>/dev/null
