#!/usr/bin/env bash
# Instructions per request of the EioSharp.Kv server (every thread of the server process, user space), counted by valgrind
# (cachegrind, no cache or branch simulation): a figure the machine's load does not move (issue 20: the KV server's CPU
# per request before and after a kernel change; session 14).
#
# For each build the server runs twice under valgrind, fully optimised (DOTNET_TieredCompilation=0,
# DOTNET_JitEnableOptionalRelocs=0, as bench/trace-overhead-instructions.sh explains), with --appendonly no (no AOF, so no
# disk work and no shutdown rewrite): WARM requests (warm-up), then N requests in one run and 2N in the other
# (redis-benchmark, CLIENTS clients, pipeline 1, -r 100000 -d 16, TEST), then SIGTERM. The difference of the two totals
# divided by N is the instructions per request with start-up, JIT, warm-up and shutdown removed.
#
#   bench/kv-request-instructions.sh DIR_A DIR_B ...   # dirs holding EioSharp.Kv.dll (e.g. /tmp/s13-new/kv and this tree's build)
#
# Environment: TIERED (unset), N (20000), WARM (5000), CLIENTS (50), TEST (set,get: redis-benchmark -t), ROUNDS (1).
set -euo pipefail
N="${N:-20000}"; WARM="${WARM:-5000}"; CLIENTS="${CLIENTS:-50}"; TEST="${TEST:-set,get}"; ROUNDS="${ROUNDS:-1}"
command -v valgrind >/dev/null || { echo "valgrind is not installed" >&2; exit 1; }
# TIERED=1: keep tiered compilation (start-up under valgrind with every method compiled FullOpts took > 10 min at load
# 50-80 in session 14); the warm-up (WARM, default then 20000) must then bring the request path to tier 1 before the
# counted requests, and DOTNET_TieredPGO=0 keeps the instrumented tier out.
if [ -n "${TIERED:-}" ]; then
  export DOTNET_TieredPGO=0 DOTNET_gcConcurrent=0 DOTNET_EnableWriteXorExecute=0 DOTNET_JitEnableOptionalRelocs=0
  WARM="${WARM_TIERED:-20000}"
else
  export DOTNET_TieredCompilation=0 DOTNET_gcConcurrent=0 DOTNET_EnableWriteXorExecute=0 DOTNET_JitEnableOptionalRelocs=0
fi

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# run <dir> <requests per test> -> prints the total instructions
run() {
  local dir=$1 n=$2 port work pid
  port=$(free_port); work=$(mktemp -d /tmp/kv-req-instr.XXXXXX)
  mkdir -p "$work/data"
  nice valgrind --tool=cachegrind --cache-sim=no --branch-sim=no --cachegrind-out-file=/dev/null \
    dotnet "$dir/EioSharp.Kv.dll" --port "$port" --bind 127.0.0.1 --dir "$work/data" --appendonly no \
    >"$work/log" 2>&1 &
  pid=$!
  for _ in $(seq 1 600); do
    redis-cli -p "$port" ping >/dev/null 2>&1 && break
    sleep 1
  done
  redis-benchmark -p "$port" -c "$CLIENTS" -n "$WARM" -P 1 -r 100000 -d 16 -t "$TEST" -q >/dev/null
  [ -n "${TIERED:-}" ] && sleep 5 # let the tier-1 compiles queued by the warm-up finish
  redis-benchmark -p "$port" -c "$CLIENTS" -n "$n" -P 1 -r 100000 -d 16 -t "$TEST" -q >"$work/bench" 2>&1
  kill -TERM "$pid"; wait "$pid" 2>/dev/null || true
  local ir
  ir=$(awk '/I *refs:/ { gsub(",", "", $NF); print $NF }' "$work/log")
  if [ -z "$ir" ]; then echo "run failed ($dir, $n):" >&2; tail -20 "$work/log" >&2; rm -rf "$work"; return 1; fi
  rm -rf "$work"
  echo "$ir"
}

tests=$(tr ',' '\n' <<<"$TEST" | grep -c .)
for round in $(seq 1 "$ROUNDS"); do
  for dir in "$@"; do
    a=$(run "$dir" "$N"); b=$(run "$dir" $((2 * N)))
    echo "round=$round build=$dir test=$TEST clients=$CLIENTS instructions_per_request=$(( (b - a) / (N * tests) )) (totals $a $b; N=$N per test)"
  done
done
