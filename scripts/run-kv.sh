#!/usr/bin/env bash
# Builds and runs the EioSharp.Kv server on a fresh machine (Debian + .NET 10 SDK).
# Defaults: 127.0.0.1:6379, data directory ./data (created on first start), appendfsync everysec.
# Extra arguments are passed to the server, e.g.: bash scripts/run-kv.sh --port 6380 --appendfsync always
# With --aot as the first argument it publishes and runs the NativeAOT build (scripts/publish-kv-aot.sh: a few minutes
# the first time; ~10 MB RSS when empty instead of ~48 MB; needs clang or gcc): bash scripts/run-kv.sh --aot --port 6380
# It also installs redis-tools (redis-cli) if missing, so you can try: redis-cli -p 6379 set hello world
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v redis-cli >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
  SUDO=""; if [ "$(id -u)" != 0 ] && command -v sudo >/dev/null 2>&1; then SUDO=sudo; fi
  ($SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq redis-tools >/dev/null) \
    || echo "note: could not install redis-tools; the server runs anyway" >&2
fi
if [ "${1:-}" = --aot ]; then
  shift
  exec "$(bash scripts/publish-kv-aot.sh | tail -1)" "$@"
fi
dotnet build apps/EioSharp.Kv -c Release -v quiet -nologo >/dev/null
exec dotnet apps/EioSharp.Kv/bin/Release/net10.0/EioSharp.Kv.dll "$@"
