#!/usr/bin/env bash
# Builds and runs the EioSharp.Kv server on a fresh machine (Debian + .NET 10 SDK).
# Defaults: 127.0.0.1:6379, data directory ./data (created on first start), appendfsync everysec.
# Extra arguments are passed to the server, e.g.: bash scripts/run-kv.sh --port 6380 --appendfsync always
#
# It runs the NativeAOT executable (the build CI tests and whose memory is below redis-server's, docs/BENCHMARKS.md),
# publishing it first when it is missing or older than its sources (scripts/publish-kv-aot.sh: a few minutes the first
# time, then it starts at once). If no C toolchain is found for the native link (clang or gcc; scripts/setup.sh installs
# clang), it says so and runs the JIT build with `dotnet` instead. --jit as the first argument asks for the JIT build
# (~45 MB RSS when empty instead of ~10 MB; more memory per key); --aot is accepted and is the default.
# It also installs redis-tools (redis-cli) if missing, so you can try: redis-cli -p 6379 set hello world
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v redis-cli >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
  SUDO=""; if [ "$(id -u)" != 0 ] && command -v sudo >/dev/null 2>&1; then SUDO=sudo; fi
  ($SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq redis-tools >/dev/null) \
    || echo "note: could not install redis-tools; the server runs anyway" >&2
fi
mode=aot
case "${1:-}" in
  --aot) shift ;;
  --jit) mode=jit; shift ;;
esac
if [ "$mode" = aot ]; then
  set +e
  exe="$(bash scripts/publish-kv-aot.sh --if-stale | tail -1)"
  rc=$?
  set -e
  if [ "$rc" = 0 ] && [ -x "$exe" ]; then exec "$exe" "$@"; fi
  if [ "$rc" != 3 ]; then echo "run-kv: the NativeAOT publish failed (exit $rc); see above. 'bash scripts/run-kv.sh --jit' runs the JIT build." >&2; exit 1; fi
  echo "run-kv: no C toolchain for NativeAOT (apt-get install -y clang zlib1g-dev): running the JIT build instead (more memory per key)." >&2
fi
dotnet build apps/EioSharp.Kv -c Release -v quiet -nologo >/dev/null
exec dotnet apps/EioSharp.Kv/bin/Release/net10.0/EioSharp.Kv.dll "$@"
