#!/usr/bin/env python3
"""Fiber runs and suspensions per operation in a fiber trace written by `DEBUG TRACE START/STOP` (Chrome trace JSON).

usage: trace-counts.py TRACE N LABEL [--unit UNIT] [--top RUNS SUSPENSIONS] [--blocks]

Counts the trace's fiber run slices ("X" events of cat fiber: one per resume of a fiber), by fiber name (without its
" #id"), and its suspensions ("b" events of cat suspended), by reason, and prints one line per trace, every count divided
by N (the operations the trace covers):
  LABEL: fiber runs/UNIT R [name r, ...] suspensions/UNIT [reason s, ...]
with the RUNS most frequent fiber names and the SUSPENSIONS most frequent reasons (default 6 and 5; UNIT default req).
--blocks puts "blocks/UNIT B, " first: BLPOPs that blocked, per operation (two runs of the blocked-read watcher fiber
per block in builds before session 23's h144, whose connection waits on its block events instead: its "queue"
suspensions). Used by bench/kv-p1-trace-counts.sh and bench/kv-pingpong-trace-counts.sh.
"""
import argparse
import collections
import json
import re


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("trace")
    parser.add_argument("n", type=int)
    parser.add_argument("label")
    parser.add_argument("--unit", default="req")
    parser.add_argument("--top", type=int, nargs=2, default=[6, 5], metavar=("RUNS", "SUSPENSIONS"))
    parser.add_argument("--blocks", action="store_true")
    args = parser.parse_args()

    events = json.load(open(args.trace))["traceEvents"]
    n = args.n
    runs = collections.Counter()
    susp = collections.Counter()
    for e in events:
        if e.get("ph") == "X" and e.get("cat") == "fiber":
            runs[re.sub(r" #\d+$", "", e["name"])] += 1
        elif e.get("ph") == "b" and e.get("cat") == "suspended":
            susp[e["args"].get("reason", "?")] += 1
    total = sum(runs.values())
    top = ", ".join(f"{k} {v / n:.3f}" for k, v in runs.most_common(args.top[0]))
    s = ", ".join(f"{k} {v / n:.3f}" for k, v in susp.most_common(args.top[1]))
    blocks = ""
    if args.blocks:
        if "kv-connection-blocked-read" in runs:
            b = runs["kv-connection-blocked-read"] / 2 / n  # builds before h144: the watcher fiber runs twice per block
        else:
            b = susp.get("queue", 0) / n  # h144 on: the connection's wait on its block events is the only queue wait
        blocks = f"blocks/{args.unit} {b:.2f}, "
    print(f"{args.label}: {blocks}fiber runs/{args.unit} {total / n:.3f} [{top}] suspensions/{args.unit} [{s}]")


if __name__ == "__main__":
    main()
