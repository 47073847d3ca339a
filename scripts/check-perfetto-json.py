#!/usr/bin/env python3
"""Checks a Chrome Trace Event JSON file against what Perfetto's JSON importer accepts and how it builds tracks.

ui.perfetto.dev cannot be reached from the build machines, so this encodes the rules of Perfetto's importer
(google/perfetto src/trace_processor/importers/json/json_trace_parser_impl.cc, read for this check):
  - every event has a string "ph"; "pid"/"tid" are numbers that fit uint32 (else they are hashed as names);
  - "X" needs a numeric "dur" (else the event is dropped); slices of one thread track must nest strictly (the slice
    tracker ends the innermost open slice; an overlap is a "misplaced end" and corrupts the track);
  - "b"/"e" (async) need "pid" and a non-empty "id": the track is keyed by (cat, id), so a "b" must be closed by an
    "e" with the same cat, id (and name) at a later or equal time (else json_parser_failure / an unclosed slice);
  - "s"/"f" flows: "id" numeric (or a hex string), the flow is keyed by (id, cat, name) so "s" and "f" must agree
    on cat and name; "f" with "bp":"e" binds to the slice enclosing it on that thread, so one must exist;
  - "i"/"I" with scope "t" need a "tid"; "M" thread_name needs args.name.
Usage: scripts/check-perfetto-json.py TRACE.json   (exit 1 and a list of problems if any rule is broken)
"""
import json, sys
from collections import defaultdict

def main(path):
    doc = json.load(open(path))
    events = doc["traceEvents"] if isinstance(doc, dict) else doc
    problems = []
    def bad(i, e, why):
        if len(problems) < 50:
            problems.append(f"event {i}: {why}: {json.dumps(e)[:200]}")
    x_by_tid = defaultdict(list)
    async_open = {}
    flows_s = {}
    f_events = []
    named = set()
    counts = defaultdict(int)
    for i, e in enumerate(events):
        ph = e.get("ph")
        if not isinstance(ph, str) or not ph:
            bad(i, e, "no string ph"); continue
        counts[ph] += 1
        for k in ("pid", "tid"):
            if k in e and not (isinstance(e[k], int) and 0 <= e[k] < 2**32):
                bad(i, e, f"{k} not a uint32 number")
        if ph != "M" and not isinstance(e.get("ts"), (int, float)):
            bad(i, e, "no numeric ts")
        if ph == "X":
            if not isinstance(e.get("dur"), (int, float)) or e["dur"] < 0:
                bad(i, e, "X without a numeric dur >= 0"); continue
            x_by_tid[e.get("tid", e.get("pid", 0))].append((e["ts"], e["ts"] + e["dur"], i))
        elif ph in ("b", "e"):
            if "pid" not in e or e.get("id") in (None, ""):
                bad(i, e, "async event without pid or id"); continue
            key = (e.get("cat"), str(e["id"]))
            if ph == "b":
                if key in async_open:
                    bad(i, e, "async b while the same (cat, id) is open")
                async_open[key] = e
            else:
                b = async_open.pop(key, None)
                if b is None:
                    bad(i, e, "async e without its b")
                elif b.get("name") != e.get("name") or e["ts"] < b["ts"]:
                    bad(i, e, "async e with another name or before its b")
        elif ph in ("s", "f"):
            fid = e.get("id")
            if not isinstance(fid, int):
                bad(i, e, "flow id not numeric"); continue
            key = (fid, e.get("cat"), e.get("name"))
            if ph == "s":
                flows_s[key] = e
            else:
                if key not in flows_s:
                    bad(i, e, "flow f without an s of the same id, cat and name")
                f_events.append((i, e))
        elif ph in ("i", "I"):
            if e.get("s", "t") == "t" and "tid" not in e:
                bad(i, e, "thread instant without tid")
        elif ph == "M" and e.get("name") == "thread_name":
            if not (e.get("args") or {}).get("name"):
                bad(i, e, "thread_name without args.name")
            named.add(e.get("tid"))
    # Strict nesting of complete slices per thread track.
    for tid, xs in x_by_tid.items():
        stack = []
        for ts, end, i in sorted(xs, key=lambda s: (s[0], -(s[1] - s[0]))):
            while stack and stack[-1][1] <= ts:
                stack.pop()
            if stack and end > stack[-1][1] + 1e-3:
                bad(i, events[i], f"X overlaps its enclosing slice on tid {tid} (ends {end} after {stack[-1][1]})")
            stack.append((ts, end))
    # Each bound flow end lies in a slice of its thread.
    for i, e in f_events:
        if e.get("bp") == "e":
            tid = e.get("tid")
            if not any(s <= e["ts"] <= t for s, t, _ in x_by_tid.get(tid, [])):
                bad(i, e, "flow f (bp e) outside any slice of its thread")
    unclosed = len(async_open)
    tracks = set(x_by_tid) | {e.get("tid") for e in events if e.get("ph") in ("i", "s", "f")}
    unnamed = sorted(t for t in tracks if t not in named)
    print(f"{path}: {len(events)} events {dict(counts)}; {len(x_by_tid)} thread tracks with slices; "
          f"{unclosed} async slices left open at the end (shown to the end of the trace); unnamed tracks: {unnamed}")
    if problems:
        print("\n".join(problems))
        return 1
    print("OK: every event is one Perfetto's JSON importer accepts, slices nest, flows bind")
    return 0

if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
