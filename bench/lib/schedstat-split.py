#!/usr/bin/env python3
# Runs a command (the client) and samples /proc/<pid>/schedstat of it and of the given server threads every 20 ms
# while it runs: prints, over the sampled window (from 0.3 s after the start to the last sample), each one's share of
# the wall time spent running, waiting for a CPU (run queue) and asleep (the rest: waiting for I/O, i.e. for the other
# side). A loaded machine lengthens the run-queue share; the sleep share is what a server's reply latency leaves the
# client waiting. CMD may be a wrapper such as /usr/bin/time: its first child is then the client.
#   usage: schedstat-split.py TID,TID... -- CMD ARG...
import subprocess, sys, time
tids = [t for t in sys.argv[1].split(",") if t]
cmd = sys.argv[sys.argv.index("--") + 1:]
def read(path):
    try:
        r, w, _ = open(path).read().split(); return int(r), int(w)
    except (OSError, ValueError):
        return None
p = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
paths = {"client": f"/proc/{p.pid}/schedstat", **{f"server:{t}": f"/proc/{t}/task/{t}/schedstat" for t in tids}}
first = last = None
start = time.monotonic()
while p.poll() is None:
    now = time.monotonic()
    if first is None:
        # CMD may be a wrapper (/usr/bin/time): the client is then its child
        try:
            kids = open(f"/proc/{p.pid}/task/{p.pid}/children").read().split()
            if kids: paths["client"] = f"/proc/{kids[0]}/schedstat"
        except OSError:
            pass
    snap = {k: read(v) for k, v in paths.items()}
    if snap["client"] is not None and now - start >= 0.3:
        if first is None: first = (now, snap)
        last = (now, snap)
    time.sleep(0.02)
out = p.stdout.read()
sys.stdout.write(out)
if first and last and last[0] > first[0]:
    wall = (last[0] - first[0]) * 1e9
    parts = []
    for k in paths:
        a, b = first[1][k], last[1][k]
        if a is None or b is None: continue
        run, wait = (b[0] - a[0]) / wall, (b[1] - a[1]) / wall
        parts.append(f"{k} run={run:.3f} runq={wait:.3f} sleep={max(0.0, 1 - run - wait):.3f}")
    print("SCHED " + " ".join(parts), file=sys.stderr)
