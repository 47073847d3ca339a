#!/usr/bin/env bash
# Allocation by type for any JIT-run .NET process (a server under a benchmark, a bench loop), sampled from the runtime's
# GCAllocationTick events (one tick per ~100 KB allocated; ticks per type are proportional to its bytes).
#
#   bench/alloc-by-type.sh run OUT -- dotnet SOME.dll ARGS...   # run the command with the hook; counts go to OUT
#   bench/alloc-by-type.sh diff A B [N=40]                      # per-type ticks of B minus A (snapshots of one OUT file)
#   bench/alloc-by-type.sh hook                                  # build the hook, print its path (for DOTNET_STARTUP_HOOKS)
#
# OUT is rewritten every 2 s and at exit with cumulative counts, so copy it at the start and at the end of the phase you
# measure and diff the copies. Not for NativeAOT binaries (startup hooks need the JIT runtime).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
HOOK_DIR="${ALLOC_HOOK_DIR:-/tmp/eiosharp-allochook}"
HOOK="$HOOK_DIR/AllocHook.dll"

build_hook() {
  if [[ ! -f "$HOOK" || "$ROOT/bench/AllocHook/StartupHook.cs" -nt "$HOOK" ]]; then
    nice dotnet build "$ROOT/bench/AllocHook/AllocHook.csproj" -c Release -v quiet -nologo -o "$HOOK_DIR" >&2
  fi
}

case "${1:-}" in
  hook) build_hook; echo "$HOOK" ;;
  run)
    out="$2"; shift 2; [[ "${1:-}" == "--" ]] && shift
    build_hook
    DOTNET_STARTUP_HOOKS="$HOOK" EIOSHARP_ALLOC_TYPES_OUT="$out" exec "$@" ;;
  diff)
    python3 - "$2" "$3" "${4:-40}" <<'PY'
import sys
def load(p):
    head, rows = "", {}
    for line in open(p):
        if line.startswith("#"): head = line; continue
        n, name = line.rstrip("\n").split("\t", 1); rows[name] = int(n)
    return head, rows
ha, a = load(sys.argv[1]); hb, b = load(sys.argv[2])
def field(h, k):
    for part in h.split():
        if part.startswith(k + "="): return int(part.split("=")[1])
    return 0
d = {k: b.get(k, 0) - a.get(k, 0) for k in set(a) | set(b)}
total = sum(v for v in d.values() if v > 0)
alloc = field(hb, "total_allocated_bytes") - field(ha, "total_allocated_bytes")
print(f"ticks {total}, bytes allocated {alloc:,} (GC.GetTotalAllocatedBytes of the process)")
for k, v in sorted(d.items(), key=lambda kv: -kv[1])[: int(sys.argv[3])]:
    if v <= 0: break
    print(f"{v:8d} {100.0 * v / total:5.1f}%  ~{alloc * v / total / 1024:10.0f} KB  {k}")
PY
    ;;
  *) sed -n '2,12p' "$0"; exit 2 ;;
esac
