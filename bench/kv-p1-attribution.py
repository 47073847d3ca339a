#!/usr/bin/env python3
"""Where a server's CPU per request goes on the one-request-at-a-time rows (issue 14, session 27, h165).

    python3 bench/kv-p1-attribution.py LABEL=SPEC ...

SPEC: `redis` (redis-server --save '' --appendonly no, as bench/kv-vs-redis.sh runs it), `redis|--appendonly|yes|...`
(more redis-server arguments after `|`), or `PATH/EioSharp.Kv.dll` with its own arguments after `|` (e.g.
`/tmp/s27-base/kv/EioSharp.Kv.dll|--appendonly|no`). Environment for one Kv target: KVENV_<label> ("V=x W=y"; `-` in
the label becomes `_`).

All servers start first (127.0.0.1, free ports, fresh directories) and are warmed with WARM runs of every row; then
REPEATS rounds run every row on every server in turn (alternating, so the machine's drift hits all alike). Per run:
  - ops/s (redis-benchmark -r 100000 -d 16 --csv; rows c1-set, c1-get: -c 1, N_C1 requests; c50-set, c50-get: -c 50,
    N_C50 requests; c1000-set, c1000-get: -c 1000, N_C1000 requests (200000));
  - CPU per request from every thread's /proc/PID/task/TID/schedstat (nanoseconds run, not clock ticks: a one-client
    run of 40,000 requests is ~0.5 s of CPU, which 10 ms ticks would read to +-2%), split into user and system time in
    the proportion of the threads' utime/stime ticks;
  - voluntary (the thread slept) and involuntary (it was preempted) context switches per request, every thread.
The medians over the rounds are printed at the end, with every run's CPU. Environment: ROWS ("c1-set c1-get c50-set"),
REPEATS (5), WARM (2), N_C1 (40000), N_C50 (200000). The load average is printed with each run: the counts (switches)
move less with it than the CPU does.
"""
import collections
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROWS = os.environ.get('ROWS', 'c1-set c1-get c50-set').split()
REPEATS = int(os.environ.get('REPEATS', 5))
N = {'c1': int(os.environ.get('N_C1', 40000)), 'c50': int(os.environ.get('N_C50', 200000)),
     'c1000': int(os.environ.get('N_C1000', 200000))}
WARM = int(os.environ.get('WARM', 2))


def free_port():
    s = socket.socket()
    s.bind(('127.0.0.1', 0))
    port = s.getsockname()[1]
    s.close()
    return port


def start(label, spec):
    port, d = free_port(), tempfile.mkdtemp(prefix='kv-p1-attribution.')
    parts = spec.split('|')
    if parts[0] == 'redis':
        cmd = ['redis-server', '--port', str(port), '--bind', '127.0.0.1', '--dir', d, '--appendonly', 'no', '--save', '',
               '--daemonize', 'no', '--logfile', d + '/log'] + parts[1:]
    else:
        cmd = ['dotnet', parts[0], '--port', str(port), '--bind', '127.0.0.1', '--dir', d + '/data'] + parts[1:]
    env = dict(os.environ)
    for kv in os.environ.get('KVENV_' + label.replace('-', '_'), '').split():
        k, v = kv.split('=', 1)
        env[k] = v
    p = subprocess.Popen(cmd, stdout=open(d + '/out', 'w'), stderr=subprocess.STDOUT, env=env)
    for _ in range(600):
        r = subprocess.run(['redis-cli', '-p', str(port), 'ping'], capture_output=True, text=True)
        if r.stdout.strip() == 'PONG':
            break
        time.sleep(0.1)
    return label, port, p, d


def bench(port, row, n):
    clients, test = row.split('-')
    r = subprocess.run(['redis-benchmark', '-p', str(port), '-n', str(n), '-r', '100000', '-c', clients[1:], '-d', '16',
                        '-t', test, '--csv'], capture_output=True, text=True)
    lines = r.stdout.splitlines()
    return float(lines[1].split('","')[1]) if len(lines) > 1 else 0.0


def snap(pid):
    """Per thread: (ns run, utime ticks, stime ticks, voluntary switches, involuntary switches)."""
    out = {}
    for tid in os.listdir(f'/proc/{pid}/task'):
        try:
            stat = open(f'/proc/{pid}/task/{tid}/stat').read()
            sched = open(f'/proc/{pid}/task/{tid}/schedstat').read().split()
            status = open(f'/proc/{pid}/task/{tid}/status').read()
        except (FileNotFoundError, ProcessLookupError):
            continue
        f = stat[stat.rindex(')') + 2:].split()
        vcs = int(re.search(r'\nvoluntary_ctxt_switches:\s+(\d+)', status).group(1))
        nvcs = int(re.search(r'nonvoluntary_ctxt_switches:\s+(\d+)', status).group(1))
        out[tid] = (int(sched[0]), int(f[11]), int(f[12]), vcs, nvcs)
    return out


def main():
    servers = [start(*a.split('=', 1)) for a in sys.argv[1:]]
    try:
        for row in ROWS:
            for _, port, _, _ in servers:
                for _ in range(WARM):
                    bench(port, row, N[row.split('-')[0]])
        res = collections.defaultdict(list)
        for rep in range(REPEATS):
            for row in ROWS:
                n = N[row.split('-')[0]]
                for label, port, p, _ in servers:
                    a = snap(p.pid)
                    ops = bench(port, row, n)
                    b = snap(p.pid)
                    tot = [0] * 5
                    for tid, v in b.items():
                        before = a.get(tid, (0,) * 5)
                        for i in range(5):
                            tot[i] += v[i] - before[i]
                    u, s = tot[1], tot[2]
                    cpu = tot[0] / 1e3 / n
                    r = (ops, cpu, cpu * u / max(u + s, 1), cpu * s / max(u + s, 1), tot[3] / n, tot[4] / n)
                    res[(row, label)].append(r)
                    load = open('/proc/loadavg').read().split()[0]
                    print(f'rep {rep} {row} {label}: ops/s {ops:.0f} cpu {cpu:.2f} us (user {r[2]:.2f} sys {r[3]:.2f}) '
                          f'vcs {r[4]:.3f} nvcs {r[5]:.3f} load {load}', flush=True)
        print('\nmedians:')
        for row in ROWS:
            for label, *_ in servers:
                rs = res[(row, label)]
                med = [statistics.median(x[i] for x in rs) for i in range(6)]
                print(f'{row:8s} {label:14s} ops/s {med[0]:8.0f}  cpu {med[1]:6.2f} us  user {med[2]:5.2f} sys {med[3]:5.2f}  '
                      f'vcs/req {med[4]:.3f} nvcs/req {med[5]:.3f}   (cpu runs: {" ".join(f"{x[1]:.2f}" for x in rs)})')
    finally:
        for _, _, p, d in servers:
            p.terminate()
            p.wait()
            shutil.rmtree(d, ignore_errors=True)


if __name__ == '__main__':
    main()
