#!/usr/bin/env bash
# Publishes EioSharp.Kv as a NativeAOT executable (one native file, no JIT, no dotnet host): about 10 MB RSS when
# empty against ~45 MB for the JIT build (docs/BENCHMARKS.md, "KV memory").
#
#   bash scripts/publish-kv-aot.sh [OUTPUT_DIR]     # default: apps/EioSharp.Kv/bin/Release/aot
#
# Prints the executable's path on the last line. Run it like the JIT build: OUTPUT_DIR/EioSharp.Kv --port 6380 ...
# The end-to-end tests use it when EIOSHARP_KV_BINARY names it; bench/kv-memory.sh when KV_BIN does; scripts/run-kv.sh
# with --aot.
# NativeAOT needs a C toolchain as linker: clang if found (any clang-N too), gcc otherwise (CppCompilerAndLinker).
# KeraLua's liblua54.so is copied next to the executable and loaded at run time as with the JIT build.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${1:-apps/EioSharp.Kv/bin/Release/aot}"
LINKER=""
if command -v clang >/dev/null 2>&1; then LINKER=clang
else
  for c in $(compgen -c clang- | grep -E '^clang-[0-9]+$' | sort -t- -k2 -n -r); do LINKER=$c; break; done
  [ -n "$LINKER" ] || { command -v gcc >/dev/null 2>&1 && LINKER=gcc; }
fi
[ -n "$LINKER" ] || { echo "NativeAOT needs clang or gcc as linker (apt-get install -y clang)" >&2; exit 1; }
dotnet publish apps/EioSharp.Kv -c Release -r linux-x64 -p:PublishAot=true -p:CppCompilerAndLinker="$LINKER" \
  -o "$OUT" -v quiet -nologo >&2
echo "$(cd "$OUT" && pwd)/EioSharp.Kv"
