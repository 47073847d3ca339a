#!/usr/bin/env bash
# Unpipelined SET vs GET by count (issue 14, session 21, h137): for each TARGET (a directory or path of EioSharp.Kv.dll,
# or "redis"), one fresh server (redis-server: --save '' --appendonly no, as bench/kv-vs-redis.sh runs it; EioSharp.Kv: its
# defaults, AOF everysec, plus KV_ARGS), warmed with WARM SETs and GETs, then for each row (50 clients P1 and 1 client;
# SET, then GET):
#   - a plain run of N requests: server CPU (utime+stime, /proc/PID/stat) and voluntary / involuntary context switches
#     (every thread, /proc/PID/task/*/status) per request;
#   - a run of S requests under `strace -f -c` (attached to the running server): syscalls per request, by name.
# The load of a shared machine moves the CPU figure; the counts are what to compare.
#
#   bash bench/kv-p1-set-counts.sh TARGET ...
#
# Environment: N50 (100000), N1 (20000), S50 (20000), S1 (5000), WARM (40000), KV_ARGS, KV_ENV (environment for Kv).
set -u
N50=${N50:-100000}; N1=${N1:-20000}; S50=${S50:-20000}; S1=${S1:-5000}; WARM=${WARM:-40000}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
csw() {
  local v=0 n=0 f a b
  for f in /proc/$PID/task/*/status; do
    read -r a b < <(awk '/^voluntary_ctxt_switches/ {v=$2} /^nonvoluntary_ctxt_switches/ {n=$2} END {print v+0, n+0}' "$f" 2>/dev/null || echo 0 0)
    v=$((v + ${a:-0})); n=$((n + ${b:-0}))
  done
  echo "$v $n"
}
for target in "$@"; do
  PORT=$(free_port); D=$(mktemp -d /tmp/kv-p1-set-counts.XXXXXX)
  if [ "$target" = redis ]; then
    redis-server --port "$PORT" --bind 127.0.0.1 --dir "$D" --save '' --appendonly no --daemonize no --logfile "$D/log" &
    name=redis
  else
    dll=$target; [ -d "$dll" ] && dll="$dll/EioSharp.Kv.dll"
    # shellcheck disable=SC2086
    env ${KV_ENV:-} dotnet "$dll" --port "$PORT" --bind 127.0.0.1 --dir "$D/data" --maxclients 10000 ${KV_ARGS:-} >"$D/log" 2>&1 &
    name=$target
  fi
  PID=$!
  for _ in $(seq 1 600); do [ "$(redis-cli -p "$PORT" ping 2>/dev/null)" = PONG ] && break; sleep 0.1; done
  redis-benchmark -p "$PORT" -n "$WARM" -r 100000 -d 16 -c 50 -t set,get -q >/dev/null 2>&1
  redis-benchmark -p "$PORT" -n "$((WARM / 4))" -r 100000 -d 16 -c 1 -t set,get -q >/dev/null 2>&1
  for row in "50 $N50 $S50" "1 $N1 $S1"; do
    read -r c n s <<<"$row"
    for t in set get; do
      read -r v0 i0 < <(csw); c0=$(awk '{print $14+$15}' "/proc/$PID/stat")
      rps=$(redis-benchmark -p "$PORT" -n "$n" -r 100000 -d 16 -c "$c" -t "$t" --csv 2>/dev/null | awk -F'","' 'NR>1 {gsub(/"/,"",$2); print $2; exit}')
      c1=$(awk '{print $14+$15}' "/proc/$PID/stat"); read -r v1 i1 < <(csw)
      strace -f -c -p "$PID" -o "$D/strace.$c.$t" 2>/dev/null &
      SP=$!; sleep 1
      redis-benchmark -p "$PORT" -n "$s" -r 100000 -d 16 -c "$c" -t "$t" -q >/dev/null 2>&1
      sleep 0.3; kill -INT "$SP"; wait "$SP" 2>/dev/null
      sc=$(awk -v s="$s" '$1 ~ /^[0-9.]+$/ && $NF != "total" && $4 / s >= 0.001 { printf "%s %.3f, ", $NF, $4 / s }' "$D/strace.$c.$t")
      tot=$(awk -v s="$s" '$NF == "total" { printf "%.3f", $4 / s }' "$D/strace.$c.$t")
      python3 -c "print('$name c$c $t rps=$rps cpu_us=%.2f vcs/req=%.3f ivcs/req=%.3f syscalls/req=$tot [$sc] load=$(cut -d' ' -f1 /proc/loadavg)' % (($c1-$c0)*1e6/$(getconf CLK_TCK)/$n, ($v1-$v0)/$n, ($i1-$i0)/$n))"
    done
  done
  kill "$PID"; wait "$PID" 2>/dev/null; rm -rf "$D"
done
