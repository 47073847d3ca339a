#!/usr/bin/env bash
# Installs everything the tests and the servers need on a fresh machine (Debian + .NET SDK):
# redis-tools/redis-server (redis-cli, redis-benchmark, redis-check-aof, and redis-server as the benchmark baseline),
# the npm StatsD peers (hot-shots client, statsd server), and the NuGet packages.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v redis-cli >/dev/null 2>&1 || need_apt+=(redis-tools)
command -v redis-benchmark >/dev/null 2>&1 || need_apt+=(redis-tools)
command -v redis-check-aof >/dev/null 2>&1 || need_apt+=(redis-tools)
command -v redis-server >/dev/null 2>&1 || need_apt+=(redis-server)
# Headless Chromium renders the trace viewer's HTML in a test (tests/EioSharp.Tests/Tracing/TraceViewTests.cs).
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
if [ ${#need_apt[@]} -gt 0 ]; then
  SUDO=""
  if [ "$(id -u)" != 0 ] && command -v sudo >/dev/null 2>&1; then SUDO=sudo; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

if [ -f tests/npm/package.json ] && command -v npm >/dev/null 2>&1; then
  (cd tests/npm && npm install --no-audit --no-fund --loglevel=error >/dev/null)
fi

dotnet restore EioSharp.slnx --verbosity quiet
