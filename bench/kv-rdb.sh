#!/usr/bin/env bash
# RDB files, EioSharp.Kv against redis-server 7.0.15 (issue 13, branches h42/h52): SAVE time and file size with
# rdbcompression yes and no, and the CPU time of loading a file at start.
#
#   bash bench/kv-rdb.sh [RUNS]        # default 3 runs of each measurement
#
# KV_BIN: the EioSharp.Kv executable (e.g. the NativeAOT one from scripts/publish-kv-aot.sh); default: the JIT build
# (dotnet apps/EioSharp.Kv/bin/Release/net10.0/EioSharp.Kv.dll, built beforehand).
# Dataset (the same RESP piped into both with redis-cli --pipe): 200,000 strings of 10-200 bytes (runs of one letter),
# 2,000 hashes of 100 fields, 2,000 lists of 100 elements, 1,000 sorted sets of 100 members: 205,000 keys.
# SAVE: wall time of `redis-cli SAVE`. Load: the server's CPU time (utime+stime from /proc) from exec until it logs
# "DB loaded from disk", less its CPU time from exec to ready with no file (startup, JIT of the startup path): CPU time
# rather than wall time because the machine is shared and the wall time of a 2-second load varies 3x with the load.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-3}
ROOT=$(pwd)
if [ -n "${KV_BIN:-}" ]; then KV=("$KV_BIN"); else KV=(dotnet "$ROOT/apps/EioSharp.Kv/bin/Release/net10.0/EioSharp.Kv.dll"); fi
W=$(mktemp -d /tmp/kv-rdb.XXXX)
trap 'kill $KVPID 2>/dev/null || true; redis-cli -p $RPORT shutdown nosave >/dev/null 2>&1 || true; rm -rf "$W"' EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
KPORT=$(free_port); RPORT=$(free_port); KVPID=0
python3 - "$W/data.resp" <<'EOF'
import random, sys
r = random.Random(1)
out = open(sys.argv[1], 'wb')
def cmd(*a):
    b = b'*%d\r\n' % len(a)
    for x in a:
        x = x if isinstance(x, bytes) else str(x).encode()
        b += b'$%d\r\n%s\r\n' % (len(x), x)
    out.write(b)
for i in range(200000): cmd('SET', 'str:%d' % i, bytes([97 + r.randrange(26)]) * r.randint(10, 200))
for i in range(2000):
    a = ['HSET', 'hash:%d' % i]
    for j in range(100): a += ['f%d' % j, 'v%d' % r.randrange(100000)]
    cmd(*a)
for i in range(2000): cmd('RPUSH', 'list:%d' % i, *['e%d' % r.randrange(100000) for j in range(100)])
for i in range(1000):
    a = ['ZADD', 'zset:%d' % i]
    for j in range(100): a += [str(r.random() * 1000), 'm%d' % j]
    cmd(*a)
EOF
mkdir -p "$W/kv" "$W/r"
"${KV[@]}" --port "$KPORT" --dir "$W/kv" --appendonly no > "$W/kv.log" 2>&1 & KVPID=$!
redis-server --port "$RPORT" --save '' --appendonly no --dir "$W/r" --daemonize yes --logfile "$W/r/redis.log"
for i in $(seq 1 200); do redis-cli -p "$KPORT" ping >/dev/null 2>&1 && redis-cli -p "$RPORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
redis-cli -p "$KPORT" --pipe < "$W/data.resp" | tail -1
redis-cli -p "$RPORT" --pipe < "$W/data.resp" | tail -1
ms() { local s; s=$(date +%s%N); redis-cli -p "$1" SAVE > /dev/null; echo $(( ($(date +%s%N) - s) / 1000000 )); }
echo "SAVE (ms, file bytes):"
for i in $(seq 1 "$RUNS"); do
  redis-cli -p "$KPORT" config set rdbcompression yes > /dev/null; a=$(ms "$KPORT"); sa=$(stat -c %s "$W/kv/dump.rdb"); cp "$W/kv/dump.rdb" "$W/kv-lzf.rdb"
  redis-cli -p "$KPORT" config set rdbcompression no > /dev/null; b=$(ms "$KPORT"); sb=$(stat -c %s "$W/kv/dump.rdb"); cp "$W/kv/dump.rdb" "$W/kv-raw.rdb"
  c=$(ms "$RPORT"); sc=$(stat -c %s "$W/r/dump.rdb"); cp "$W/r/dump.rdb" "$W/redis.rdb"
  echo "  kv rdbcompression yes: $a ms ($sa B)   kv no: $b ms ($sb B)   redis-server yes: $c ms ($sc B)"
done
kill "$KVPID"; wait "$KVPID" 2>/dev/null || true; KVPID=0
redis-cli -p "$RPORT" shutdown nosave > /dev/null 2>&1 || true

tick=$(getconf CLK_TCK)
cpu() { awk -v t="$tick" '{print ($14+$15)/t}' "/proc/$1/stat"; }
run_until() { # $1 dir, $2 log pattern, $3 kv|redis: prints the CPU seconds at the pattern
  local pid
  if [ "$3" = kv ]; then "${KV[@]}" --port "$KPORT" --dir "$1" --appendonly no > "$1/log" 2>&1 & pid=$!
  else redis-server --port "$RPORT" --save '' --appendonly no --dir "$1" --logfile "$1/log" > /dev/null 2>&1 & pid=$!; fi
  for i in $(seq 1 2400); do grep -q "$2" "$1/log" 2>/dev/null && break; sleep 0.05; done
  cpu "$pid"; kill "$pid"; wait "$pid" 2>/dev/null || true
}
echo "Load at start, CPU seconds (load less start):"
for f in kv-lzf.rdb kv-raw.rdb redis.rdb; do
  for i in $(seq 1 "$RUNS"); do
    e=$(mktemp -d "$W/e.XXXX"); kb=$(run_until "$e" "EioSharp.Kv ready" kv)
    d=$(mktemp -d "$W/d.XXXX"); cp "$W/$f" "$d/dump.rdb"; kl=$(run_until "$d" "DB loaded from disk" kv)
    e=$(mktemp -d "$W/e.XXXX"); rb=$(run_until "$e" "Ready to accept" redis)
    d=$(mktemp -d "$W/d.XXXX"); cp "$W/$f" "$d/dump.rdb"; rl=$(run_until "$d" "DB loaded from disk" redis)
    python3 -c "print('  $f: kv %.2f s, redis-server %.2f s, ratio %.2f' % ($kl-$kb, $rl-$rb, ($kl-$kb)/max($rl-$rb,0.01)))"
  done
done
