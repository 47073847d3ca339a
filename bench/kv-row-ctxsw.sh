#!/usr/bin/env bash
# One KV redis-benchmark row against one EioSharp.Kv build on one backend: throughput, server CPU per request, and the
# server's voluntary / involuntary context switches per 1,000 requests (all its threads, /proc/PID/task/*/status).
# Context switches tell a sleep (voluntary) from a preemption by the woken client (involuntary), which CPU alone does not.
#
#   bash bench/kv-row-ctxsw.sh DLL BACKEND TEST N REDIS-BENCHMARK-ARGS...
#   e.g. bash bench/kv-row-ctxsw.sh /tmp/s12-new/kv/EioSharp.Kv.dll uring set 160000 -c 50 -P 16 -d 16
# Server: 127.0.0.1, a free port, Kv defaults (appendonly yes, everysec) plus KV_ARGS; 20,000 requests of warm-up first.
set -u
DLL=$1; BE=$2; T=$3; N=$4; shift 4
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
D=$(mktemp -d /tmp/kv-row-ctxsw.XXXXXX)
# shellcheck disable=SC2086
dotnet "$DLL" --port "$PORT" --bind 127.0.0.1 --dir "$D/data" --maxclients 10000 --backend "$BE" ${KV_ARGS:-} >"$D/log" 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null; wait $PID 2>/dev/null; rm -rf "$D"' EXIT
for _ in $(seq 1 400); do [ "$(redis-cli -p "$PORT" ping 2>/dev/null)" = PONG ] && break; sleep 0.05; done
redis-benchmark -p "$PORT" -n 20000 -r 100000 -t "$T" "$@" -q >/dev/null 2>&1
csw() {
  local v=0 n=0 f a b
  for f in /proc/$PID/task/*/status; do
    read -r a b < <(awk '/^voluntary_ctxt_switches/ {v=$2} /^nonvoluntary_ctxt_switches/ {n=$2} END {print v+0, n+0}' "$f" 2>/dev/null || echo 0 0)
    v=$((v + ${a:-0})); n=$((n + ${b:-0}))
  done
  echo "$v $n"
}
read -r v0 n0 < <(csw); c0=$(awk '{print $14+$15}' "/proc/$PID/stat")
rps=$(redis-benchmark -p "$PORT" -n "$N" -r 100000 -t "$T" --csv "$@" 2>/dev/null | awk -F'","' 'NR>1 {gsub(/"/,"",$2); print $2; exit}')
c1=$(awk '{print $14+$15}' "/proc/$PID/stat"); read -r v1 n1 < <(csw)
python3 -c "print('$BE $T rps=$rps cpu_us=%.2f vcs/kreq=%.1f ivcs/kreq=%.1f load=$(cut -d' ' -f1 /proc/loadavg)' % (($c1-$c0)*1e6/$(getconf CLK_TCK)/$N, ($v1-$v0)*1000/$N, ($n1-$n0)*1000/$N))"
