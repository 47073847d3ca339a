#!/usr/bin/env bash
# The hinted sleep's latency guard (issues 12 and 14, session 35, h198, rationale §196): what KvBatchWait's wait for
# company (at most 100 µs) adds to a request. For each TARGET (`redis`, a path of EioSharp.Kv.dll, or `V=x,W=y@path` for
# that Kv with that environment; bench/lib/servers.sh's spec), one server started once (redis-server: --appendonly no,
# as bench/kv-vs-redis.sh runs it; Kv: its defaults, AOF everysec), then REPEATS rounds, targets alternating within a
# round, of these rows:
#   c50-set, c50-get   redis-benchmark -c 50 -n N_C50 -r 100000 -d 16 -t set|get --csv: ops/s, p50 and p99 (ms, as
#                      redis-benchmark rounds them)
#   sparse-R           bench/lib/sparse-latency.py: SPARSE_CLIENTS clients (16), each one GET at a time at R requests
#                      per second (Poisson), SPARSE_SECONDS (8) measured: p50 / p99 / mean µs from the client
# and per row the server's CPU per request (µs: the sum of its threads' /proc/PID/task/*/schedstat run time over the row).
# Prints each round's values, then medians per row and target.
#
#   REPEATS=5 bash bench/kv-batch-wait-latency.sh redis EIOSHARP_KV_BATCH_WAIT=0@K K     # K = .../EioSharp.Kv.dll
#
# Environment: REPEATS (5), ROWS ("c50-set c50-get sparse-200 sparse-1000 sparse-3000"), N_C50 (200000),
# SPARSE_CLIENTS (16), SPARSE_SECONDS (8).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
REPEATS=${REPEATS:-5}; N_C50=${N_C50:-200000}
ROWS=${ROWS:-c50-set c50-get sparse-200 sparse-1000 sparse-3000}
SPARSE_CLIENTS=${SPARSE_CLIENTS:-16}; SPARSE_SECONDS=${SPARSE_SECONDS:-8}
[ $# -gt 0 ] || { sed -n '2,17p' "$0"; exit 2; }
source "$ROOT/bench/lib/servers.sh" kv-bw-latency
cpu_ns() { cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{s += $1} END {printf "%.0f", s}'; }
declare -a PORT PID
i=0
for target in "$@"; do
  if [ "$target" = redis ]; then start_server redis; else start_server "$target" -- --appendonly yes --appendfsync everysec --save ""; fi
  PORT[$i]=$SERVER_PORT; PID[$i]=$SERVER_PID; i=$((i + 1))
done
echo "Targets: $*"
echo "Load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
RES="$WORK/results"; : >"$RES"
for t in "${!PORT[@]}"; do # warm-up: the JIT's tiers (Kv) and the keys
  redis-benchmark -p "${PORT[$t]}" -c 50 -n 100000 -r 100000 -d 16 -t set,get -q >/dev/null 2>&1
done
for rep in $(seq 1 "$REPEATS"); do
  for row in $ROWS; do
    for t in "${!PORT[@]}"; do
      port=${PORT[$t]}; pid=${PID[$t]}
      c0=$(cpu_ns "$pid")
      case $row in
        c50-*)
          out=$(redis-benchmark -h 127.0.0.1 -p "$port" -c 50 -n "$N_C50" -r 100000 -d 16 -t "${row#c50-}" --csv 2>/dev/null | tail -1 | tr -d '"')
          n=$N_C50
          vals=$(echo "$out" | awk -F, '{printf "ops=%s p50=%s p99=%s", $2, $5, $7}') ;;
        sparse-*)
          out=$(python3 "$ROOT/bench/lib/sparse-latency.py" "$port" "$SPARSE_CLIENTS" "${row#sparse-}" "$SPARSE_SECONDS" 1)
          n=$(echo "$out" | sed -n 's/.*sent=\([0-9]*\).*/\1/p')
          n=$(awk -v n="$n" -v s="$SPARSE_SECONDS" 'BEGIN {print int(n * (s + 1) / s)}') # the warm second's requests too
          vals=$(echo "$out" | awk '{for (i = 1; i <= NF; i++) {split($i, kv, "="); if (kv[1] == "p50_us") a = kv[2]; if (kv[1] == "p99_us") b = kv[2]; if (kv[1] == "mean_us") m = kv[2]; if (kv[1] == "achieved_rps") r = kv[2]}; printf "ops=%s p50=%s p99=%s mean=%s", r, a, b, m}') ;;
      esac
      c1=$(cpu_ns "$pid")
      cpu=$(awk -v a="$c0" -v b="$c1" -v n="$n" 'BEGIN {printf "%.2f", (b - a) / 1000 / n}')
      echo "$row t$t $vals cpu=$cpu load=$(cut -d' ' -f1 /proc/loadavg)" | tee -a "$RES"
    done
  done
done
echo "Load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "Medians of $REPEATS (per-round values in order):"
python3 - "$RES" "$@" <<'PY'
import sys, statistics, collections
rows = collections.OrderedDict()
for l in open(sys.argv[1]):
    f = l.split(); row, t = f[0], f[1]
    kv = dict(x.split('=') for x in f[2:])
    rows.setdefault(row, collections.OrderedDict()).setdefault(t, []).append(kv)
targets = sys.argv[2:]
for row, ts in rows.items():
    print('### ' + row)
    for t, runs in ts.items():
        keys = [k for k in runs[0] if k != 'load']
        parts = []
        for k in keys:
            v = [float(r[k]) for r in runs]
            parts.append('%s %s (%s)' % (k, '%.3g' % statistics.median(v) if k.startswith('p') and row.startswith('c50') else '%.1f' % statistics.median(v), ' '.join(r[k] for r in runs)))
        print('  %-4s %-60s %s' % (t, targets[int(t[1:])][-60:], '; '.join(parts)))
PY
