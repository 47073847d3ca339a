#!/usr/bin/env bash
# Installs everything the tests and the servers need on a fresh machine (Debian + .NET SDK):
# redis-tools/redis-server (redis-cli, redis-benchmark, redis-check-aof, and redis-server as the benchmark baseline),
# the npm StatsD peers (hot-shots client, statsd server), the NativeAOT toolchain (clang as the native linker, zlib1g-dev and
# libc6-dev for the libraries it links; the ILCompiler packages themselves come from NuGet when scripts/publish-kv-aot.sh
# restores), and the NuGet packages.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v redis-cli >/dev/null 2>&1 || need_apt+=(redis-tools)
command -v redis-benchmark >/dev/null 2>&1 || need_apt+=(redis-tools)
command -v redis-check-aof >/dev/null 2>&1 || need_apt+=(redis-tools)
command -v redis-server >/dev/null 2>&1 || need_apt+=(redis-server)
# Headless Chromium renders the trace viewer's HTML in a test (tests/EioSharp.Tests/Tracing/TraceViewTests.cs).
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
# NativeAOT (scripts/publish-kv-aot.sh: the KV server users run and CI tests): clang (or any clang-N) links the native
# executable; it links -lz and libc/libm/libdl/librt/libpthread.
if ! command -v clang >/dev/null 2>&1 && [ -z "$(compgen -c clang- | grep -E '^clang-[0-9]+$' | head -1)" ]; then need_apt+=(clang); fi
dpkg -s zlib1g-dev >/dev/null 2>&1 || need_apt+=(zlib1g-dev)
dpkg -s libc6-dev >/dev/null 2>&1 || need_apt+=(libc6-dev)
# scripts/test.sh prints failed tests' messages and .NET crash reports' summaries (scripts/crash-summary.py) with python3.
command -v python3 >/dev/null 2>&1 || need_apt+=(python3)
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
# The NativeAOT publish of the KV server (scripts/publish-kv-aot.sh, run by scripts/test.sh and scripts/run-kv.sh): its
# linux-x64 target and the ILCompiler packages go into the same assets files now, so that the publish needs no restore
# of its own, which would rewrite every referenced project's assets and compile the libraries a second time (minutes).
dotnet restore apps/EioSharp.Kv -r linux-x64 -p:PublishAot=true --verbosity quiet \
  || echo "note: the NativeAOT restore of EioSharp.Kv failed; scripts/publish-kv-aot.sh will restore (and report) itself" >&2
