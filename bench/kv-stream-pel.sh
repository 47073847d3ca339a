#!/usr/bin/env bash
# A large PEL: N entries added (XADD s <i>-1 ...), then delivered to 4 consumers without acknowledgement (XREADGROUP COUNT
# 100, consumers in turn), then acknowledged oldest first (XACK of 100 IDs), each phase piped with redis-cli --pipe.
# Prints, per phase, the managed bytes allocated per entry (MEMORY MALLOC-STATS "Allocated since start"; 0 for
# redis-server) and the server's CPU time per entry (utime+stime from /proc/PID/stat; clock-tick resolution). The
# read phase's bytes include what the PEL keeps per pending entry.
#
#   bench/kv-stream-pel.sh redis|KV_DLL [N=200000]
set -euo pipefail
DLL=$1; N=${2:-200000}
W=$(mktemp -d /tmp/kv-stream-pel.XXXXXX)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
if [ "$DLL" = redis ]; then redis-server --port "$PORT" --bind 127.0.0.1 --dir "$W" --daemonize no --logfile "$W/log" --save '' &
else dotnet "$DLL" --port "$PORT" --bind 127.0.0.1 --dir "$W" --appendonly no --save '' >"$W/log" 2>&1 & fi
PID=$!
trap 'kill $PID 2>/dev/null; wait $PID 2>/dev/null; rm -rf "$W"' EXIT
for _ in $(seq 1 200); do [ "$(redis-cli -p "$PORT" ping 2>/dev/null)" = PONG ] && break; sleep 0.05; done
ticks() { awk '{ print $14 + $15 }' "/proc/$PID/stat"; }
alloc() { [ "$DLL" = redis ] && { echo 0; return; }; redis-cli -p "$PORT" MEMORY MALLOC-STATS | awk -F': ' '/^Allocated since start/ { print $2 }'; }
python3 - "$N" "$W" <<'PY'
import sys
n=int(sys.argv[1]); d=sys.argv[2]
def cmd(out,*a):
    b=b'*%d\r\n'%len(a)
    for x in a:
        x=x.encode() if isinstance(x,str) else x
        b+=b'$%d\r\n%s\r\n'%(len(x),x)
    out.write(b)
with open(d+'/add','wb') as o:
    for i in range(1,n+1): cmd(o,'XADD','s',f'{i}-1','job','payload-0123456789')
with open(d+'/read','wb') as o:
    for j in range(n//100): cmd(o,'XREADGROUP','GROUP','g',f'c{j%4}','COUNT','100','STREAMS','s','>')
with open(d+'/ack','wb') as o:
    for j in range(n//100): cmd(o,'XACK','s','g',*[f'{i}-1' for i in range(j*100+1,j*100+101)])
PY
redis-cli -p "$PORT" XGROUP CREATE s g '$' MKSTREAM >/dev/null
redis-cli -p "$PORT" --pipe <"$W/add" >/dev/null
out=""
for phase in read ack; do
  a=$(alloc); t0=$(ticks)
  redis-cli -p "$PORT" --pipe <"$W/$phase" >/dev/null
  b=$(alloc); t1=$(ticks)
  [ "$phase" = read ] && pending=$(redis-cli -p "$PORT" XPENDING s g | head -1)
  out+=" ${phase}_bytes_per_entry=$(( (b - a) / N )) ${phase}_cpu_us_per_entry=$(python3 -c "print(round(($t1 - $t0) / $(getconf CLK_TCK) * 1e6 / $N, 2))")"
done
echo "$([ "$DLL" = redis ] && echo redis-server || echo "$DLL")$out pending_after_read=$pending pending_after_ack=$(redis-cli -p "$PORT" XPENDING s g | head -1)"
