"""Summarises bench/trace-overhead.sh: median Mean per benchmark and variant, ratios off/base and on/off."""
import csv, glob, os, re, statistics, sys

out = sys.argv[1]
data = {}  # (bench) -> variant -> [ns]

def ns(text):
    m = re.match(r"([\d.,]+)\s*(ns|us|μs|ms|s)", text.strip())
    if not m:
        return None
    v = float(m.group(1).replace(",", ""))
    return v * {"ns": 1, "us": 1e3, "μs": 1e3, "ms": 1e6, "s": 1e9}[m.group(2)]

for path in glob.glob(os.path.join(out, "*-*", "results", "*-report.csv")):
    variant = os.path.basename(os.path.dirname(os.path.dirname(path))).split("-")[0]
    type_name = os.path.basename(path).replace("-report.csv", "").split(".")[-1]
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            if row.get("Baseline") == "Yes":
                continue  # the raw .NET baselines are not EioSharp code
            params = ",".join(f"{k}={row[k]}" for k in ("Capacity", "Fibers") if row.get(k))
            name = type_name + "." + row["Method"] + (f"({params})" if params else "")
            v = ns(row["Mean"])
            if v is not None:
                data.setdefault(name, {}).setdefault(variant, []).append(v)

print("| Benchmark | base (before tracing) | off | on | off / base | on / off |")
print("|---|---:|---:|---:|---:|---:|")
for name in sorted(data):
    d = {k: statistics.median(v) for k, v in data[name].items()}
    b, o, n = d.get("base"), d.get("off"), d.get("on")
    f = lambda x: f"{x:,.1f} ns" if x is not None else "-"
    r = lambda x, y: f"{x / y:.3f}" if x and y else "-"
    print(f"| {name} | {f(b)} | {f(o)} | {f(n)} | {r(o, b)} | {r(n, o)} |")
