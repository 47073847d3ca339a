#!/usr/bin/env python3
"""Where the two threads of a cross-thread ping-pong ran (issue 20, session 35, h196), from `perf script -F
pid,tid,cpu,time,event,trace` of sched_switch/sched_wakeup/sched_migrate_task recorded system-wide.
Usage: sched-pairs.py SCRIPT PID [PEER_COMM_PREFIX]
The process's busiest thread is side A (the main domain's, or the TCS benchmark's main thread); side B is every other
thread of PID whose name starts with PEER_COMM_PREFIX ('eio domain' by default: each invocation of PromiseAcrossDomains
starts a new domain thread; give the TCS benchmark's thread's prefix for that method), taken one invocation at a time
(the span from a B thread's first to its last event). Per invocation: the time A and B ran on each CPU, the share of the
span in which both ran at once (on the two CPUs) and in which they shared one CPU (B waiting runnable while A ran there,
or the other way), the direct switches between them on one CPU (and how many left the previous one runnable: a yield
or a preemption), and where B's and A's wake-ups landed (the waker's CPU or the other, and whether that one was idle),
the migrations, and the time of other tasks and of idle per CPU."""
import re, sys, collections
path, pid = sys.argv[1], int(sys.argv[2])
prefix = sys.argv[3] if len(sys.argv) > 3 else 'eio domain'
rx = re.compile(r'^\s*(?:(\d+)/)?(\d+)\s+\[(\d+)\]\s+([\d.]+):\s+(\S+):\s*(.*)$')
ev, pidof, comm = [], {}, {}
for line in open(path):
    m = rx.match(line)
    if not m: continue
    t, cpu, tid, name, tr = float(m[4]), int(m[3]), int(m[2]), m[5].split(':')[-1], m[6]
    if m[1]: pidof[tid] = int(m[1])
    if name == 'sched_switch':
        for k in ('prev', 'next'):
            mm = re.search(k + r'_comm=(.*?) ' + k + r'_pid=(\d+)', tr); comm[int(mm[2])] = mm[1]
    ev.append((t, cpu, tid, name, tr))
ev.sort()
mine = [t for t, p in pidof.items() if p == pid]
sw = collections.Counter(int(re.search(r'next_pid=(\d+)', e[4])[1]) for e in ev if e[3] == 'sched_switch')
A = max(mine, key=lambda x: sw[x])
peers = [x for x in mine if x != A and comm.get(x, '').startswith(prefix)]
span = {}
for t, cpu, tid, name, tr in ev:
    ids = {tid}
    for mm in re.finditer(r'(?:next_pid|prev_pid|\bpid)=(\d+)', tr): ids.add(int(mm[1]))
    for x in ids & set(peers):
        a, b = span.get(x, (t, t)); span[x] = (min(a, t), max(b, t))
print(f"side A: {A} ({comm.get(A)}); side B: {len(peers)} threads ({prefix}...)")
cur = [None, None]; rq_wait = {}  # tid -> cpu where it was switched out runnable (waiting on that CPU's queue)
prev = None
tot = collections.Counter()
for B in sorted(peers, key=lambda x: span[x][0]):
    s0, s1 = span[B]
    if s1 - s0 < 0.02: continue
    st = collections.Counter(); wake = collections.Counter(); mig = collections.Counter(); others = collections.Counter()
    cur = [None, None]; rq = {}
    prev = None
    for t, cpu, tid, name, tr in ev:
        if t > s1: break
        if prev is not None and t >= s0:
            dt = t - prev
            a = [c for c in range(2) if cur[c] == A]; b = [c for c in range(2) if cur[c] == B]
            if a and b: st['both'] += dt
            elif a and rq.get(B) == a[0]: st['shared'] += dt
            elif b and rq.get(A) == b[0]: st['shared'] += dt
            for c in range(2):
                if cur[c] == A: st[f'A{c}'] += dt
                elif cur[c] == B: st[f'B{c}'] += dt
                elif cur[c] == 0: st[f'idle{c}'] += dt
                elif cur[c] is not None:
                    st[f'other{c}'] += dt; others[(comm.get(cur[c], '?'), c)] += dt
        prev = t
        if name == 'sched_switch':
            pp = int(re.search(r'prev_pid=(\d+)', tr)[1]); np_ = int(re.search(r'next_pid=(\d+)', tr)[1])
            state = re.search(r'prev_state=(\S+)', tr)[1]
            if pp in (A, B):
                if state.startswith('R'): rq[pp] = cpu
                else: rq.pop(pp, None)
            rq.pop(np_, None)
            if t >= s0 and {pp, np_} == {A, B}:
                st['direct'] += 1
                if state.startswith('R'): st['direct_R'] += 1
            cur[cpu] = np_
        elif name == 'sched_wakeup' and t >= s0:
            p = int(re.search(r'\bpid=(\d+)', tr)[1])
            if p in (A, B):
                tc = int(re.search(r'target_cpu=(\d+)', tr)[1]); oc = 1 - cpu
                oth = 'idle' if cur[oc] == 0 else ('runs the peer' if cur[oc] in (A, B) else 'runs another task')
                wake[(('A' if p == A else 'B'), 'waker cpu' if tc == cpu else 'other cpu', oth, 'peer' if tid in (A, B) else 'other')] += 1
        elif name == 'sched_migrate_task' and t >= s0:
            p = int(re.search(r'\bpid=(\d+)', tr)[1])
            if p in (A, B):
                mig[('A' if p == A else 'B', re.search(r'orig_cpu=(\d+)', tr)[1] + '->' + re.search(r'dest_cpu=(\d+)', tr)[1])] += 1
    d = s1 - s0
    ms = lambda k: f"{st[k]*1e3:.0f}"
    print(f"{comm.get(B)} ({B}): {d*1e3:.0f} ms; both at once {st['both']/d*100:.0f}%, sharing one CPU {st['shared']/d*100:.0f}%; "
          f"A cpu0/cpu1 {ms('A0')}/{ms('A1')} ms, B {ms('B0')}/{ms('B1')} ms; idle {ms('idle0')}/{ms('idle1')}, other tasks {ms('other0')}/{ms('other1')} ms; "
          f"direct switches {st['direct']} ({st['direct_R']} runnable)")
    if others: print("   other tasks: " + '; '.join(f"{k[0]}@cpu{k[1]} {v*1e3:.1f} ms" for k, v in others.most_common(4)))
    if wake: print("   wake-ups (whom, where, the other cpu, by): " + '; '.join(f"{'/'.join(k)} {v}" for k, v in sorted(wake.items(), key=lambda kv: -kv[1])))
    if mig: print("   migrations: " + '; '.join(f"{k[0]} {k[1]} {v}" for k, v in sorted(mig.items(), key=lambda kv: -kv[1])))
