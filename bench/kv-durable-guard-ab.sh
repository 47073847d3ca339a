#!/usr/bin/env bash
# The durable row's schedules in one binary (session 34, h195, issue 14; rationale §191): 50 clients SET with fsync always
# (redis-benchmark -c 50 -d 16 -r 100000 -t set, as kv-vs-redis.sh's durable-c50) against one EioSharp.Kv server per
# schedule, all started at once and kept for the whole run, the runs alternating between them (drift hits all alike):
#   off      EIOSHARP_KV_ALWAYS_OVERLAP=0   one cohort (the wait expects every writer)
#   overlap  EIOSHARP_KV_ALWAYS_OVERLAP=1   overlapped rounds, unguarded (session 33's default)
#   guard    (unset)                        the overlap behind its guard (h195's default)
#   zero     EIOSHARP_KV_ALWAYS_ZERO_TAIL=1 the guard's schedule with the AOF's tail prepared ahead with written zeros
#            (a data-only fdatasync per round; session 36, h201, rationale §201); zero0: the same with it =0 (off)
#   (since session 38, h213, §210, the zero tail is the server's default: off, overlap and guard have it too; a build
#   before that has it only with =1)
#   redis    redis-server --appendonly yes --appendfsync always
# Each run: N SETs; prints ops/s, server CPU (utime+stime from /proc) per request, fsyncs per request (INFO aof_fsyncs),
# then per schedule the medians. At the end each Kv server's summary at exit (its `h149:` line: the guard's probes and
# decisions). Run it under bench/with-load.sh for a controlled load.
#
#   DLL=path/EioSharp.Kv.dll [MODES="off overlap guard"] (or e.g. MODES="guard zero redis") [REPEATS=5] [N=40000] [WARM_SECONDS=5] bash bench/kv-durable-guard-ab.sh
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
source "$ROOT/bench/lib/servers.sh" kv-durable-guard-ab
DLL=${DLL:?DLL=path/EioSharp.Kv.dll}; MODES=${MODES:-off overlap guard}; REPEATS=${REPEATS:-5}; N=${N:-40000}
WARM_SECONDS=${WARM_SECONDS:-5}
declare -A PORT=() PID=() DIRS=()
for m in $MODES; do
  case $m in
    off) start_server "$DLL" EIOSHARP_KV_ALWAYS_OVERLAP=0 -- --appendfsync always --maxclients 10000 ;;
    overlap) start_server "$DLL" EIOSHARP_KV_ALWAYS_OVERLAP=1 -- --appendfsync always --maxclients 10000 ;;
    guard) start_server "$DLL" -- --appendfsync always --maxclients 10000 ;;
    zero) start_server "$DLL" EIOSHARP_KV_ALWAYS_ZERO_TAIL=1 -- --appendfsync always --maxclients 10000 ;;
    zero0) start_server "$DLL" EIOSHARP_KV_ALWAYS_ZERO_TAIL=0 -- --appendfsync always --maxclients 10000 ;;
    redis) start_server redis -- --appendonly yes --appendfsync always ;;
    *) echo "unknown mode $m" >&2; exit 2 ;;
  esac
  PORT[$m]=$SERVER_PORT; PID[$m]=$SERVER_PID; DIRS[$m]=$SERVER_DIR
done
rb() { redis-benchmark -h 127.0.0.1 -p "$1" -n "$2" -r 100000 -d 16 -c 50 -t set --csv 2>/dev/null | awk -F'","' 'NR>1 {gsub(/"/,"",$2); print $2; exit}'; }
fsyncs() { redis-cli -p "$1" info persistence 2>/dev/null | awk -F: '/^aof_fsyncs:/ {print $2+0; f=1} END {if (!f) print -1}' | tr -d '\r'; }
t0=$(date +%s)
while [ $(( $(date +%s) - t0 )) -lt "$WARM_SECONDS" ]; do for m in $MODES; do rb "${PORT[$m]}" 5000 >/dev/null; done; done
RES="$WORK/results"; : >"$RES"
echo "start $(date -u +%H:%M:%S), load $(cut -d' ' -f1-3 /proc/loadavg), N=$N REPEATS=$REPEATS"
for rep in $(seq 1 "$REPEATS"); do
  for m in $MODES; do
    p=${PORT[$m]}; pid=${PID[$m]}
    f0=$(fsyncs "$p"); c0=$(awk '{print $14+$15}' "/proc/$pid/stat")
    rps=$(rb "$p" "$N")
    c1=$(awk '{print $14+$15}' "/proc/$pid/stat"); f1=$(fsyncs "$p")
    line=$(python3 -c "print('$m', '$rps', '%.2f' % (($c1-$c0)*1e6/$CLK_TCK/$N), ('%.4f' % (($f1-$f0)/$N)) if $f0 >= 0 else 'n/a')")
    echo "$line" >>"$RES"; echo "  run $rep $line load $(cut -d' ' -f1 /proc/loadavg)"
  done
done
python3 - "$RES" $MODES <<'PY'
import sys, statistics as st
rows = [l.split() for l in open(sys.argv[1])]
modes = sys.argv[2:]
med = {}
for m in modes:
    r = [x for x in rows if x[0] == m]
    ops = [float(x[1]) for x in r]; cpu = [float(x[2]) for x in r]; fs = [x[3] for x in r]
    med[m] = (st.median(ops), st.median(cpu))
    print(f"{m:8s} ops/s median {st.median(ops):9.0f} [{' '.join('%.0f' % v for v in ops)}]  cpu us/req median {st.median(cpu):6.2f} [{' '.join('%.1f' % v for v in cpu)}]  fsyncs/req [{' '.join(fs)}]")
base = modes[0]
for m in modes[1:]:
    print(f"{m} vs {base}: ops/s {med[m][0]/med[base][0]:.2f}x, cpu/req {med[m][1]/med[base][1]:.2f}x")
PY
echo "end $(date -u +%H:%M:%S), load $(cut -d' ' -f1-3 /proc/loadavg)"
for m in $MODES; do kill "${PID[$m]}" 2>/dev/null; wait "${PID[$m]}" 2>/dev/null || true; done
for m in $MODES; do [ "$m" != redis ] && grep -h 'h149:' "${DIRS[$m]}/log" | sed "s/^/  $m: /"; done
exit 0
