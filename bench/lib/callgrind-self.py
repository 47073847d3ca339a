#!/usr/bin/env python3
"""Self cost (instructions) by function of a callgrind dump written with --dump-instr=yes, JIT-compiled functions named
through the .NET runtime's perf map (DOTNET_PerfMapEnabled=1: /tmp/perf-PID.map, "start size name" in hex).

usage: callgrind-self.py DUMP [PERF_MAP|-] [DIVISOR=1] [TOP=40]
Prints the TOP functions by self cost divided by DIVISOR (e.g. the round trips of the dump), with their share.
"""
import bisect
import re
import sys


def load_map(path):
    entries = []
    if path and path != "-":
        try:
            for line in open(path, errors="replace"):
                parts = line.rstrip("\n").split(" ", 2)
                if len(parts) == 3:
                    entries.append((int(parts[0], 16), int(parts[1], 16), parts[2]))
        except FileNotFoundError:
            pass
    entries.sort()
    return [e[0] for e in entries], entries


def main():
    dump = sys.argv[1]
    starts, entries = load_map(sys.argv[2] if len(sys.argv) > 2 else "-")
    divisor = float(sys.argv[3]) if len(sys.argv) > 3 else 1.0
    top = int(sys.argv[4]) if len(sys.argv) > 4 else 40

    def managed(addr):
        i = bisect.bisect_right(starts, addr) - 1
        if i >= 0:
            s, size, name = entries[i]
            if addr < s + size:
                return name
        return None

    names = {}  # compressed id -> name, per kind (fn, obj)
    positions = ["line"]
    cost_index = 0
    fn = obj = "?"
    last = None
    after_calls = 0
    self_cost = {}
    total = 0
    events = None
    for raw in open(dump, errors="replace"):
        line = raw.rstrip("\n")
        if not line:
            continue
        c = line[0]
        if line.startswith("positions:"):
            positions = line.split()[1:]
            last = [0] * len(positions)
            continue
        if line.startswith("events:"):
            events = line.split()[1:]
            cost_index = events.index("Ir") if "Ir" in events else 0
            continue
        m = re.match(r"^(c?fn|c?ob|c?fi|c?fe|fl|fi|fe)=(?:\((\d+)\))?\s*(.*)$", line)
        if m:
            kind, ident, name = m.group(1), m.group(2), m.group(3)
            base = kind.lstrip("c")
            if base in ("fi", "fe", "fl"):
                base = "fl"
            key = (base, ident)
            if name:
                if ident is not None:
                    names[key] = name
            else:
                name = names.get(key, "?")
            if kind == "fn":
                fn = name
            elif kind == "ob":
                obj = name
            continue
        if line.startswith("calls="):
            after_calls = 1
            continue
        if c.isdigit() or c in "+-*" or line.startswith("0x"):
            fields = line.split()
            npos = len(positions)
            if last is None:
                last = [0] * npos
            pos = []
            for i in range(npos):
                f = fields[i]
                if f == "*":
                    v = last[i]
                elif f[0] in "+-":
                    v = last[i] + int(f, 0) if not f[1:].startswith("0x") else last[i] + (int(f[1:], 16) * (1 if f[0] == "+" else -1))
                else:
                    v = int(f, 0)
                pos.append(v)
            last = pos
            costs = fields[npos:]
            if after_calls:
                after_calls = 0
                continue  # inclusive cost of a call, not self
            ir = int(costs[cost_index]) if len(costs) > cost_index else 0
            total += ir
            name = fn
            if fn.startswith("0x") or fn == "???" or "???" in obj:
                addr = pos[positions.index("instr")] if "instr" in positions else None
                name = (addr is not None and managed(addr)) or (f"[{obj.rsplit('/', 1)[-1]}] " + fn)
            self_cost[name] = self_cost.get(name, 0) + ir
            continue
    print(f"total {total / divisor:,.0f} per unit ({total:,} instructions)")
    for name, v in sorted(self_cost.items(), key=lambda kv: -kv[1])[:top]:
        print(f"{v / divisor:10,.0f} {100.0 * v / total if total else 0:5.1f}%  {name[:160]}")


if __name__ == "__main__":
    main()
