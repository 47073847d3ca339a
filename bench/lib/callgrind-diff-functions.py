#!/usr/bin/env python3
# callgrind-diff-functions.py DUMP1 MAP1 DUMP2 MAP2 DIVISOR [TOP]: per-function self-cost difference (dump2 - dump1)/DIVISOR
import sys, subprocess, re, collections
def selfcost(dump, mp):
    out = subprocess.run([sys.executable, __import__('os').path.join(__import__('os').path.dirname(__file__), 'callgrind-self.py'), dump, mp, '1', '100000'], capture_output=True, text=True).stdout
    d = {}
    tot = 0
    for line in out.splitlines():
        if line.startswith('total'):
            tot = int(re.search(r'\(([\d,]+) instructions', line).group(1).replace(',', ''))
            continue
        m = re.match(r'\s*([\d,]+)\s+[\d.]+%\s+(.*)$', line)
        if m:
            name = re.sub(r'\[(OptimizedTier1|Optimized|QuickJitted|Tier0|Tier1|PreJIT|Instrumented)[^\]]*\]$', '', m.group(2))
            d[name] = d.get(name, 0) + int(m.group(1).replace(',', ''))
    return tot, d
t1, a = selfcost(sys.argv[1], sys.argv[2])
t2, b = selfcost(sys.argv[3], sys.argv[4])
div = float(sys.argv[5]); top = int(sys.argv[6]) if len(sys.argv) > 6 else 50
print(f"total per op {(t2 - t1) / div:,.0f}")
diff = {k: (b.get(k, 0) - a.get(k, 0)) / div for k in set(a) | set(b)}
for k, v in sorted(diff.items(), key=lambda kv: -abs(kv[1]))[:top]:
    print(f"{v:9,.0f}  {k[:170]}")
