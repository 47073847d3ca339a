#!/usr/bin/env bash
# Publishes EioSharp.Kv as a NativeAOT executable (one native file, no JIT, no dotnet host): the build users run
# (scripts/run-kv.sh) and CI tests (scripts/test.sh). About 10 MB RSS when empty against ~45 MB for the JIT build, and
# below redis-server's RSS for 1M strings and for hashes/sets/sorted sets/lists (docs/BENCHMARKS.md, "KV memory").
#
#   bash scripts/publish-kv-aot.sh [--if-stale] [--libraries-built] [OUTPUT_DIR]   # default: apps/EioSharp.Kv/bin/Release/aot
#
# --libraries-built: the referenced libraries were just built in Release (scripts/test.sh, after `dotnet build
#             EioSharp.slnx -c Release`): use their outputs as they are (BuildProjectReferences=false, and no restore when
#             scripts/setup.sh restored the linux-x64 target). Otherwise the publish builds them again: -p:PublishAot=true
#             flows to every referenced project and changes its compile inputs, so MSBuild compiles each library again
#             (measured: most of the 9-11 minutes of a publish after a build, at load 45-80).
# --if-stale: publish only when the executable is missing or older than a source it is built from (apps/EioSharp.Kv*,
#             src/EioSharp*, the build props); otherwise print its path at once.
# Prints the executable's path on the last line of stdout (progress goes to stderr). Run it like the JIT build:
# OUTPUT_DIR/EioSharp.Kv --port 6380 ... The end-to-end tests use it when EIOSHARP_KV_BINARY names it; bench/kv-memory.sh
# when KV_BIN does.
# Needs a C toolchain as linker: clang if found (any clang-N too), gcc otherwise (CppCompilerAndLinker); scripts/setup.sh
# installs clang and zlib1g-dev. Exit code 3 when no linker is found (scripts/run-kv.sh then falls back to the JIT build).
# The ILCompiler packages are restored from NuGet by this publish (the SDK picks their version).
# Time: ~1-3 min after a Release build of the solution (only EioSharp.Kv is recompiled for linux-x64, then ILC links);
# 7 min from nothing at load ~30 on the 2-core machine (docs/BENCHMARKS.md).
# KeraLua's liblua54.so is copied next to the executable and loaded at run time as with the JIT build.
set -euo pipefail
cd "$(dirname "$0")/.."
IF_STALE=""
LIBS_BUILT=""
while [ $# -gt 0 ]; do
  case "$1" in
    --if-stale) IF_STALE=1; shift ;;
    --libraries-built) LIBS_BUILT=1; shift ;;
    *) break ;;
  esac
done
OUT="${1:-apps/EioSharp.Kv/bin/Release/aot}"
EXE="$OUT/EioSharp.Kv"
if [ -n "$IF_STALE" ] && [ -x "$EXE" ] && [ -z "$(find apps/EioSharp.Kv apps/EioSharp.Kv.Core src/EioSharp src/EioSharp.Core \
    src/EioSharp.Supervision Directory.Build.props Directory.Packages.props \( -name bin -o -name obj \) -prune -o \
    -type f -newer "$EXE" -print -quit 2>/dev/null)" ]; then
  echo "$(cd "$OUT" && pwd)/EioSharp.Kv"
  exit 0
fi
LINKER=""
if command -v clang >/dev/null 2>&1; then LINKER=clang
else
  for c in $(compgen -c clang- | grep -E '^clang-[0-9]+$' | sort -t- -k2 -n -r); do LINKER=$c; break; done
  if [ -z "$LINKER" ] && command -v gcc >/dev/null 2>&1; then LINKER=gcc; fi
fi
[ -n "$LINKER" ] || { echo "NativeAOT needs clang or gcc as linker (apt-get install -y clang zlib1g-dev)" >&2; exit 3; }
echo "Publishing the NativeAOT EioSharp.Kv into $OUT (linker $LINKER; a few minutes the first time)..." >&2
start=$(date +%s)
# With --libraries-built and assets that already hold the linux-x64 target with the ILCompiler (scripts/setup.sh restores
# them), publish without restoring (a restore with -r rewrites the assets of every referenced project) and without
# building the references.
restore=()
assets=apps/EioSharp.Kv/obj/project.assets.json
if [ -n "$LIBS_BUILT" ]; then
  restore=(-p:BuildProjectReferences=false)
  if [ -f "$assets" ] && grep -q '"net10.0/linux-x64"' "$assets" && grep -qi 'runtime.linux-x64.Microsoft.DotNet.ILCompiler' "$assets"; then
    restore+=(--no-restore)
  fi
fi
dotnet publish apps/EioSharp.Kv -c Release -r linux-x64 -p:PublishAot=true -p:IlcFoldIdenticalMethodBodies=true -p:CppCompilerAndLinker="$LINKER" \
  "${restore[@]}" -o "$OUT" -v quiet -nologo >&2
touch "$EXE"
echo "Published in $(( $(date +%s) - start )) s." >&2
echo "$(cd "$OUT" && pwd)/EioSharp.Kv"
