#!/usr/bin/env bash
# Is an io_uring IORING_OP_WRITE of a small buffered append to a file on this filesystem done inline, or punted to an
# io-wq worker thread? (issue 12/14, session 24, h148: the AOF record as an SQE linked before the reply's send.)
# Compiles bench/uring-buffered-write/uwrite.c (raw io_uring syscalls, no liburing) and runs it on a file in DIR: N
# 64-byte pwrite(2)s, then N 64-byte IORING_OP_WRITEs, one per io_uring_enter (submit, then wait for its completion);
# prints wall and CPU time (getrusage: every thread of the process, io-wq workers included) per write, how many
# completions were already posted when the submitting io_uring_enter returned (inline), and the process's threads.
#
#   bash bench/uring-buffered-write.sh [DIR] [N]      # DIR: where the AOF lives (default: a temporary directory under /tmp)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
dir=${1:-}; n=${2:-20000}
work=$(mktemp -d /tmp/uring-buffered-write.XXXXXX); trap 'rm -rf "$work"' EXIT
gcc -O2 -o "$work/uwrite" "$ROOT/uring-buffered-write/uwrite.c"
df -T "${dir:-$work}" | tail -1 | awk '{print "filesystem:", $2}'
"$work/uwrite" "${dir:-$work}/probe.aof" "$n"
[ -n "$dir" ] && rm -f "$dir/probe.aof"
