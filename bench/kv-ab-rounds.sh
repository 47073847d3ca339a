#!/usr/bin/env bash
# Two EioSharp.Kv builds (or one build with a switch on one side) side by side in alternated rounds of
# bench/kv-vs-redis.sh, each round with fresh servers, the two builds' places swapped every second round (session 41,
# h223, issue 14, §220): medians of ops/s, server CPU per request and the client's CPU per request, "new above / below
# base in k of n" paired by run, and the same split by the place a build had in its round.
#
#   KV_BASE_DLL=/tmp/s40-base/kv/EioSharp.Kv.dll KV_DLL=/tmp/s41-base/kv/EioSharp.Kv.dll \
#     ROUNDS=8 WORKLOADS_ONLY="c50-P16" bash bench/kv-ab-rounds.sh
#
# Why rounds of fresh servers: one kv-vs-redis.sh invocation runs each server as one process for all its runs of a
# workload, and a process's runs are not independent (the -P 16 GET row of session 40's table read Kv 763k / 603k / 597k
# in one process against the other build's 770k / 771k / 948k in another); the places are swapped because the servers
# of a round run one after the other in a fixed order.
# Environment: ROUNDS (8), REPEATS (2 runs per server and round), SERVERS_A ("redis kvbase kv": odd rounds),
# SERVERS_B ("redis kv kvbase": even rounds), WORKLOADS_ONLY ("c50-P16"), WARMUP_SECONDS (10), OUT (a directory for
# the rounds' logs; default a fresh one under /tmp), and everything kv-vs-redis.sh reads (KV_ENV, KV_BASE_ENV,
# KV_ARGS, KV_BASE_ARGS, KV_BIN, KV_BASE_BIN...). The summary alone: bash bench/kv-ab-rounds.sh --summary OUT.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [ "${1:-}" = --summary ]; then
  OUT=$2
else
  OUT="${OUT:-$(mktemp -d /tmp/kv-ab-rounds.XXXXXX)}"; mkdir -p "$OUT"
  ROUNDS="${ROUNDS:-8}"
  for r in $(seq 1 "$ROUNDS"); do
    servers=${SERVERS_A:-redis kvbase kv}; [ $((r % 2)) = 0 ] && servers=${SERVERS_B:-redis kv kvbase}
    echo "round $r/$ROUNDS: SERVERS=\"$servers\" ($(date -u +%H:%M:%S), load $(cut -d' ' -f1-3 /proc/loadavg))" >&2
    NO_BUILD=1 NO_MEMORY=1 PRINT_RUNS=1 SERVERS="$servers" WORKLOADS_ONLY="${WORKLOADS_ONLY:-c50-P16}" \
      REPEATS="${REPEATS:-2}" WARMUP_SECONDS="${WARMUP_SECONDS:-10}" \
      bash "$ROOT/bench/kv-vs-redis.sh" >"$OUT/round-$r.out" 2>"$OUT/round-$r.log" || echo "round $r failed" >&2
    grep -E '^    ' "$OUT/round-$r.log" | sed 's/^    /  /' >&2 || true
  done
fi
python3 - "$OUT" <<'EOF'
import collections, glob, os, re, statistics, sys
out = sys.argv[1]
line_re = re.compile(r'^\s+(\S+) (\S+) (\S+) ([\d.]+) ops/s ([\d.]+) us/req(.*)\(load ([\d.]+)\)')
runs = []  # (round, workload, test, server, place, ops, cpu, client, others, outside, load)
for path in sorted(glob.glob(os.path.join(out, 'round-*.log')), key=lambda p: int(re.findall(r'(\d+)', p)[-1])):
    rnd = int(re.findall(r'(\d+)', path)[-1])
    seen = collections.defaultdict(list)  # (workload, test, rep) -> servers in the order they ran
    rep = collections.Counter()
    for line in open(path):
        m = line_re.match(line)
        if not m:
            continue
        w, t, s, ops, cpu, rest, load = m.groups()
        key = (w, t, s)
        rep[key] += 1
        order = seen[(w, t, rep[key])]
        order.append(s)
        num = lambda name: float(re.search(name + r' ([\d.-]+)', rest).group(1)) if re.search(name + r' ([\d.-]+)', rest) else float('nan')
        runs.append(dict(round=rnd, w=w, t=t, s=s, rep=rep[key], place=len(order), ops=float(ops), cpu=float(cpu),
                         client=num('client'), others=num('other servers'), outside=num('outside'), load=float(load)))
