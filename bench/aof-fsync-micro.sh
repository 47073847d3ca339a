#!/usr/bin/env bash
# The cost of one AOF-style fsync on this machine's disk, apart from any server (issue 14, session 24, h149): N times a
# pwrite of 2,950 bytes (50 SETs of redis-benchmark's in the AOF) then fdatasync, into (append) a growing file, (prezero)
# a file already written with zeros to its final size (the fsync then has no size to write: data only), (falloc) space
# reserved with posix_fallocate; each twice. Prints wall time, system and user CPU and voluntary switches per fsync.
# The files go in DIR (default /tmp, the disk the bench scripts' servers use).
#
#   bash bench/aof-fsync-micro.sh [N]
set -euo pipefail
N=${1:-2000}
DIR=$(mktemp -d "${DIR:-/tmp}/aof-fsync-micro.XXXXXX")
trap 'rm -rf "$DIR"' EXIT
python3 - "$N" "$DIR" <<'PY'
import os, time, sys, resource
N = int(sys.argv[1]); d = sys.argv[2]
rec = b"x" * 2950
def run(mode):
    p = f"{d}/{mode}.aof"
    fd = os.open(p, os.O_CREAT | os.O_TRUNC | os.O_WRONLY, 0o644)
    if mode == "prezero":
        os.pwrite(fd, b"\0" * (N * len(rec) + 4096), 0); os.fsync(fd)
    elif mode == "falloc":
        os.posix_fallocate(fd, 0, N * len(rec) + 4096); os.fsync(fd)
    off = 0
    r0 = resource.getrusage(resource.RUSAGE_SELF); t0 = time.perf_counter()
    for _ in range(N):
        os.pwrite(fd, rec, off); off += len(rec)
        os.fdatasync(fd)
    t1 = time.perf_counter(); r1 = resource.getrusage(resource.RUSAGE_SELF)
    os.close(fd); os.unlink(p)
    print(f"{mode:8s} {N} fsyncs: {(t1-t0)/N*1e6:7.1f} us wall/fsync, sys {(r1.ru_stime-r0.ru_stime)/N*1e6:6.1f} us, "
          f"user {(r1.ru_utime-r0.ru_utime)/N*1e6:5.1f} us, vcs {(r1.ru_nvcsw-r0.ru_nvcsw)/N:.2f}  load {os.getloadavg()[0]:.1f}")
for _ in range(2):
    for m in ["append", "prezero", "falloc"]:
        run(m)
PY
