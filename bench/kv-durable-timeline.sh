#!/usr/bin/env bash
# One round's timeline on the durable row (issue 14, session 24, h153): 50 clients SET, fsync always, as
# bench/kv-vs-redis.sh's durable-c50 runs it. For each TARGET (a directory or path of EioSharp.Kv.dll, or "redis"): one
# fresh server started under `strace -f --seccomp-bpf -ttt -T`, tracing only the calls that delimit a round (so the
# per-request calls are not stopped):
#   redis-server: epoll_wait and fdatasync;  EioSharp.Kv: io_uring_enter, pwrite64 and fdatasync (on io_uring the
#   round's fdatasync runs on the store's domain, h149, and its next sleep is one io_uring_enter with min_complete > 1).
# WARM SETs, then N SETs by redis-benchmark; the rounds inside that run are cut at each fdatasync into phases:
#   wait   the server's sleep until the clients are back (redis: epoll_wait; Kv: the hinted io_uring_enter, which also
#          submits the round's sends and runs the receives' task work)
#   apply  from that wake-up to the fdatasync (redis: read, apply, AOF write; Kv: parse, apply, pwrite)
#   fsync  the fdatasync
#   after  from the fdatasync's end to the next wait (redis: its write(2) of each reply; Kv: the replies queued)
# and prints each phase's median/p10/p90 (µs), the cycle, requests per round (redis: epoll_wait's ready count; Kv: the
# pwrite's bytes / 59, one redis-benchmark SET in the AOF) and the cycle per request. Tracing slows both servers; compare
# the shapes, and take ops/s from untraced runs.
#
#   bash bench/kv-durable-timeline.sh TARGET ...
#
# Environment: N (20000), WARM (5000), C (50 clients), KV_ENV (environment for Kv, e.g. EIOSHARP_KV_ALWAYS_SYNC=ring).
set -u
N=${N:-20000}; WARM=${WARM:-5000}; C=${C:-50}
here=$(cd "$(dirname "$0")" && pwd)
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
for target in "$@"; do
  PORT=$(free_port); D=$(mktemp -d /tmp/kv-durable-timeline.XXXXXX); OUT=$D/trace
  if [ "$target" = redis ]; then
    strace -f --seccomp-bpf -ttt -T -e trace=fdatasync,epoll_wait -o "$OUT" redis-server --port "$PORT" --bind 127.0.0.1 \
      --dir "$D" --save '' --appendonly yes --appendfsync always --daemonize no --logfile "$D/log" --maxclients 10000 &
    kind=redis
  else
    dll=$target; [ -d "$dll" ] && dll="$dll/EioSharp.Kv.dll"
    # shellcheck disable=SC2086
    env ${KV_ENV:-} strace -f --seccomp-bpf -ttt -T -e trace=fdatasync,io_uring_enter,pwrite64 -o "$OUT" dotnet "$dll" \
      --port "$PORT" --bind 127.0.0.1 --dir "$D/data" --maxclients 10000 --appendfsync always >"$D/log" 2>&1 &
    kind=kv
  fi
  PID=$!
  for _ in $(seq 1 600); do [ "$(redis-cli -p "$PORT" ping 2>/dev/null)" = PONG ] && break; sleep 0.1; done
  redis-benchmark -p "$PORT" -n "$WARM" -r 100000 -d 16 -c "$C" -t set -q >/dev/null 2>&1
  date +%s.%N >"$OUT.t0"
  rps=$(redis-benchmark -p "$PORT" -n "$N" -r 100000 -d 16 -c "$C" -t set --csv 2>/dev/null | awk -F'","' 'NR>1 {print $2; exit}')
  date +%s.%N >"$OUT.t1"
  SPID=$(pgrep -P "$PID" | head -1)
  kill -TERM "$SPID" 2>/dev/null; sleep 1; kill "$PID" 2>/dev/null; wait "$PID" 2>/dev/null
  echo "== $target ${KV_ENV:-} (traced: $rps ops/s, load $(cut -d' ' -f1 /proc/loadavg))"
  grep -h "h149:" "$D/log" 2>/dev/null | sed 's/.*h149:/  hinted waits:/'
  python3 "$here/kv-durable-timeline.py" "$OUT" "$kind"
  rm -rf "$D"
done