if not runs:
    sys.exit('no runs found in ' + out)
med = lambda xs: statistics.median(xs) if xs else float('nan')
loads = [r['load'] for r in runs]
print(f'{len(set(r["round"] for r in runs))} rounds, {len(runs)} runs, load average {min(loads):.1f}-{max(loads):.1f} ({out})')
for w, t in sorted(set((r['w'], r['t']) for r in runs)):
    rs = [r for r in runs if r['w'] == w and r['t'] == t]
    print(f'\n### {w} {t}: medians (every run)')
    print('| server | runs | ops/s | server CPU µs/req | client CPU µs/req | other servers µs/req | outside cores |')
    print('|---|---:|---:|---:|---:|---:|---:|')
    for s in sorted(set(r['s'] for r in rs)):
        x = [r for r in rs if r['s'] == s]
        print(f"| {s} | {len(x)} | {med([r['ops'] for r in x]):,.0f} | {med([r['cpu'] for r in x]):.2f} | "
              f"{med([r['client'] for r in x]):.3f} | {med([r['others'] for r in x]):.3f} | {med([r['outside'] for r in x]):.2f} |")
    by = {(r['round'], r['rep'], r['s']): r for r in rs}
    pairs = [(by[k], by[(k[0], k[1], 'kvbase')]) for k in by if k[2] == 'kv' and (k[0], k[1], 'kvbase') in by]
    if pairs:
        n = len(pairs)
        ops = [a['ops'] / b['ops'] for a, b in pairs]; cpu = [a['cpu'] / b['cpu'] for a, b in pairs]
        cl = [a['client'] / b['client'] for a, b in pairs if b['client'] > 0]
        print(f"kv / kvbase paired by run: ops/s median ratio {med(ops):.3f}, kv higher in {sum(x > 1 for x in ops)} of {n}; "
              f"server CPU {med(cpu):.3f}, kv lower in {sum(x < 1 for x in cpu)} of {n}; client CPU {med(cl):.3f}, "
              f"lower in {sum(x < 1 for x in cl)} of {len(cl)}")
    kvs = [r for r in rs if r['s'] in ('kv', 'kvbase')]
    places = sorted(set(r['place'] for r in kvs))
    if len(places) > 1:
        print('by place in the round (kv and kvbase together): ' + '; '.join(
            f"place {p}: {len([r for r in kvs if r['place'] == p])} runs, ops/s {med([r['ops'] for r in kvs if r['place'] == p]):,.0f}, "
            f"CPU {med([r['cpu'] for r in kvs if r['place'] == p]):.2f}, client {med([r['client'] for r in kvs if r['place'] == p]):.3f}"
            for p in places))
        for s in ('kv', 'kvbase'):
            print(f'  {s}: ' + '; '.join(f"place {p} ops/s {med([r['ops'] for r in kvs if r['s'] == s and r['place'] == p]):,.0f}"
                                         for p in places))
    print('runs (round.rep server@place ops/s cpu client others outside load): ' + ', '.join(
        f"{r['round']}.{r['rep']} {r['s']}@{r['place']} {r['ops']/1000:.0f}k {r['cpu']:.2f} {r['client']:.2f} {r['others']:.2f} {r['outside']:.2f} {r['load']:.1f}"
        for r in rs))
EOF
