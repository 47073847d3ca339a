#!/usr/bin/env python3
# row-placement-summary.py OUTPUT: medians by target of bench/kv-row-placement.sh's per-run lines (issue 14, session 41,
# h223, §220): ops/s, the server's and the client's CPU per request, the share of the run both ran at once, the shares
# each waited behind the other on one CPU, the other processes' cores, and the share of each side's wake-ups that were
# placed on the CPU the other side was running on.
import collections
import re
import statistics
import sys

runs = collections.defaultdict(list)
names = {}
for line in open(sys.argv[1]):
    m = re.match(r't(\d+) rep (\d+): ops/s ([\d.]+) server ([\d.]+) us/req client ([\d.]+) us/req load ([\d.]+) \|(?: overlap (.*))?', line)
    if m:
        d = {k: v for k, v in (kv.split('=') for kv in (m.group(7) or '').split())}
        d = {k: float(v.rstrip('ms')) for k, v in d.items()}
        d.update(ops=float(m.group(3)), server=float(m.group(4)), client=float(m.group(5)), load=float(m.group(6)))
        runs['t' + m.group(1)].append(d)
    elif line.startswith('targets:'):
        for part in line.split()[1:]:
            k, _, v = part.partition('=')
            names[k] = v
med = statistics.median
print('| target | runs | ops/s | server µs/req | client µs/req | both running | client waits behind server | server waits '
      'behind client | other processes (cores) | server wake-ups onto the client\'s CPU | client wake-ups onto the server\'s CPU | load |')
print('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|')
nan = float('nan')
for t, rs in sorted(runs.items()):
    if 'both_share' not in rs[0]:  # RECORD=0: plain runs
        for r in rs:
            r.update(both_share=nan, c_wait_s_share=nan, s_wait_c_share=nan, o_run_cores=nan, s_wake_onto_c=nan,
                     s_wake_other=nan, c_wake_onto_s=nan, c_wake_other=nan)
    sw = [r['s_wake_onto_c'] / max(1, r['s_wake_onto_c'] + r['s_wake_other']) if r['s_wake_other'] == r['s_wake_other'] else nan for r in rs]
    cw = [r['c_wake_onto_s'] / max(1, r['c_wake_onto_s'] + r['c_wake_other']) if r['c_wake_other'] == r['c_wake_other'] else nan for r in rs]
    print(f"| {names.get(t, t)} | {len(rs)} | {med([r['ops'] for r in rs]):,.0f} | {med([r['server'] for r in rs]):.2f} | "
          f"{med([r['client'] for r in rs]):.2f} | {med([r['both_share'] for r in rs]):.3f} | {med([r['c_wait_s_share'] for r in rs]):.3f} | "
          f"{med([r['s_wait_c_share'] for r in rs]):.3f} | {med([r['o_run_cores'] for r in rs]):.2f} | {med(sw):.2f} | {med(cw):.2f} | "
          f"{min(r['load'] for r in rs):.1f}-{max(r['load'] for r in rs):.1f} |")
