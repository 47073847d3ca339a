#!/usr/bin/env bash
# Instructions per key of writing an RDB file (the AOF rewrite's preamble: LZF tried on every value, CRC-64, the
# writer's copies) for redis-benchmark's 1 KB values, counted by valgrind's callgrind in EioSharp.Kv.ScriptBench's
# rdb-write workload (issue 14, h123): a figure the machine's load does not move. For each build the workload runs
# twice under callgrind, with 1 and with 1 + EXTRA timed rounds over the same KEYS keys; the difference of the two
# process totals divided by EXTRA x KEYS is the figure (start-up, the fill and the warm-up write cancel out).
#
#   bench/kv-rdb-write-instructions.sh SCRIPTBENCH_DIR ...     # e.g. /tmp/h123-base/scriptbench /tmp/h123-new/scriptbench
#   KEYS (4000), EXTRA (4). Tiered PGO stays on (as the server runs): without it the JIT's inlining budget runs out in
#   the old LzfCompress and its span indexers stay calls (twice the instructions the server's code runs).
set -euo pipefail
KEYS=${KEYS:-4000}; EXTRA=${EXTRA:-4}
work=$(mktemp -d /tmp/kv-rdb-instr.XXXXXX); trap 'rm -rf "$work"' EXIT
total() { # dir rounds
  (cd "$work" && DOTNET_TC_CallCountingDelayMs=0 DOTNET_gcConcurrent=0 DOTNET_EnableWriteXorExecute=0 \
    valgrind --tool=callgrind --callgrind-out-file="$work/cg.out" dotnet "$1/EioSharp.Kv.ScriptBench.dll" rdb-write "$KEYS" "$2" \
    >"$work/log" 2>&1)
  awk '/^(summary|totals):/ { print $2; exit }' "$work/cg.out"
}
for dir in "$@"; do
  a=$(total "$dir" 1); b=$(total "$dir" $((1 + EXTRA)))
  python3 -c "print('$dir: instructions per key', round(($b - $a) / ($EXTRA * $KEYS)))"
done
