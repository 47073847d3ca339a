#!/usr/bin/env bash
# The stream workload made deterministic (no timing decides how many reads block or how many entries a read gets):
# N messages, each = XADD s <i>-1 job payload-0123456789; XREADGROUP GROUP g c1 COUNT 10 BLOCK 1000 STREAMS s > (one
# entry, never blocks); XACK s g <i>-1, piped with redis-cli --pipe after a warm-up of the same N. Prints the managed
# bytes allocated per message (EioSharp.Kv's MEMORY MALLOC-STATS "Allocated since start"; 0 for redis-server) and the
# server's CPU time per message (utime+stime+cutime+cstime from /proc/PID/stat; clock-tick resolution).
#
#   bench/kv-stream-pipe.sh redis|KV_DLL [N=20000]     # REDIS_ARGS / KV_ARGS: extra server arguments
set -euo pipefail
DLL=$1; N=${2:-20000}
W=$(mktemp -d /tmp/kv-stream-pipe.XXXXXX)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
if [ "$DLL" = redis ]; then redis-server --port "$PORT" --bind 127.0.0.1 --dir "$W" --daemonize no --logfile "$W/log" ${REDIS_ARGS:-} &
else dotnet "$DLL" --port "$PORT" --bind 127.0.0.1 --dir "$W" ${KV_ARGS:-} >"$W/log" 2>&1 & fi
PID=$!
trap 'kill $PID 2>/dev/null; wait $PID 2>/dev/null; rm -rf "$W"' EXIT
for _ in $(seq 1 200); do [ "$(redis-cli -p "$PORT" ping 2>/dev/null)" = PONG ] && break; sleep 0.05; done
ticks() { awk '{ print $14 + $15 + $16 + $17 }' "/proc/$PID/stat"; }
alloc() { [ "$DLL" = redis ] && { echo 0; return; }; redis-cli -p "$PORT" MEMORY MALLOC-STATS | awk -F': ' '/^Allocated since start/ { print $2 }'; }
python3 - "$N" "$W/cmds" <<'PY'
import sys
n=int(sys.argv[1])
def cmd(*a):
    b=b'*%d\r\n'%len(a)
    for x in a:
        x=x.encode() if isinstance(x,str) else x
        b+=b'$%d\r\n%s\r\n'%(len(x),x)
    out.write(b)
for base in (0, n):
    out=open(sys.argv[2]+str(base//n),'wb')
    for i in range(1,n+1):
        k=base+i
        cmd('XADD','s',f'{k}-1','job','payload-0123456789')
        cmd('XREADGROUP','GROUP','g','c1','COUNT','10','BLOCK','1000','STREAMS','s','>')
        cmd('XACK','s','g',f'{k}-1')
PY
redis-cli -p "$PORT" XGROUP CREATE s g '$' MKSTREAM >/dev/null
redis-cli -p "$PORT" --pipe <"$W/cmds0" >/dev/null  # warm-up
a=$(alloc); t0=$(ticks)
redis-cli -p "$PORT" --pipe <"$W/cmds1" >/dev/null
b=$(alloc); t1=$(ticks)
label=$([ "$DLL" = redis ] && echo "redis-server ${REDIS_ARGS:-}" || echo "$DLL ${KV_ARGS:-}")
echo "$label bytes_per_message=$(( (b - a) / N )) cpu_us_per_message=$(python3 -c "print(round(($t1 - $t0) / $(getconf CLK_TCK) * 1e6 / $N, 2))") xlen=$(redis-cli -p "$PORT" XLEN s) pending=$(redis-cli -p "$PORT" XPENDING s g | head -1)"
