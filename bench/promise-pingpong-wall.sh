#!/usr/bin/env bash
# CPU and wall time per promise round trip, base vs new build vs .NET's TaskCompletionSource (issue 20, session 15, h95).
# Each round runs base PromisePingPong, new PromisePingPong, then TaskCompletionSourcePingPong from the new build, with the
# loop driver (W warm-up invocations, C timed ones, 20,000 round trips each); prints the load average per round.
# Usage: BASE=/tmp/s15-base/bench/EioSharp.Benchmarks.dll NEW=bench/EioSharp.Benchmarks/bin/Release/net10.0/EioSharp.Benchmarks.dll \
#        ROUNDS=3 W=20 C=50 bash bench/promise-pingpong-wall.sh
set -euo pipefail
cd "$(dirname "$0")/.."
BASE=${BASE:-/tmp/s15-base/bench/EioSharp.Benchmarks.dll}
NEW=${NEW:-$PWD/bench/EioSharp.Benchmarks/bin/Release/net10.0/EioSharp.Benchmarks.dll}
ROUNDS=${ROUNDS:-3}; W=${W:-20}; C=${C:-50}
export EIOSHARP_BENCH_JOB=cli
for r in $(seq 1 "$ROUNDS"); do
  echo "round $r load $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "base $(dotnet "$BASE" loop CorePromisePingPong PromisePingPong "$W" "$C")"
  echo "new  $(dotnet "$NEW" loop CorePromisePingPong PromisePingPong "$W" "$C")"
  echo "net  $(dotnet "$NEW" loop CorePromisePingPong TaskCompletionSourcePingPong "$W" "$C")"
done
