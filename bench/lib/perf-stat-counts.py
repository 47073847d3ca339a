#!/usr/bin/env python3
# perf-stat-counts.py LABEL N SERVER_CSV CLIENT_CSV: the per-request counts of two `perf stat -x,` files (one event per
# line: count,unit,event), the server's and the client's, as one line "counts LABEL server k=v ... | client k=v ...";
# a tracepoint's name loses its category and "sys_enter_" (syscalls:sys_enter_read -> read). Used by
# bench/kv-evalsha-threads.sh and bench/kv-client-wakeups.sh.
import sys

label, n = sys.argv[1], int(sys.argv[2])


def counts(path):
    d = {}
    for line in open(path):
        f = line.strip().split(",")
        if len(f) > 2 and f[0].isdigit():
            d[f[2].split(":")[1].replace("sys_enter_", "")] = int(f[0]) / n
    return d


s, c = counts(sys.argv[3]), counts(sys.argv[4])
print(f"counts {label} server " + " ".join(f"{k}={v:.4f}" for k, v in s.items())
      + " | client " + " ".join(f"{k}={v:.4f}" for k, v in c.items()))
