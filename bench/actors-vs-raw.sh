#!/usr/bin/env bash
# Distributed actors (EioSharp.Actors.Redis) vs raw XADD/XREADGROUP with the same client vs StackExchange.Redis's XADD loop,
# all through one redis-server the benchmark starts on a free loopback port. Results: docs/BENCHMARKS.md.
# Usage: [ACK_BATCH=n] bench/actors-vs-raw.sh [messages=20000] [runs=3] [calls=2000]  (ACK_BATCH: ActorSystemOptions.AckBatch)
set -euo pipefail
cd "$(dirname "$0")/.."
dotnet build bench/EioSharp.Actors.Bench/EioSharp.Actors.Bench.csproj -c Release -v q -nologo >/dev/null
dotnet bench/EioSharp.Actors.Bench/bin/Release/net10.0/EioSharp.Actors.Bench.dll "${1:-20000}" "${2:-3}" "${3:-2000}"
