# Counts one thread's samples of `perf script -F comm,ip,sym` output that the GC's clearing of fresh allocation memory
# costs: a `memset` leaf, or a page fault anywhere in the stack (issue 14, session 34, h193: the 1 KB -P16 SET row's
# store thread on the regions GC against the segments GC, DOTNET_GCName=libclrgc.so), and those samples by the first
# managed frame under them (with frame-pointer unwinding the allocation helper's managed caller is often skipped: the
# frame shown is then its caller's):
#   perf script -i perf.data --comm dotnet -F comm,ip,sym | python3 bench/lib/perf-gc-clear.py
# (bench/kv-1k-env-ab.sh leaves DIR/rN-NAME/script.txt: python3 bench/lib/perf-gc-clear.py < DIR/r1-default/script.txt)
import sys, collections
stacks, cur = [], []
for line in sys.stdin:
    if not line.strip():
        continue
    if not line[0].isspace():
        if cur: stacks.append(cur)
        cur = []
    else:
        parts = line.strip().split(' ', 1)
        cur.append(parts[1] if len(parts) > 1 else parts[0])
if cur: stacks.append(cur)
n = len(stacks)
memset = sum(1 for s in stacks if 'memset' in s[0])
faults = sum(1 for s in stacks if any('page_fault' in x for x in s))
either = [s for s in stacks if any('memset' in x for x in s) or any('page_fault' in x for x in s)]
print(f"samples {n} memset-leaf {memset} page-fault {faults} memset-or-page-fault {len(either)}"
      f" ({100 * len(either) / max(n, 1):.2f}%)")
by = collections.Counter(next((x for x in s if '::' in x), '?')[:110] for s in either)
for frame, count in by.most_common(6):
    print(f"  {count:6d} {frame}")
