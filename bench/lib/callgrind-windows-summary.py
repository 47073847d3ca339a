"""Summary of callgrind window counts (bench/kv-pingpong-instructions.sh, bench/kv-set-instructions.sh).

usage: callgrind-windows-summary.py RUNS_FILE OPS_PER_WINDOW UNIT
RUNS_FILE lines: target run idle_instructions seconds window_instructions...
Per target: the median over runs of each run's lowest window per op, the same net of the idle stretch (the timers'
instructions over as long as the last window took), and every window per op.
"""
import statistics
import sys

runs_file, ops, unit = sys.argv[1], int(sys.argv[2]), sys.argv[3]
rows = {}
for line in open(runs_file):
    t, run, idle, secs, *windows = line.split()
    best = min(int(w) for w in windows)
    rows.setdefault(t, []).append((best / ops, (best - int(idle)) / ops, [int(w) / ops for w in windows]))
print(f"| target | instructions per {unit} (median of runs' lowest window) | net of idle | runs (windows) |")
print("|---|---:|---:|---|")
for t, v in rows.items():
    g = statistics.median(x for x, _, _ in v)
    n = statistics.median(y for _, y, _ in v)
    print(f"| {t} | {g:,.0f} | {n:,.0f} | {'; '.join(' '.join(f'{w:,.0f}' for w in ws) for _, _, ws in v)} |")
