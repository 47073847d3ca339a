#!/usr/bin/env python3
# callgrind-diff-callees.py DUMP1 MAP1 DUMP2 MAP2 DIVISOR CALLERPATTERN: callees of matching callers (calls/op, incl/op) diffed
import sys, re, bisect
def load_map(path):
    e=[]
    for line in open(path, errors="replace"):
        p=line.rstrip("\n").split(" ",2)
        if len(p)==3: e.append((int(p[0],16),int(p[1],16),p[2]))
    e.sort(); return [x[0] for x in e], e
def clean(n): return re.sub(r"\[(OptimizedTier1|Optimized|QuickJitted|Tier0)\]$","",n)
def run(dump, mp, pat):
    starts, ents = load_map(mp)
    def managed(a):
        i=bisect.bisect_right(starts,a)-1
        if i>=0 and a<ents[i][0]+ents[i][1]: return ents[i][2]
        return None
    names={}; positions=["line"]; fn="?"; cfn="?"; last=None; after=None; res={}; selfc={}
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
            if kind=="cfn": cfn=name
            if kind=="fn": fn=name; fnaddr=None
            continue
        if line.startswith("calls="):
            f=line[6:].split(); after=(int(f[0]), f[1] if len(f)>1 else None); continue
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
            me=fn
            if me.startswith("0x"): me=managed(pos[0]) or me
            me=clean(me)
            if after:
                n,tgt=after; after=None
                if pat in me:
                    nm=cfn
                    if nm.startswith("0x") and tgt:
                        try: nm=managed(int(tgt,0)) or nm
                        except ValueError: pass
                    nm=clean(nm)
                    a=res.setdefault(nm,[0,0]); a[0]+=n; a[1]+=int(f[npos]) if len(f)>npos else 0
            elif pat in me:
                selfc[me]=selfc.get(me,0)+(int(f[npos]) if len(f)>npos else 0)
    return res, selfc
pat=sys.argv[6]; div=float(sys.argv[5])
r1,s1=run(sys.argv[1],sys.argv[2],pat); r2,s2=run(sys.argv[3],sys.argv[4],pat)
for k in set(s1)|set(s2): print(f"self {(s2.get(k,0)-s1.get(k,0))/div:8.0f}  {k[:150]}")
rows=[]
for k in set(r1)|set(r2):
    a=r1.get(k,[0,0]); b=r2.get(k,[0,0])
    rows.append(((b[0]-a[0])/div,(b[1]-a[1])/div,k))
for c,i,k in sorted(rows,key=lambda r:-r[1]):
    if abs(i)>=5: print(f"{c:7.2f} calls/op {i:8.0f} incl/op  {k[:150]}")
