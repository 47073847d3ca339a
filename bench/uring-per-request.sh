#!/usr/bin/env bash
# Work per request of one server on one backend (issue 15, session 15): fiber resumes (the domains' work items, the
# EioSharp meter's eiosharp.domain.work_items read by dotnet-counters), the domains' idle waits (eiosharp.domain.idle_waits,
# new in session 15: n/a on older builds; a round that ran nothing shows here as one wait more) and CPU per request in a
# plain run, then, in a
# second run under `strace -c -f` attached to EVERY thread of the server (the session-14 script's strace missed the I/O
# threads: its SIGINT was ignored by the backgrounded strace, which then never wrote its summary), syscalls per request.
# strace slows the server and so changes batching: its counts are for "what calls does a request make", not for time.
#
#   bash bench/uring-per-request.sh MODE DLL BACKEND N [ENV=VALUE ...]
#   MODE echo:    DLL = bench/EioSharp.Benchmarks's dll; server `echo-server BACKEND`; client 50 connections, each N/50
#                 round trips of a 16-byte line (the echo row of bench/echo-backends.sh); "request" = one round trip.
#   MODE get|set: DLL = apps/EioSharp.Kv's dll (Kv defaults: appendonly yes, everysec); redis-benchmark -t MODE -c 50
#                 -d 16 -r 100000 -n N (P1; PIPELINE=16 for -P 16).
#   e.g. bash bench/uring-per-request.sh get /tmp/s15-base/kv/EioSharp.Kv.dll uring 100000
# Needs dotnet-counters for the resume count: one on PATH, else the script installs 10.0.750501 into bench/.tools (gitignored,
# like kv-vs-redis.sh's Garnet); without it
# the resumes column says n/a. Loopback only, free ports; every process started here is stopped by its pid.
set -u
cd "$(dirname "$0")/.."
MODE=$1; DLL=$2; BE=$3; N=$4; shift 4
ENVS="$*"
export PATH="$PATH:$HOME/.dotnet/tools"
P=${PIPELINE:-1}
CONNS=50
freeport() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
D=$(mktemp -d /tmp/uring-per-req.XXXXXX)
PID=""; FIFO_OPEN=0
stop_server() {
  if [ -n "$PID" ]; then
    if [ "$MODE" = echo ]; then exec 9>&-; else kill "$PID" 2>/dev/null; fi
    wait "$PID" 2>/dev/null; PID=""
  fi
}
trap 'stop_server; rm -rf "$D"' EXIT
start_server() {
  if [ "$MODE" = echo ]; then
    mkfifo "$D/fifo"; : >"$D/port"
    # shellcheck disable=SC2086
    env $ENVS dotnet "$DLL" echo-server "$BE" <"$D/fifo" >"$D/port" 2>"$D/log" & PID=$!
    exec 9>"$D/fifo"
    for _ in $(seq 200); do [ -s "$D/port" ] && break; sleep 0.05; done
    PORT=$(head -1 "$D/port"); rm -f "$D/fifo"
  else
    PORT=$(freeport)
    # shellcheck disable=SC2086
    env $ENVS dotnet "$DLL" --port "$PORT" --bind 127.0.0.1 --dir "$D/data" --maxclients 10000 --backend "$BE" >"$D/log" 2>&1 & PID=$!
    for _ in $(seq 1 400); do [ "$(redis-cli -p "$PORT" ping 2>/dev/null)" = PONG ] && break; sleep 0.05; done
  fi
}
client() { # N
  if [ "$MODE" = echo ]; then
    dotnet "$DLL" echo-client "$PORT" "$CONNS" $(( $1 / CONNS )) 2>/dev/null \
      | sed -E 's/.*rt_per_s=([0-9]+).*/\1/'
  else
    redis-benchmark -p "$PORT" -n "$1" -r 100000 -t "$MODE" -c "$CONNS" -P "$P" -d 16 --csv 2>/dev/null \
      | awk -F'","' 'NR>1 {gsub(/"/,"",$2); print $2; exit}'
  fi
}
ticks() { awk '{print $14+$15}' "/proc/$PID/stat"; }

