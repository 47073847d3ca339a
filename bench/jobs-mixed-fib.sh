#!/usr/bin/env bash
# Mixed-fib benchmark for EioSharp.Jobs (docs/BENCHMARKS.md, "Jobs server (mixed-fib)").
# Builds Release, measures heavy capacity (closed-loop FIB 32 against the pool server), then for each mode starts the
# server on a free loopback port, runs the open-loop generator at idle, 0.5, 0.9 and 1.2 of that capacity, and kills the
# server by pid. Prints one table for all modes (medians over REPEAT runs).
# Usage: bench/jobs-mixed-fib.sh            env: REPEAT=1 DURATION=10 MODES="pool inline threadpool" LEVELS=idle,0.5,0.9,1.2
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
REPEAT=${REPEAT:-1}
DURATION=${DURATION:-10}
MODES=${MODES:-pool inline threadpool}
LEVELS=${LEVELS:-idle,0.5,0.9,1.2}
SERVER_ARGS=${SERVER_ARGS:-}

echo "building Release..." >&2
dotnet build -c Release "$ROOT/apps/EioSharp.Jobs" -v q -nologo >/dev/null
dotnet build -c Release "$ROOT/bench/EioSharp.Jobs.LoadGen" -v q -nologo >/dev/null
SERVER_DLL="$ROOT/apps/EioSharp.Jobs/bin/Release/net10.0/EioSharp.Jobs.dll"
LOADGEN_DLL="$ROOT/bench/EioSharp.Jobs.LoadGen/bin/Release/net10.0/EioSharp.Jobs.LoadGen.dll"
RESULTS=$(mktemp)
SERVER_PID=
cleanup() { if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

start_server() { # mode -> sets SERVER_PID, PORT
  PORT=$(free_port)
  local log; log=$(mktemp)
  # shellcheck disable=SC2086
  dotnet "$SERVER_DLL" --port "$PORT" --mode "$1" $SERVER_ARGS >"$log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 100); do
    if grep -q "ready" "$log"; then echo "  $(head -1 "$log")" >&2; return 0; fi
    sleep 0.1
  done
  echo "server did not start: $(cat "$log")" >&2; exit 1
}

stop_server() { kill "$SERVER_PID"; wait "$SERVER_PID" || true; SERVER_PID=; }

echo "cores: $(nproc), load average before: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
for rep in $(seq "$REPEAT"); do
  start_server pool
  CAP=$(dotnet "$LOADGEN_DLL" --port "$PORT" --calibrate 5 --levels "" | sed -n 's/^CAPACITY heavy_per_s=\([0-9.]*\).*/\1/p')
  stop_server
  echo "run $rep: heavy capacity (FIB 32, pool) = $CAP/s" >&2
  echo "CAPACITY rep=$rep heavy_per_s=$CAP" >>"$RESULTS"
  for mode in $MODES; do
    start_server "$mode"
    dotnet "$LOADGEN_DLL" --port "$PORT" --capacity "$CAP" --duration "$DURATION" --levels "$LEVELS" --label "$mode" --seed "$rep" \
      | sed "s/^RESULT /RESULT rep=$rep /" | tee -a "$RESULTS" >&2
    stop_server
  done
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)" >&2

python3 - "$RESULTS" <<'PY'
import sys, statistics, collections
caps, rows = [], collections.OrderedDict()
for line in open(sys.argv[1]):
    kv = dict(p.split("=", 1) for p in line.split()[1:] if "=" in p)
    if line.startswith("CAPACITY"):
        caps.append(float(kv["heavy_per_s"]))
    elif line.startswith("RESULT"):
        rows.setdefault((kv["label"], kv["level"]), []).append(kv)
def med(rs, k, scale=1.0):
    xs = [float(r[k]) for r in rs if r[k] not in ("NaN", "")]
    return statistics.median(xs) / scale if xs else float("nan")
print(f"heavy capacity (FIB 32, pool, closed loop): median {statistics.median(caps):.1f}/s over {len(caps)} run(s): {', '.join(f'{c:.1f}' for c in caps)}")
print()
print("| mode | load | req/s | cheap p50 ms | cheap p99 ms | cheap p99.9 ms | heavy/s | heavy % cap | BUSY | lost | loop lag p99 ms | loop lag max ms | gen late p99 ms |")
print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for (label, level), rs in rows.items():
    print(f"| {label} | {level} | {med(rs,'rate'):.0f} | {med(rs,'cheap_p50_us',1000):.2f} | {med(rs,'cheap_p99_us',1000):.2f} | {med(rs,'cheap_p999_us',1000):.2f} "
          f"| {med(rs,'heavy_per_s'):.1f} | {med(rs,'heavy_pct_cap'):.0f} | {med(rs,'busy'):.0f} | {med(rs,'lost'):.0f} "
          f"| {med(rs,'lag_p99_us',1000):.2f} | {med(rs,'lag_max_us',1000):.1f} | {med(rs,'send_late_p99_us',1000):.2f} |")
print()
print(f"(medians over {max(len(r) for r in rows.values())} run(s); {len(caps)} capacity measurement(s))")
PY
