#!/usr/bin/env bash
# Runs bench/aof-tail-write/directtail.c's modes alternated (issue 14, session 35, h200): ROUNDS rounds, each every MODE
# in turn, N appends of LEN bytes paced to RATE MB/s into a file in DIR (default /tmp/h200dt), CHUNK_MB reservation.
# One line a run, prefixed with the load average before it; medians per mode at the end.
#   ROUNDS=5 N=40000 LEN=17200 RATE=400 MODES="0 2" bash bench/aof-tail-write/directtail.sh
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
ROUNDS="${ROUNDS:-5}" N="${N:-40000}" LEN="${LEN:-17200}" RATE="${RATE:-400}" MODES="${MODES:-0 2}" CHUNK_MB="${CHUNK_MB:-8}"
DIR="${DIR:-/tmp/h200dt}"
BIN="${BIN:-/tmp/directtail-$$}"
mkdir -p "$DIR"
gcc -O2 -Wall -pthread -o "$BIN" "$ROOT/bench/aof-tail-write/directtail.c"
OUT="$(mktemp)"
for r in $(seq 1 "$ROUNDS"); do
  for m in $MODES; do
    load="$(cut -d' ' -f1-3 /proc/loadavg)"
    line="$("$BIN" "$DIR/t.aof" "$N" "$LEN" "$m" "$RATE" "$CHUNK_MB" 2>&1 | tail -1)"
    echo "round $r load $load | $line" | tee -a "$OUT"
  done
done
python3 - "$OUT" <<'PY'
import re, statistics, sys
rows = {}
for l in open(sys.argv[1]):
    m = re.search(r'mode (\d+)', l)
    if not m: continue
    vals = dict(writer=r'writer ([\d.]+)', fsync=r'fsync thread ([\d.]+)', process=r'process ([\d.]+)', kthreads=r'kthreads ([\d.]+)',
                m_user=r'machine user ([\d.]+)', m_sys=r'sys ([\d.]+)', m_irq=r'irq ([\d.]+)', mbps=r'([\d.]+) MB/s')
    rows.setdefault(m.group(1), []).append({k: float(re.search(v, l).group(1)) for k, v in vals.items()})
for mode, rs in sorted(rows.items()):
    print(f"mode {mode}: " + ", ".join(f"{k} {statistics.median(r[k] for r in rs):.2f} [{' '.join(f'{r[k]:.1f}' for r in rs)}]" for k in rs[0]))
PY
rm -f "$OUT" "$BIN" "$DIR/t.aof"