# Run 1: resumes and CPU per request.
start_server
w0=$(date +%s.%N)
client $(( N / 5 )) >/dev/null # warm-up
w1=$(date +%s.%N)
resumes=n/a; idle=n/a
COUNTERS=$(command -v dotnet-counters || true)
if [ -z "$COUNTERS" ]; then
  TOOLS="$(cd "$(dirname "$0")" && pwd)/.tools"
  [ -x "$TOOLS/dotnet-counters" ] || dotnet tool install dotnet-counters --version 10.0.750501 --tool-path "$TOOLS" >/dev/null 2>&1 || true
  [ -x "$TOOLS/dotnet-counters" ] && COUNTERS="$TOOLS/dotnet-counters"
fi
if [ -n "$COUNTERS" ]; then
  # It writes its file only when its --duration ends (neither SIGINT nor a "q" on a redirected stdin stops it cleanly
  # here): the duration covers the measured run, estimated at 3x the warm-up's time per request plus 8 s of margin;
  # the intervals after the run are idle and only add the background rate, which is subtracted.
  dur=$(awk -v a="$w0" -v b="$w1" 'BEGIN { s = int((b-a)*5*3) + 8; printf "00:00:%02d:%02d", s/60, s%60 }')
  "$COUNTERS" collect -p "$PID" --counters 'EioSharp[eiosharp.domain.work_items,eiosharp.domain.idle_waits]' --refresh-interval 1 --format csv \
    -o "$D/counters.csv" --duration "$dur" </dev/null >/dev/null 2>&1 & CPID=$!
  sleep 3 # session start, then at least one idle interval
fi
c0=$(ticks)
rps=$(client "$N")
c1=$(ticks)
if [ -n "${CPID:-}" ]; then
  wait "$CPID" 2>/dev/null
  # Rates per interval (work items per second, per domain): the sum over all intervals and domains is the items run
  # while the session was open; the idle intervals' rate (the smallest interval total) is the background subtracted.
  per_req() { awk -F, -v n="$N" -v c="$1" 'NR>1 && $3 ~ c { t[$1]+=$NF } END { min=-1; s=0; k=0; for (i in t) { s+=t[i]; k++; if (min<0||t[i]<min) min=t[i] } if (k==0) { print "n/a"; exit } printf "%.3f", (s - min*k)/n }' "$D/counters.csv"; }
  resumes=$(per_req work_items)
  idle=$(per_req idle_waits) # eiosharp.domain.idle_waits: builds from session 15 on
fi
stop_server
cpu=$(awk -v a="$c0" -v b="$c1" -v t="$(getconf CLK_TCK)" -v n="$N" 'BEGIN { printf "%.2f", (b-a)/t*1e6/n }')

# Run 2: syscalls per request under strace (a fresh server).
sys=""
if [ "${STRACE:-1}" = 1 ]; then
  rm -rf "$D/data"
  start_server
  client $(( N / 5 )) >/dev/null
  strace -c -f -q -p "$PID" -o "$D/strace" 2>/dev/null & SPID=$!
  sleep 1.5
  client "$N" >/dev/null
  kill -TERM "$SPID" 2>/dev/null; wait "$SPID" 2>/dev/null
  stop_server
  sys=$(awk -v n="$N" '$NF ~ /^[a-z_0-9]+$/ && $4 ~ /^[0-9]+$/ && $NF != "total" { c[$NF]=$4; tot+=$4 } END { printf "syscalls/req=%.3f", tot/n; for (k in c) if (c[k]/n >= 0.005) printf " %s=%.3f", k, c[k]/n }' "$D/strace")
fi
echo "$MODE $BE $(basename "$(dirname "$DLL")") n=$N rps=$rps cpu_us/req=$cpu resumes/req=$resumes idle_waits/req=$idle $sys load=$(cut -d' ' -f1 /proc/loadavg)"
