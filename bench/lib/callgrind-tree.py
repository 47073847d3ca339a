#!/usr/bin/env python3
"""Self, inclusive and caller/callee costs of a callgrind dump (--dump-instr=yes), JIT-compiled code named through the
.NET perf map, native code by its object file (as callgrind-self.py). Made for the lowest windows KEEP=DIR keeps
(bench/kv-p1-instructions.sh); costs are divided by DIV (the window's requests). Inclusive costs count a recursive
call's edges again; stubs (dispatch, thunks) appear as nodes of their own.

usage: callgrind-tree.py DUMP PERF_MAP DIV [MODE [ARG]]
  MODE self N (default, 40) | incl N | callers NAME_PART | callees NAME_PART | obj (self cost per object: managed,
  named native, libcoreclr, libclrjit...: a window with libclrjit in it still had the JIT compiling)
"""
import bisect, re, sys, collections, signal
signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # quiet under `| head`
dump, mp, div = sys.argv[1], sys.argv[2], float(sys.argv[3])
mode = sys.argv[4] if len(sys.argv) > 4 else "self"; arg = sys.argv[5] if len(sys.argv) > 5 else "40"
ent = []
try:
    for l in open(mp, errors="replace"):
        p = l.rstrip("\n").split(" ", 2)
        if len(p) == 3: ent.append((int(p[0], 16), int(p[1], 16), p[2]))
except FileNotFoundError: pass
ent.sort(); starts = [e[0] for e in ent]
def managed(a):
    i = bisect.bisect_right(starts, a) - 1
    if i >= 0 and a < ent[i][0] + ent[i][1]: return ent[i][2]
    return None
names = {}
def nm(kind, rest):
    m = re.match(r"\((\d+)\)\s*(.*)$", rest)
    if m:
        i, n = m.group(1), m.group(2)
        if n: names[(kind, i)] = n
        return names.get((kind, i), "?")
    return rest
def pretty(fn, ob):
    if fn.startswith("0x"):
        a = int(fn.split("'")[0], 16)
        m = managed(a)
        if m: return m
        return f"[{ob.rsplit('/',1)[-1]}] {fn}"
    return fn
def shorten(n):
    n = re.sub(r"\[System\.[A-Za-z.]+\]", "", n); n = re.sub(r"valuetype |class |instance ", "", n)
    return n
selfc = collections.Counter(); incl = collections.Counter(); edges = collections.Counter()
fn = ob = cfn = cob = "?"; pending_call = False; positions = ["line"]; total = 0
for raw in open(dump, errors="replace"):
    l = raw.rstrip("\n")
    if not l: continue
    if l.startswith("positions:"): positions = l.split()[1:]; continue
    m = re.match(r"^(fn|ob|cfn|cob|fl|fi|fe|cfi|cfl)=(.*)$", l)
    if m:
        k, r = m.groups()
        if k == "ob": ob = nm("ob", r); cob = ob
        elif k == "cob": cob = nm("ob", r)
        elif k == "fn": fn = pretty(nm("fn", r), ob); cob = ob
        elif k == "cfn": cfn = pretty(nm("fn", r), cob)
        continue
    if l.startswith("calls="): pending_call = True; continue
    c = l[0]
    if c.isdigit() or c in "+-*":
        f = l.split(); np = len(positions)
        cost = int(f[np]) if len(f) > np else 0
        if pending_call:
            pending_call = False
            if cfn != fn: edges[(fn, cfn)] += cost
            continue
        selfc[fn] += cost; total += cost
# inclusive: self + calls out (excluding recursion)
for f, v in selfc.items(): incl[f] += v
for (a, b), v in edges.items(): incl[a] += v
print(f"total {total/div:,.0f} per unit")
N = int(arg) if arg.isdigit() else 40
def show(items):
    for n, v in items: print(f"{v/div:10,.0f}  {shorten(n)[:190]}")
if mode == "self": show(selfc.most_common(N))
elif mode == "incl": show(incl.most_common(N))
elif mode == "callers": show(sorted([(a + ("  ->  " + b if len(set(x[1] for x in edges if arg in x[1]))>1 else ""), v) for (a, b), v in edges.items() if arg in b], key=lambda x: -x[1])[:40])
elif mode == "callees":
    fs = set(a for (a, b) in edges if arg in a)
    for f0 in fs:
        print("== " + f0[:150], f"self {selfc[f0]/div:,.0f}")
        show(sorted([(b, v) for (a, b), v in edges.items() if a == f0], key=lambda x: -x[1])[:30])
elif mode == "obj":
    oc = collections.Counter()
    for f, v in selfc.items():
        oc[f.split("]")[0] + "]" if f.startswith("[") else ("managed" if "[" in f else "native-named")] += v
    show(oc.most_common(20))
