#!/usr/bin/env bash
# Clock readings of the fiber trace per run (issue 17, h122): runs one row of the bench's loop driver under callgrind
# (the environment of bench/trace-overhead-instructions.sh: FullOpts, steady GC; 10 warm-up invocations, then COUNT)
# and prints the calls to clock_gettime (valgrind hides the vDSO, so the trace clock calls libc's). Run with COUNT=1 and
# COUNT=2: the difference divided by the difference of ops is the readings per op.
# Usage: bench/trace-clock-reads.sh DLL TRACE(0|1) COUNT CLASS METHOD [Prop=Value]
#   e.g. bench/trace-clock-reads.sh /tmp/s18-base/bench/EioSharp.Benchmarks.dll 1 2 CoreYield FiberYield Fibers=1
DLL=$1 T=$2 C=$3; shift 3
cls=$1 m=$2; shift 2
out=${TMPDIR:-/tmp}/trace-clock-reads.$cls.$m.$T.$C.$$.out
export EIOSHARP_BENCH_JOB=cli DOTNET_TieredCompilation=0 DOTNET_gcConcurrent=0 DOTNET_EnableWriteXorExecute=0 DOTNET_JitEnableOptionalRelocs=0 DOTNET_GCgen0size=0x400000 EIOSHARP_BENCH_GC_AFTER_WARMUP=1
log=$(EIOSHARP_BENCH_TRACE=$T nice valgrind --tool=callgrind --callgrind-out-file=$out dotnet $DLL loop $cls $m 10 $C "$@" 2>&1)
ops=$(sed -n 's/.* ops=\([0-9.]*\) .*/\1/p' <<<"$log")
calls=$(python3 - $out <<'PY'
import sys,re
names={}
tot=0
cur=None
for line in open(sys.argv[1],errors='replace'):
    m=re.match(r'cfn=\((\d+)\)(?: (.*))?',line)
    if m:
        i,n=m.groups()
        if n: names[i]=n.strip()
        cur=names.get(i,'')
        continue
    m=re.match(r'fn=\((\d+)\)(?: (.*))?',line)
    if m:
        i,n=m.groups()
        if n: names[i]=n.strip()
        cur=None; continue
    if line.startswith('calls=') and cur is not None:
        if cur in ('clock_gettime','__clock_gettime','clock_gettime@@GLIBC_2.17','__GI___clock_gettime') or 'clock_gettime' in cur:
            tot+=int(line.split()[0][6:])
        cur=None
print(tot)
PY
)
echo "$cls.$m($*) trace=$T count=$C ops=$ops clock_calls=$calls"
rm -f $out
