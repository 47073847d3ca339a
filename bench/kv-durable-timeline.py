#!/usr/bin/env python3
"""Phases of a durable round from an strace -ttt -T trace (bench/kv-durable-timeline.sh): trace file, kind (redis|kv)."""
import re
import sys

path, kind = sys.argv[1], sys.argv[2]
t0 = float(open(path + '.t0').read())
t1 = float(open(path + '.t1').read())
line = re.compile(r'(\d+)\s+([\d.]+) (\w+)\((.*)\)\s+=\s+(-?\d+).*<([\d.]+)>')
phases = {'wait': [], 'apply': [], 'fsync': [], 'after': [], 'cycle': [], 'requests': []}
sync_end = wait_start = wait_end = None
ready = 0
for text in open(path):
    m = line.match(text)
    if not m:
        continue
    _, t, name, args, ret, dur = m.groups()
    t, dur, ret = float(t), float(dur), int(ret)
    if t < t0 or t > t1:
        continue
    if name == 'fdatasync':
        if sync_end is not None and wait_end is not None:
            phases['cycle'].append(t + dur - sync_end)
            phases['after'].append(wait_start - sync_end)
            phases['wait'].append(wait_end - wait_start)
            phases['apply'].append(t - wait_end)
            if kind == 'redis':
                phases['requests'].append(ready)
        phases['fsync'].append(dur)
        sync_end, wait_start, wait_end, ready = t + dur, None, None, 0
    elif name == 'pwrite64' and kind == 'kv':
        phases['requests'].append(ret / 59)
    elif sync_end is not None and (name == 'epoll_wait' or (name == 'io_uring_enter' and 'EXT_ARG' in args and int(args.split(',')[2]) > 1)):
        if wait_start is None:
            wait_start = t
        wait_end = t + dur
        if name == 'epoll_wait':
            ready += ret


def quant(xs, scale):
    xs = sorted(xs)
    n = len(xs)
    return 'median %6.0f  p10 %6.0f  p90 %6.0f  mean %6.0f' % (xs[n // 2] * scale, xs[n // 10] * scale, xs[9 * n // 10] * scale, sum(xs) / n * scale)


print('  rounds %d (fdatasyncs in the run: %d)' % (len(phases['cycle']), len(phases['fsync'])))
for k in ['wait', 'apply', 'fsync', 'after', 'cycle']:
    if phases[k]:
        print('  %-9s µs %s' % (k, quant(phases[k], 1e6)))
if phases['requests']:
    print('  %-12s %s' % ('requests', quant(phases['requests'], 1)))
    per = sum(phases['cycle']) / max(1, sum(phases['requests'][-len(phases['cycle']):]))
    print('  cycle per request %.1f µs' % (per * 1e6))
