#!/usr/bin/env bash
# redis-server's fdatasyncs and epoll_waits per request in the durable row (50 clients SET, appendfsync always) without
# stopping it on its other system calls: `strace --seccomp-bpf` traces only the named calls (a full `strace -f -c`, as in
# bench/kv-durable-counts.sh, slows every read and write, which lets more clients into each round). Issue 14, session 24, h149.
#
#   bash bench/redis-durable-fsyncs.sh          # N (20000) measured SETs after WARM (20000), C (50) clients
set -u
N=${N:-20000}; WARM=${WARM:-20000}; C=${C:-50}
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
D=$(mktemp -d /tmp/redis-durable-fsyncs.XXXXXX)
strace -f --seccomp-bpf -e trace=fdatasync,epoll_wait -o "$D/tr" redis-server --port "$PORT" --bind 127.0.0.1 --dir "$D" \
  --save '' --appendonly yes --appendfsync always --daemonize no --logfile "$D/log" &
SP=$!
trap 'redis-cli -p "$PORT" shutdown nosave >/dev/null 2>&1; wait $SP 2>/dev/null; rm -rf "$D"' EXIT
for _ in $(seq 1 100); do [ "$(redis-cli -p "$PORT" ping 2>/dev/null)" = PONG ] && break; sleep 0.1; done
redis-benchmark -p "$PORT" -n "$WARM" -r 100000 -d 16 -c "$C" -t set -q >/dev/null 2>&1
a=$(grep -c fdatasync "$D/tr"); e=$(grep -c epoll_wait "$D/tr")
rps=$(redis-benchmark -p "$PORT" -n "$N" -r 100000 -d 16 -c "$C" -t set --csv 2>/dev/null | awk -F'","' 'NR>1 {gsub(/"/,"",$2); print $2; exit}')
b=$(grep -c fdatasync "$D/tr"); f=$(grep -c epoll_wait "$D/tr")
echo "redis-server c$C set rps=$rps fdatasync/req=$(python3 -c "print(round(($b-$a)/$N,4))") epoll_wait/req=$(python3 -c "print(round(($f-$e)/$N,4))") load=$(cut -d' ' -f1 /proc/loadavg)"
