#!/usr/bin/env bash
# Runs bench/aof-tail-write/appendcost.c's modes alternated (issue 14, session 42, h225, §222): ROUNDS rounds, each every
# mode of MODES in turn (the order rotated by one each round), TOTAL_MB of 80-120 KB appends paced to RATE MB/s, a new
# file every ROTATE_MB, ALIGN_KB for mode 1, in DIR (default /tmp/h225/ac). One line a run, prefixed with the load
# average before it; medians per mode at the end (us per MB appended, and the process's us per 1,069-byte record).
#   ROUNDS=3 TOTAL_MB=1024 RATE=350 ROTATE_MB=256 MODES="0 1 2 3" bash bench/aof-tail-write/appendcost.sh
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
ROUNDS="${ROUNDS:-3}" TOTAL_MB="${TOTAL_MB:-1024}" RATE="${RATE:-350}" ROTATE_MB="${ROTATE_MB:-256}" ALIGN_KB="${ALIGN_KB:-64}"
MODES="${MODES:-0 1 2 3}" DIR="${DIR:-/tmp/h225/ac}" BIN="${BIN:-/tmp/appendcost-$$}"
mkdir -p "$DIR"
gcc -O2 -msse4.2 -Wall -pthread -o "$BIN" "$ROOT/bench/aof-tail-write/appendcost.c" -ldl
OUT="${OUT:-$(mktemp)}"
read -r -a modes <<<"$MODES"
for r in $(seq 1 "$ROUNDS"); do
  k=$(( (r - 1) % ${#modes[@]} ))
  for i in $(seq 0 $(( ${#modes[@]} - 1 ))); do
    m=${modes[$(( (i + k) % ${#modes[@]} ))]}
    load="$(cut -d' ' -f1-3 /proc/loadavg)"
    line="$("$BIN" "$DIR" "$TOTAL_MB" "$m" "$RATE" "$ROTATE_MB" "$ALIGN_KB" 2>&1 | tail -1)"
    echo "round $r load $load | $line" | tee -a "$OUT"
  done
done
python3 - "$OUT" <<'PY'
import re, statistics, sys
rows = {}
keys = dict(w_user=r'writer user ([\d.]+)', w_sys=r'sys ([\d.]+),', helper=r'helper ([\d.]+)', background=r'background ([\d.]+)',
            process=r'process ([\d.]+) us/MB|process ([\d.]+),', kthreads=r'kthreads ([\d.]+)', machine=r'machine ([\d.]+)',
            per_record=r'process ([\d.]+) us/record', mbps=r'([\d.]+) MB/s')
for l in open(sys.argv[1]):
    m = re.search(r'\| mode (\d+)', l)
    if not m: continue
    d = {}
    for k, v in keys.items():
        mm = re.search(v, l)
        d[k] = float(next(g for g in mm.groups() if g is not None)) if mm else float('nan')
    rows.setdefault(m.group(1), []).append(d)
for mode, rs in sorted(rows.items()):
    print(f"mode {mode}: " + ", ".join(f"{k} {statistics.median(r[k] for r in rs):.3g} [{' '.join(f'{r[k]:.4g}' for r in rs)}]" for k in rs[0]))
PY
rm -f "$BIN"
