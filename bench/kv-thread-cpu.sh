#!/usr/bin/env bash
# Per-thread CPU (user/sys us per request, from /proc/PID/task/*/stat) of a server over RUNS consecutive
# `redis-benchmark -c 50 -P 16 -d 16 -t set -n N` runs on one fresh server.  usage: bench/kv-thread-cpu.sh kv|redis [KV_DLL] [N]
# (KV_ARGS / REDIS_ARGS: more server arguments; RUNS=4; an environment such as DOTNET_TieredPGO=0 reaches the server)
set -euo pipefail
which=$1; dll=${2:-/tmp/s16-base/kv/EioSharp.Kv.dll}; n=${3:-1000000}
dir=$(mktemp -d /tmp/kv-thread-cpu.XXXX); port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
case $which in
  kv) DOTNET_PerfMapEnabled=${PERFMAP:-0} dotnet $dll --port $port --bind 127.0.0.1 --dir $dir/data --maxclients 10000 ${KV_ARGS:-} >$dir/log 2>&1 & ;;
  redis) redis-server --port $port --bind 127.0.0.1 --dir $dir --save '' --appendonly no --daemonize no --logfile $dir/log ${REDIS_ARGS:-} & ;;
esac
pid=$!
for i in $(seq 200); do [ "$(redis-cli -p $port ping 2>/dev/null)" = PONG ] && break; sleep 0.05; done
snap() { for t in /proc/$pid/task/*; do c=$(cat $t/comm 2>/dev/null | tr ' ' _); st=$(sed 's/.*) //' $t/stat 2>/dev/null | awk '{print $12, $13}'); [ -n "$c" ] && [ -n "$st" ] && echo "$(basename $t) $c $st"; done; true; }
for run in $(seq ${RUNS:-1}); do
snap > $dir/before; grep -E 'voluntary' /proc/$pid/status > $dir/ctx_before
redis-benchmark -p $port -n $n -r 100000 -t set -c 50 -P 16 -d 16 --csv > $dir/bench 2>/dev/null
snap > $dir/after
python3 - $dir/before $dir/after $n <<'PY'
import sys, collections, os
tck=os.sysconf('SC_CLK_TCK'); n=int(sys.argv[3])
b={l.split()[0]:l.split() for l in open(sys.argv[1])}
agg=collections.defaultdict(lambda:[0,0])
for l in open(sys.argv[2]):
    tid,comm,u,s=l.split(); u=int(u); s=int(s)
    if tid in b: u-=int(b[tid][2]); s-=int(b[tid][3])
    agg[comm][0]+=u; agg[comm][1]+=s
tu=sum(v[0] for v in agg.values()); ts=sum(v[1] for v in agg.values())
print(f"total user {tu/tck*1e6/n:.3f} us/req sys {ts/tck*1e6/n:.3f} us/req")
for c,(u,s) in sorted(agg.items(), key=lambda x:-(x[1][0]+x[1][1])):
    if u+s: print(f"  {c:24s} user {u/tck*1e6/n:.3f} sys {s/tck*1e6/n:.3f} us/req")
PY
cat $dir/bench | tail -1
done
kill $pid; wait $pid 2>/dev/null || true
rm -rf "$dir"
