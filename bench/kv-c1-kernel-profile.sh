#!/usr/bin/env bash
# Where a one-client (unpipelined) request's CPU goes, in microseconds per request per function, kernel and user, the
# same way on every server (issue 14, session 31, h180): `perf record -e cpu-clock -c PERIOD` (one sample per PERIOD ns
# of the server's CPU, every thread) over one run of N requests after a warm-up, then samples x PERIOD / N per symbol.
#
#   bash bench/kv-c1-kernel-profile.sh LABEL=SPEC ...
#
# SPEC as bench/kv-c1-kernel-counts.sh (`redis`, `PATH/EioSharp.Kv.dll|more|args`, `V=x,W=y@SPEC`). Prints for each
# target and TEST the TOP symbols (µs per request) and the kernel/user split; the perf data stays in OUT (/tmp/h180/prof)
# as LABEL.TEST.data. The JIT's code is named through its perf map (DOTNET_PerfMapEnabled=1, set for Kv targets).
# Environment: TESTS ("get"), N (40000), WARM_SECONDS (10), PERIOD (100000 ns: shorter periods inflate the CPU on this VM), TOP (40), OUT.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
source "$ROOT/bench/lib/servers.sh" kv-c1-kernel-profile
TESTS=${TESTS:-get}
N=${N:-40000}
WARM_SECONDS=${WARM_SECONDS:-10}
PERIOD=${PERIOD:-100000}
TOP=${TOP:-40}
OUT=${OUT:-/tmp/h180/prof}
mkdir -p "$OUT"
run_c1() { # port test n
  redis-benchmark -p "$1" -n "$3" -r 100000 -c 1 -d 16 -t "$2" --csv 2>/dev/null | awk -F'","' 'NR==2 {gsub(/"/, "", $2); print $2}'
}
for target in "$@"; do
  label=${target%%=*}
  start_server "${target#*=}" DOTNET_PerfMapEnabled=1
  port=$SERVER_PORT; pid=$SERVER_PID
  end=$((SECONDS + WARM_SECONDS))
  run_c1 "$port" set 8000 >/dev/null; run_c1 "$port" get 8000 >/dev/null
  while [ $SECONDS -lt $end ]; do run_c1 "$port" set 8000 >/dev/null; run_c1 "$port" get 8000 >/dev/null; done
  for test in $TESTS; do
    data="$OUT/$label.$test.data"
    perf record -q -e cpu-clock -c "$PERIOD" -p "$pid" -o "$data" 2>/dev/null &
    pp=$!; sleep 0.5
    rate=$(run_c1 "$port" "$test" "$N")
    kill -INT $pp; wait $pp 2>/dev/null || true
    echo "== $label c1-$test: ops/s $rate, load $(cut -d' ' -f1 /proc/loadavg); us per request (PERIOD $PERIOD ns, N $N)"
    perf report -i "$data" --stdio --sort sym -F sample,sym 2>/dev/null | awk -v p="$PERIOD" -v n="$N" '
      /^#/ || NF < 3 { next }
      { s = $1; tot += s; if ($2 == "[k]") ks += s; else us += s
        sym = ""; for (i = 3; i <= NF; i++) sym = sym " " $i; printf "%9.3f %s%s\n", s * p / 1000 / n, $2, sym }
      END { printf "%9.3f total us/req: kernel %.2f, user %.2f\n", tot * p / 1000 / n + 1e6, ks * p / 1000 / n, us * p / 1000 / n }' |
      sort -rn | head -n $((TOP + 1)) | sed 's/^ *1[0-9]\{6\}\.[0-9]* total/  total/'  || true
  done
  kill "$pid"; wait "$pid" 2>/dev/null || true
done
