#!/usr/bin/env python3
# callgrind-diff-objects.py DUMP1 MAP1 DUMP2 MAP2 DIVISOR: per-object (dso) self-cost difference; managed split by assembly
import sys, re, bisect
def load_map(path):
    e=[]
    for line in open(path, errors="replace"):
        p=line.rstrip("\n").split(" ",2)
        if len(p)==3: e.append((int(p[0],16),int(p[1],16),p[2]))
    e.sort(); return [x[0] for x in e], e
def run(dump, mp):
    starts, ents = load_map(mp)
    def managed(a):
        i=bisect.bisect_right(starts,a)-1
        if i>=0 and a<ents[i][0]+ents[i][1]: return ents[i][2]
        return None
    names={}; positions=["line"]; fn=obj="?"; last=None; after=0; cost={}
    for raw in open(dump, errors="replace"):
        line=raw.rstrip("\n")
        if not line: continue
        if line.startswith("positions:"):
            positions=line.split()[1:]; last=[0]*len(positions); continue
        m=re.match(r"^(c?fn|c?obj|c?ob|c?fi|c?fe|fl|fi|fe)=(?:\((\d+)\))?\s*(.*)$", line)
        if m:
            kind,ident,name=m.groups(); base=kind.lstrip("c")
            if base in("fi","fe","fl"): base="fl"
            if base=="obj": base="ob"
            key=(base,ident)
            if name:
                if ident is not None: names[key]=name
            else: name=names.get(key,"?")
            if kind=="fn": fn=name
            elif kind in ("obj","ob"): obj=name
            continue
        if line.startswith("calls="): after=1; continue
        c=line[0]
        if c.isdigit() or c in "+-*" or line.startswith("0x"):
            f=line.split(); npos=len(positions); pos=[]
            for i in range(npos):
                x=f[i]
                if x=="*": v=last[i]
                elif x[0] in "+-": v=last[i]+(int(x[1:],0)*(1 if x[0]=="+" else -1))
                else: v=int(x,0)
                pos.append(v)
            last=pos
            if after: after=0; continue
            ir=int(f[npos]) if len(f)>npos else 0
            o=obj.rsplit('/',1)[-1]
            if "???" in obj or obj=="?" or fn.startswith("0x"):
                nm=managed(pos[positions.index("instr")]) if "instr" in positions else None
                if nm:
                    mm=re.search(r"\[([A-Za-z.]+)\] ", nm)
                    if nm.startswith("stub"): o="stub:"+nm.split('<')[1].split('>')[0] if '<' in nm else "stub"
                    elif "IL_STUB" in nm: o="IL_STUB"
                    else: o="managed:"+(mm.group(1) if mm else "?")
                else: o="unknown"
            cost[o]=cost.get(o,0)+ir
    return cost
a=run(sys.argv[1],sys.argv[2]); b=run(sys.argv[3],sys.argv[4]); div=float(sys.argv[5])
d={k:(b.get(k,0)-a.get(k,0))/div for k in set(a)|set(b)}
print(f"total {sum(d.values()):,.0f}")
for k,v in sorted(d.items(), key=lambda kv:-abs(kv[1]))[:30]: print(f"{v:9,.0f} {k}")
