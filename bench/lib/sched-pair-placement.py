#!/usr/bin/env python3
# sched-pair-placement.py TRACE.txt PID [PAIR_PREFIX [MAIN_PREFIX]] (issue 20, h199; run by bench/domains-pingpong-placement.sh)
# TRACE.txt: `perf script -F comm,pid,tid,cpu,time,event,trace` of sched_{waking,wakeup,migrate_task,switch}.
# The pair: the process's main thread (tid == PID; or the latest thread named MAIN_PREFIX...) and its latest thread named
# PAIR_PREFIX... (default "eio "). Per wake-up of either: onto which CPU (the waker's or the other), whether the other CPU
# was idle, waking->running latency; migrations; switch-outs by kind; the share of time both were placed on one CPU.
import re, sys, collections
path, P = sys.argv[1], int(sys.argv[2]); prefix = sys.argv[3] if len(sys.argv) > 3 else 'eio '
mprefix = sys.argv[4] if len(sys.argv) > 4 else None
hdr = re.compile(r'^\s*(.+?)\s+(\d+)/(\d+)\s+\[(\d+)\]\s+([\d.]+):\s+sched:(\w+):\s*(.*)$')
kv = re.compile(r'(\w+)=(\S+)')
lines = []
mine = set()
for line in open(path, errors='replace'):
    m = hdr.match(line)
    if not m: continue
    lines.append(m.groups())
    if int(m[2]) == P: mine.add(int(m[3]))
comm = {}
cur = {}; tcpu = {}; waking = {}
lat = collections.defaultdict(list); place = collections.Counter(); migr = collections.Counter()
outs = collections.Counter(); same_t = both_t = 0.0; last_t = None; dom = None
M = P
per_window = collections.defaultdict(lambda: [0.0, 0.0])
def role(t):
    if t == M: return 'main'
    if t == dom: return 'domain'
    return None
for c, pid, tid, cpu, t, ev, rest in lines:
    tid, cpu, t = int(tid), int(cpu), float(t)
    if last_t is not None and dom is not None and M in tcpu and dom in tcpu:
        d = t - last_t; both_t += d; w = per_window[int(t * 10)]; w[1] += d
        if tcpu[M] == tcpu[dom]: same_t += d; w[0] += d
    last_t = t
    if ev == 'sched_switch':
        f = dict(kv.findall(rest.replace(' ==> ', ' ')))
        prev, nxt = int(f['prev_pid']), int(f['next_pid'])
        comm[nxt] = f['next_comm']; cur[cpu] = nxt
        if nxt in mine and f['next_comm'].startswith(prefix.strip()) and nxt != M: dom = nxt
        if mprefix and nxt in mine and f['next_comm'].startswith(mprefix) and nxt != dom: M = nxt
        if role(prev):
            kind = 'sleep' if not f['prev_state'].startswith('R') else ('yield/preempt to ' + (role(nxt) or ('idle' if nxt == 0 else 'other:' + f['next_comm'])))
            outs[(role(prev), kind)] += 1
        if role(nxt):
            tcpu[nxt] = cpu
            if nxt in waking:
                w = waking.pop(nxt)
                if w[3]: lat[w[3]].append((t - w[0]) * 1e6)
    elif ev == 'sched_waking':
        f = dict(kv.findall(rest)); p = int(f['pid'])
        if mprefix and p in mine and f.get('comm', '').startswith(mprefix): M = p
        if p == M or (p in mine and f.get('comm', '').startswith(prefix.strip())):
            if p != M: dom = p
            waking[p] = [t, tid, cpu, None, cur.get(1 - cpu, 0) == 0]
    elif ev == 'sched_wakeup':
        f = dict(kv.findall(rest)); p = int(f['pid'])
        if p in waking and waking[p][3] is None:
            w = waking[p]; tc = int(f['target_cpu'])
            wr = 'main' if w[1] == M else 'domain' if w[1] == dom else 'other'
            key = f"{('main' if p == M else 'domain')} woken by {wr} on cpu{w[2]} -> {'same cpu' if tc == w[2] else 'other cpu'} ({'other cpu idle' if w[4] else 'other cpu busy'})"
            w[3] = key; place[key] += 1; tcpu[p] = tc
    elif ev == 'sched_migrate_task':
        f = dict(kv.findall(rest)); p = int(f['pid'])
        if role(p) or p == dom:
            peer = dom if role(p) == 'main' else M
            dc = int(f['dest_cpu'])
            kind = 'at wake-up' if p in waking else 'running/runnable'
            rel = 'onto the peer\'s cpu' if tcpu.get(peer) == dc else 'away from the peer'
            oc_idle = cur.get(dc, 0) == 0
            migr[(role(p), kind, rel, 'dest idle' if oc_idle else 'dest busy')] += 1; tcpu[p] = dc
print(f'threads of pid {P}: {len(mine)}')
print('wake-ups by placement (waking -> running, us):')
for k, v in place.most_common():
    l = sorted(lat[k]); n = len(l)
    q = lambda p: l[min(n - 1, int(p * n))] if n else float('nan')
    print(f'  {v:7d}  {k}: p10 {q(.1):.1f} p50 {q(.5):.1f} p90 {q(.9):.1f}')
print('migrations:'); [print(f'  {v:7d}  {k}') for k, v in migr.most_common()]
print('switch-outs:'); [print(f'  {v:7d}  {k}') for k, v in outs.most_common(12)]
if both_t:
    print(f'time both on one CPU: {same_t / both_t * 100:.1f}% of {both_t:.3f} s')
    print('per 100 ms window, % on one CPU: ' + ' '.join(f'{w[0] / w[1] * 100:.0f}' for k, w in sorted(per_window.items()) if w[1] > 0.02))
