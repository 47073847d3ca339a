#!/usr/bin/env bash
# File write+fsync loop on each backend vs FileStream/RandomAccess on a plain thread (issue 15): COUNT iterations of
# "write SIZE bytes at the end of a new file, fsync it" (bench/EioSharp.Benchmarks file-sync), one process per variant,
# CPU (whole process) and wall time per iteration; the file lives in DIR (default: bench/.file-sync, on the checkout's disk,
# not a tmpfs where fsync is free).
# Usage: bash bench/file-sync-backends.sh [runs=3] [count=2000] [size=4096] [dir] [variants="raw portable epoll uring"]
# (variant uring-nodefer: io_uring rings without SINGLE_ISSUER | DEFER_TASKRUN). A variant may carry environment settings:
# NAME:ENV=VALUE[,ENV=VALUE], e.g. "uring uring:EIOSHARP_INLINE_WRITE_MAX=0" (the old IORING_OP_WRITE path, same binary).
# Each line ends with switches_per_op: context switches of all the process's threads (io-wq workers included) per iteration.
# Build first: dotnet build bench/EioSharp.Benchmarks -c Release
set -uo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3}
count=${2:-2000}
size=${3:-4096}
dir=${4:-bench/.file-sync}
variants=${5:-raw portable epoll uring}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
dll=${DLL:-bench/EioSharp.Benchmarks/bin/Release/net10.0/EioSharp.Benchmarks.dll} # DLL=... to run another build
for r in $(seq 1 "$runs"); do
  for s in $variants; do
    # shellcheck disable=SC2046
    echo "run=$r ${s} $(env $(case $s in *:*) echo "${s#*:}" | tr ',' ' ';; esac) dotnet "$dll" file-sync "${s%%:*}" "$count" "$size" "$dir")"
  done
done
rmdir "$dir" 2>/dev/null || true
