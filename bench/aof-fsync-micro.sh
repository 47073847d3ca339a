#!/usr/bin/env bash
# The cost of one AOF-style fsync on this machine's disk, apart from any server (issue 14, session 24, h149; modes and
# counts added in session 36, h201): N times a pwrite of REC bytes (default 2,950: 50 SETs of redis-benchmark's in the
# AOF) then fdatasync, into
#   append   a growing file (every fdatasync also writes the new size: ext4 without a journal writes the inode block),
#   prezero  a file already written with zeros to its final size and synced (the fsync then has only data to write),
#   chunk    zeros written and synced a CHUNK (1 MiB) at a time when the appends reach them, inline and counted in the
#            loop (what MappedTailAppender.ZeroFillAhead does ahead on a system thread, amortized here),
#   falloc   space reserved with posix_fallocate (unwritten extents: each fsync converts one);
# the modes alternated, ROUNDS times (default 2). Prints wall time, system and user CPU and voluntary switches per fsync
# and each mode's medians. COUNTS=1 runs each mode once more under `perf stat` and prints per fsync: block requests
# issued (block:block_rq_issue), bios queued, ext4_mark_inode_dirty and block_dirty_buffer (the metadata an appending
# fsync writes). The files go in DIR (default /tmp, the disk the bench scripts' servers use).
#
#   [REC=2950] [ROUNDS=2] [CHUNK=1048576] [MODES=append,prezero,chunk,falloc] [COUNTS=1] bash bench/aof-fsync-micro.sh [N]
set -euo pipefail
N=${1:-2000}
REC=${REC:-2950}; ROUNDS=${ROUNDS:-2}; CHUNK=${CHUNK:-1048576}; MODES=${MODES:-append,prezero,chunk,falloc}
DIR=$(mktemp -d "${DIR:-/tmp}/aof-fsync-micro.XXXXXX")
trap 'rm -rf "$DIR"' EXIT
cat >"$DIR/micro.py" <<'PY'
import os, time, sys, resource, statistics as st
N = int(sys.argv[1]); d = sys.argv[2]; REC = int(sys.argv[3]); ROUNDS = int(sys.argv[4]); CHUNK = int(sys.argv[5])
modes = sys.argv[6].split(",")
rec = b"x" * REC
res = {m: [] for m in modes}
def run(mode):
    p = f"{d}/{mode}.aof"
    fd = os.open(p, os.O_CREAT | os.O_TRUNC | os.O_WRONLY, 0o644)
    os.pwrite(fd, b"y" * 4096, 0); os.fsync(fd)  # a file with a first block, as an opened incremental file
    off = 4096
    if mode == "prezero":
        os.pwrite(fd, b"\0" * (N * REC + 4096), off); os.fdatasync(fd)
    elif mode == "falloc":
        os.posix_fallocate(fd, off, N * REC + 4096); os.fdatasync(fd)
    filled = off
    z = b"\0" * CHUNK
    r0 = resource.getrusage(resource.RUSAGE_SELF); t0 = time.perf_counter()
    for _ in range(N):
        if mode == "chunk" and off + REC > filled:
            os.pwrite(fd, z, filled); os.fdatasync(fd); filled += CHUNK
        os.pwrite(fd, rec, off); off += REC
        os.fdatasync(fd)
    t1 = time.perf_counter(); r1 = resource.getrusage(resource.RUSAGE_SELF)
    os.close(fd); os.unlink(p)
    w = (t1 - t0) / N * 1e6; s = (r1.ru_stime - r0.ru_stime) / N * 1e6; u = (r1.ru_utime - r0.ru_utime) / N * 1e6
    v = (r1.ru_nvcsw - r0.ru_nvcsw) / N
    res[mode].append((w, s, v))
    print(f"{mode:8s} {N}x{REC}B: {w:7.1f} us wall/fsync, sys {s:6.1f} us, user {u:5.1f}, vcs {v:.2f}  load {os.getloadavg()[0]:.2f}", flush=True)
for _ in range(ROUNDS):
    for m in modes:
        run(m)
if ROUNDS > 1:
    for m in modes:
        ws = [x[0] for x in res[m]]; ss = [x[1] for x in res[m]]; vs = [x[2] for x in res[m]]
        print(f"median {m:8s}: wall {st.median(ws):7.1f} us ({' '.join(f'{x:.0f}' for x in ws)}), sys {st.median(ss):6.1f} us "
              f"({' '.join(f'{x:.0f}' for x in ss)}), vcs {st.median(vs):.2f}")
PY
python3 "$DIR/micro.py" "$N" "$DIR" "$REC" "$ROUNDS" "$CHUNK" "$MODES"
if [ -n "${COUNTS:-}" ]; then
  for m in ${MODES//,/ }; do
    perf stat -x, -o "$DIR/perf-$m" -e block:block_rq_issue,block:block_bio_queue,ext4:ext4_mark_inode_dirty,block:block_dirty_buffer \
      python3 "$DIR/micro.py" "$N" "$DIR" "$REC" 1 "$CHUNK" "$m"
    grep -v '^#' "$DIR/perf-$m" | awk -F, -v n="$N" -v m="$m" 'NF > 2 { printf "  %-8s %-30s %8d  %.2f per fsync\n", m, $3, $1, $1 / n }'
  done
fi
