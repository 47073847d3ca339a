#!/usr/bin/env python3
# sched-row-overlap.py TRACE.txt SERVER_PID CLIENT_PID (issue 14, session 41, h223, §220; run by bench/kv-row-placement.sh)
# TRACE.txt: `perf script -F comm,pid,tid,cpu,time,event,trace` of sched_{switch,wakeup,migrate_task} recorded system-wide
# while one redis-benchmark run (CLIENT_PID, one thread) loaded one server (SERVER_PID, every thread). Over the client's
# life in the trace, in ms and as shares of it:
#   - run time: the client's, the server's (every thread), the rest of the machine's (other processes, idle excluded);
#   - both running: the client and some server thread on the two CPUs at once (what a pipelined row needs);
#   - the client runnable but not running, by what ran on the CPU it waited for: a server thread, another process, or
#     nothing (the wake-up's latency); the same for the server's threads (waiting behind the client, another process);
#   - wake-ups of each side onto the CPU the other side was running on, and migrations.
# One line "overlap k=v ..." (times in ms) for the caller to print beside the run's ops/s.
import re
import sys

path, SP, CP = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
hdr = re.compile(r'^\s*(.+?)\s+(-?\d+)/(\d+)\s+\[(\d+)\]\s+([\d.]+):\s+sched:(\w+):\s*(.*)$')
kvre = re.compile(r'(\w+)=(\S+)')
events = []
server_tids, client_tids = set(), set()
for line in open(path, errors='replace'):
    m = hdr.match(line)
    if not m:
        continue
    comm, pid, tid, cpu, t, ev, rest = m.groups()
    events.append((int(tid), int(cpu), float(t), ev, rest))
    if int(pid) == SP:
        server_tids.add(int(tid))
    elif int(pid) == CP:
        client_tids.add(int(tid))
# tids named in the events' fields (a wakeup's pid= is a tid) belong to a side when they were ever seen as that process


def side(tid):
    if tid in client_tids:
        return 'c'
    if tid in server_tids:
        return 's'
    if tid == 0:
        return 'idle'
    return 'o'


running = {}  # cpu -> tid
state = {}  # tid -> ('run', cpu) | ('wait', cpu) | ('sleep', None)
acc = {k: 0.0 for k in ('c_run', 's_run', 'o_run', 'both', 'c_wait_s', 'c_wait_o', 'c_wait_idle', 's_wait_c', 's_wait_o',
                        's_wait_idle', 's_wait_s')}
cnt = {k: 0 for k in ('c_wake_onto_s', 'c_wake_other', 's_wake_onto_c', 's_wake_other', 'c_migr', 's_migr')}
t0 = t1 = None
last = None


def tally(d):
    sides_running = {cpu: side(tid) for cpu, tid in running.items()}
    c_on = [cpu for cpu, s in sides_running.items() if s == 'c']
    s_on = [cpu for cpu, s in sides_running.items() if s == 's']
    o_on = [cpu for cpu, s in sides_running.items() if s == 'o']
    acc['c_run'] += d * len(c_on)
    acc['s_run'] += d * len(s_on)
    acc['o_run'] += d * len(o_on)
    if c_on and s_on:
        acc['both'] += d
    for tid, (st, cpu) in state.items():
        if st != 'wait':
            continue
        who = sides_running.get(cpu, 'idle')
        sd = side(tid)
        if sd == 'c':
            acc['c_wait_' + ('s' if who == 's' else 'o' if who == 'o' else 'idle' if who == 'idle' else 'o')] += d
        elif sd == 's':
            acc['s_wait_' + ('c' if who == 'c' else 'o' if who == 'o' else 's' if who == 's' else 'idle')] += d


for tid, cpu, t, ev, rest in events:
    if last is not None and t0 is not None:
        tally(t - last)
    last = t
    f = dict(kvre.findall(rest.replace(' ==> ', ' ')))
    if ev == 'sched_switch':
        prev, nxt = int(f['prev_pid']), int(f['next_pid'])
        running[cpu] = nxt
        if side(prev) in ('c', 's'):
            st = f.get('prev_state', 'S')
            state[prev] = ('wait', cpu) if st.startswith('R') else ('sleep', None)
        if side(nxt) in ('c', 's'):
            state[nxt] = ('run', cpu)
        if side(nxt) == 'c' and t0 is None:
            t0 = t
        if side(nxt) == 'c':
            t1 = t
        if side(prev) == 'c':
            t1 = t
    elif ev == 'sched_wakeup':
        w = int(f['pid'])
        target = int(f.get('target_cpu', cpu))
        if side(w) in ('c', 's'):
            state[w] = ('wait', target)
            other = 's' if side(w) == 'c' else 'c'
            if side(running.get(target, 0)) == other:
                cnt[side(w) + '_wake_onto_' + other] += 1
            else:
                cnt[side(w) + '_wake_other'] += 1
    elif ev == 'sched_migrate_task':
        w = int(f['pid'])
        if side(w) in ('c', 's'):
            cnt[side(w) + '_migr'] += 1
            st, _ = state.get(w, ('sleep', None))
            if st == 'wait':
                state[w] = ('wait', int(f['dest_cpu']))
span = (t1 - t0) if t0 is not None and t1 is not None else 0.0
ms = {k: v * 1000 for k, v in acc.items()}
out = [f'span={span * 1000:.1f}ms']
out += [f'{k}={v:.1f}' for k, v in ms.items()]
if span > 0:
    out += [f'both_share={acc["both"] / span:.3f}', f'c_run_share={acc["c_run"] / span:.3f}',
            f's_run_share={acc["s_run"] / span:.3f}', f'o_run_cores={acc["o_run"] / span:.3f}',
            f'c_wait_s_share={acc["c_wait_s"] / span:.3f}', f's_wait_c_share={acc["s_wait_c"] / span:.3f}']
out += [f'{k}={v}' for k, v in cnt.items()]
print('overlap ' + ' '.join(out))
