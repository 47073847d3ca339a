#!/usr/bin/env bash
# Records a fiber trace of EioSharp.Kv under redis-benchmark for SECONDS (default 2) and renders it with
# tools/EioSharp.TraceView into docs/images/kv-trace.svg (picture), kv-trace.html (picture + summary) and
# kv-trace-summary.txt. Rerunnable: bash scripts/trace-kv.sh [SECONDS]
# Needs redis-benchmark (apt-get install redis-tools). The raw trace is kept in $TRACE (default /tmp/kv-trace.json).
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_TO_RUN=${1:-2}
TRACE=${TRACE:-/tmp/kv-trace.json}
OUT=docs/images
mkdir -p "$OUT"
dotnet build apps/EioSharp.Kv -c Release -v quiet -nologo >/dev/null
dotnet build tools/EioSharp.TraceView -c Release -v quiet -nologo >/dev/null
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
DATA=$(mktemp -d)
dotnet apps/EioSharp.Kv/bin/Release/net10.0/EioSharp.Kv.dll --port "$PORT" --dir "$DATA" --trace "$TRACE" >"$DATA/server.log" 2>&1 &
SERVER=$!
trap 'kill "$SERVER" 2>/dev/null || true; rm -rf "$DATA"' EXIT
for _ in $(seq 1 100); do redis-cli -p "$PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
# 20 clients, SET and GET, for SECONDS (redis-benchmark is stopped by timeout; -l loops until then).
timeout "$SECONDS_TO_RUN" redis-benchmark -p "$PORT" -c 20 -t set,get -l -q >/dev/null 2>&1 || true
kill -TERM "$SERVER"  # not SIGINT: a background job of a script starts with SIGINT and SIGQUIT ignored
wait "$SERVER" || true
trap 'rm -rf "$DATA"' EXIT
ls -l "$TRACE"
VIEW=tools/EioSharp.TraceView/bin/Release/net10.0/eiosharp-traceview.dll
TITLE="EioSharp.Kv under redis-benchmark (-c 20 -t set,get) for ${SECONDS_TO_RUN} s"
dotnet "$VIEW" render "$TRACE" -o "$OUT/kv-trace.svg" --title "$TITLE"
dotnet "$VIEW" render "$TRACE" -o "$OUT/kv-trace.html" --title "$TITLE"
dotnet "$VIEW" summary "$TRACE" | tee "$OUT/kv-trace-summary.txt"
