#!/usr/bin/env bash
# io_uring entries, AOF writes and sleeps per request, and server CPU per request, of EioSharp.Kv builds and environment
# variants on the one-request-at-a-time rows (issue 12/14, session 24, h148). For each VARIANT (`label=DLL` or
# `label=DLL:VAR=value,VAR=value`, or `redis`), one fresh server (Kv: its defaults, AOF everysec; redis-server with
# --appendonly yes for the ping-pong as bench/kv-features.sh runs it, no AOF for the redis-benchmark rows as
# bench/kv-vs-redis.sh), warmed with one run of the row, then per row:
#   - a run under `perf stat` of the syscall and scheduler tracepoints (io_uring_enter, pwrite64, write, read,
#     epoll_wait, sched_switch of the server's threads): counts per request, which the machine's load does not move much;
#   - a plain run: the server's CPU (utime+stime of every thread, /proc/PID/stat) per request, and its ops/s.
# Variants alternate within each repeat. Rows: pingpong (bench/EioSharp.Kv.LoadGen; per round trip of four requests),
# c1-set, c1-get (redis-benchmark -c 1 -d 16 -r 100000), c50-set, c50-get (-c 50), p16-set (-c 50 -P 16).
#
#   ROWS="pingpong c1-set" REPEATS=3 bash bench/kv-uring-enters.sh base=/tmp/s24-base/kv/EioSharp.Kv.dll \
#       noprepass=/tmp/s24-base/kv/EioSharp.Kv.dll:EIOSHARP_URING_IDLE_PREPASS=0 redis
#
# Environment: ROWS (pingpong c1-set c1-get), REPEATS (1), N_PP (20000 round trips), N_C1 (40000), N_C50 (200000),
# N_P16 (1000000), LOADGEN_DLL (/tmp/s24-base/loadgen/EioSharp.Kv.LoadGen.dll).
set -u
ROWS=${ROWS:-pingpong c1-set c1-get}; REPEATS=${REPEATS:-1}
N_PP=${N_PP:-20000}; N_C1=${N_C1:-40000}; N_C50=${N_C50:-200000}; N_P16=${N_P16:-1000000}
LG=${LOADGEN_DLL:-/tmp/s24-base/loadgen/EioSharp.Kv.LoadGen.dll}
CLK_TCK=$(getconf CLK_TCK)
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
run_row() { # row port n -> prints ops/s
  case $1 in
    pingpong) dotnet "$LG" pingpong --port "$2" --rounds "$3" --timeout 600 | sed -n 's/.*ops_per_s=\([0-9]*\).*/\1/p' ;;
    c1-set|c1-get) redis-benchmark -p "$2" -n "$3" -r 100000 -c 1 -d 16 -t "${1#c1-}" --csv 2>/dev/null | awk -F'","' 'NR==2 {print $2}' ;;
    c50-set|c50-get) redis-benchmark -p "$2" -n "$3" -r 100000 -c 50 -d 16 -t "${1#c50-}" --csv 2>/dev/null | awk -F'","' 'NR==2 {print $2}' ;;
    p16-set|p16-get) redis-benchmark -p "$2" -n "$3" -r 100000 -c 50 -P 16 -d 16 -t "${1#p16-}" --csv 2>/dev/null | awk -F'","' 'NR==2 {print $2}' ;;
  esac
}
row_n() { case $1 in pingpong) echo "$N_PP" ;; c1-*) echo "$N_C1" ;; c50-*) echo "$N_C50" ;; p16-*) echo "$N_P16" ;; esac; }
for rep in $(seq 1 "$REPEATS"); do
  for row in $ROWS; do
    for variant in "$@"; do
      label=${variant%%=*}; spec=${variant#*=}; dll=${spec%%:*}; envs=""
      [ "$spec" != "$dll" ] && envs=$(echo "${spec#*:}" | tr ',' ' ')
      port=$(free_port); dir=$(mktemp -d /tmp/kv-uring-enters.XXXXXX)
      if [ "$variant" = redis ]; then
        aof=no; [ "$row" = pingpong ] && aof=yes
        redis-server --port "$port" --bind 127.0.0.1 --dir "$dir" --appendonly $aof --save '' --daemonize no --logfile "$dir/log" &
      else
        # shellcheck disable=SC2086
        env $envs dotnet "$dll" --port "$port" --bind 127.0.0.1 --dir "$dir/data" >"$dir/log" 2>&1 &
      fi
      pid=$!
      for _ in $(seq 1 600); do [ "$(redis-cli -p "$port" ping 2>/dev/null)" = PONG ] && break; sleep 0.1; done
      n=$(row_n "$row")
      run_row "$row" "$port" "$n" >/dev/null # warm-up
      perf stat -x, -o "$dir/perf" -e 'syscalls:sys_enter_io_uring_enter,syscalls:sys_enter_pwrite64,syscalls:sys_enter_write,syscalls:sys_enter_read,syscalls:sys_enter_epoll_wait,sched:sched_switch' -p "$pid" &
      pp=$!; sleep 0.5
      run_row "$row" "$port" "$n" >/dev/null
      kill -INT $pp; wait $pp 2>/dev/null
      before=$(cpu_ticks "$pid")
      rate=$(run_row "$row" "$port" "$n")
      after=$(cpu_ticks "$pid")
      kill "$pid"; wait "$pid" 2>/dev/null
      counts=$(awk -F, -v n="$n" '$1 ~ /^[0-9]+$/ { split($3, a, ":"); name = a[2]; sub(/sys_enter_/, "", name); if ($1 / n >= 0.0005) printf "%s %.3f  ", name, $1 / n }' "$dir/perf")
      printf '%s %s run %d: ops/s %s  cpu %.2f us/op  | %s| load %s\n' "$row" "$label" "$rep" "$rate" \
        "$(python3 -c "print(($after - $before) / $CLK_TCK * 1e6 / $n)")" "$counts" "$(cut -d' ' -f1 /proc/loadavg)"
      rm -rf "$dir"
    done
  done
done
