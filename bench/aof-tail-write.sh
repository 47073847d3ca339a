#!/usr/bin/env bash
# The AOF record's write on this filesystem, two ways (issue 14, session 27, h165): N appends of LEN bytes by pwrite(2)
# (what EioSharp.Kv does, one per round, rationale §145) against a memcpy into a MAP_SHARED mapping of the file's tail
# extended by fallocate (a design weighed in rationale §158, not built); CPU per record for each.
#
#   bash bench/aof-tail-write.sh [DIR] [N] [LEN...]     # DIR: where the AOF would live (default: a temporary directory
#                                                      # under /tmp); N 1000000; LEN 40 60 (a SET of a 16-byte value ~60)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DIR="${1:-}"; N="${2:-1000000}"; shift $(( $# > 2 ? 2 : $# )) || true
LENS="${*:-40 60}"
TMP=$(mktemp -d /tmp/aof-tail-write.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
[ -n "$DIR" ] || DIR="$TMP"
gcc -O2 -o "$TMP/tailwrite" "$ROOT/bench/aof-tail-write/tailwrite.c"
echo "filesystem: $(stat -f -c %T "$DIR"), $N records"
for len in $LENS; do "$TMP/tailwrite" "$DIR/aof-tail-write.dat" "$N" "$len"; done
rm -f "$DIR/aof-tail-write.dat"
