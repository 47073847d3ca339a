#!/usr/bin/env bash
# The durable row (50 clients SET, appendfsync always, -r 100000 -d 16) pass by pass, as bench/kv-vs-redis.sh runs it:
# warm-up passes of WARM requests alternated with a redis-server peer (appendfsync always too) until WARMUP_SECONDS
# have passed, then RUNS measured runs of N (each followed by the peer's). For every pass and run of the target: ops/s,
# the process's CPU per request, INFO persistence's fsyncs per request and its always-path counts (hinted rounds,
# overlapped rounds, guard probes and kept switches), and for the measured runs the CPU per request by thread kind and
# the GC's collections (bench/lib/thread-cpu.sh). Answers: what Kv's first measured run does that the later ones and
# the warm-up passes do not (issue 14, session 37, h207).
#
#   bash bench/kv-durable-first-run.sh TARGET...    # TARGET: [V=x,W=y@]PATH/EioSharp.Kv.dll (bench/lib/servers.sh's SPEC)
#
# With several targets, each gets its own fresh server and peer, one after the other, ROUNDS times alternated (A B A B
# ...), and the script ends with the medians per target of the run columns (all runs, and run 1 alone).
# Environment: RUNS (3), N (20000), WARM (4000: kv-vs-redis.sh's WARMUP=0.2 of this row), WARMUP_SECONDS (10), ROUNDS
# (1), PEER (redis; "none": no peer, the target idles nowhere between passes), SETTLE (0.15 s: the pause before reading
# INFO after a pass, so that the server's cron (10 Hz) has published the pass's counts), QUIET_PASSES (1: print only
# the warm-up's summary, not every pass), JITLOG (1: the methods the JIT compiled in each pass and run, by tier, from
# DOTNET_JitStdOutFile + DOTNET_JitDisasmSummary).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/bench/lib/servers.sh" kv-durable-first-run
source "$ROOT/bench/lib/thread-cpu.sh"
RUNS=${RUNS:-3}; N=${N:-20000}; WARM=${WARM:-4000}; WARMUP_SECONDS=${WARMUP_SECONDS:-10}; ROUNDS=${ROUNDS:-1}
PEER=${PEER:-redis}; SETTLE=${SETTLE:-0.15}; QUIET_PASSES=${QUIET_PASSES:-1}
[ $# -ge 1 ] || { echo "usage: $0 TARGET..." >&2; exit 2; }
RES="$WORK/runs"; : >"$RES"

rb() { # port n -> ops/s (a failed redis-benchmark prints nothing)
  redis-benchmark -h 127.0.0.1 -p "$1" -n "$2" -r 100000 -c 50 -d 16 -t set --csv 2>/dev/null |
    awk -F'","' 'NR > 1 { gsub(/"/, "", $2); print $2; exit }' || true
}
cpu() { awk '{print $14 + $15 + $16 + $17}' "/proc/$1/stat"; }
counts() { # port -> fsyncs hinted overlapped probes kept
  { redis-cli -p "$1" info persistence 2>/dev/null || true; } | tr -d '\r' | awk -F: '
    /^aof_fsyncs:/ {f=$2+0} /^aof_always_hinted_rounds:/ {h=$2+0} /^aof_always_overlap_rounds:/ {o=$2+0}
    /^aof_always_guard_probes:/ {p=$2+0} /^aof_always_guard_switches:/ {w=$2+0} END {print f+0, h+0, o+0, p+0, w+0}'
}
# line <label> <n> <ops> <cpu ticks> <counts before> <counts after>
line() {
  python3 - "$@" "$CLK_TCK" "$(cut -d' ' -f1 /proc/loadavg)" <<'PY'
import sys
label, n, ops, ticks, a, b, tck, load = sys.argv[1:]
n = int(n); a = [int(x) for x in a.split()]; b = [int(x) for x in b.split()]
d = [y - x for x, y in zip(a, b)]
cpu = int(ticks) * 1e6 / int(tck) / n
per = f", {d[2]} of {d[1]} hinted rounds overlapped ({n / d[1]:.1f} req/round)" if d[1] else ", no hinted round"
print(f"  {label}: {float(ops or 0):,.0f} ops/s {cpu:.2f} us/req, {d[0] / n:.4f} fsyncs/req{per}, {d[3]} probes ({d[4]} kept) (load {load})")
PY
}

jitsince() { # file from-line -> " jit N (tier counts)" for the lines after from-line; sets nothing
  [ -f "$1" ] || return 0
  tail -n +"$(( $2 + 1 ))" "$1" | python3 -c '
import sys, re, collections
t = collections.Counter()
for l in sys.stdin:
    m = re.search(r"Instrumented Tier[^,\]]*|Tier[^,\]]*|FullOpts|OSR|MinOpts", l)
    t[m.group(0).strip() if m else "other"] += 1
if t: print("      jit: %d methods (%s)" % (sum(t.values()), ", ".join(f"{k} {v}" for k, v in t.most_common())))'
}
jitlines() { [ -f "$1" ] && wc -l <"$1" || echo 0; }

one() { # target index
  local spec=$1 idx=$2 port pid pport="" ppid="" c0 c1 k0 k1 ops passes=0 w0 fs
  local jit=() jf="$WORK/jit.$idx.$RANDOM.txt" j0=0
  [ "${JITLOG:-0}" = 1 ] && jit=(DOTNET_JitStdOutFile="$jf" DOTNET_JitDisasmSummary=1)
  start_server "$spec" "${jit[@]}" -- --appendfsync always; port=$SERVER_PORT; pid=$SERVER_PID; local dir=$SERVER_DIR
  if [ "$PEER" = redis ]; then
    start_server redis -- --appendonly yes --appendfsync always; pport=$SERVER_PORT; ppid=$SERVER_PID
  fi
  echo "target $idx: $spec (pid $pid, load $(cut -d' ' -f1 /proc/loadavg))"
  local wk0 wc0; wk0=$(counts "$port"); wc0=$(cpu "$pid"); w0=$(date +%s)
  while true; do
    k0=$(counts "$port"); c0=$(cpu "$pid")
    ops=$(rb "$port" "$WARM")
    c1=$(cpu "$pid"); sleep "$SETTLE"; k1=$(counts "$port")
    passes=$((passes + 1))
    [ "$QUIET_PASSES" = 1 ] || { line "warm-up pass $passes" "$WARM" "$ops" "$((c1 - c0))" "$k0" "$k1"; jitsince "$jf" "$j0"; }
    j0=$(jitlines "$jf")
    [ -n "$pport" ] && rb "$pport" "$WARM" >/dev/null
    [ $(( $(date +%s) - w0 )) -ge "$WARMUP_SECONDS" ] && break
  done
  line "warm-up ($passes passes)" "$((passes * WARM))" 0 "$(( $(cpu "$pid") - wc0 ))" "$wk0" "$(counts "$port")"
  for run in $(seq 1 "$RUNS"); do
    k0=$(counts "$port"); thread_snap "$pid" kv "$port" >"$WORK/t0"; j0=$(jitlines "$jf"); c0=$(cpu "$pid")
    ops=$(rb "$port" "$N")
    c1=$(cpu "$pid"); thread_snap "$pid" kv "$port" >"$WORK/t1"; sleep "$SETTLE"; k1=$(counts "$port")
    line "run $run" "$N" "$ops" "$((c1 - c0))" "$k0" "$k1"
    thread_diff "$WORK/t0" "$WORK/t1" "$N"; jitsince "$jf" "$j0"
    echo "$idx $run $ops $(python3 -c "print(($c1 - $c0) * 1e6 / $CLK_TCK / $N)")" >>"$RES"
    [ -n "$pport" ] && rb "$pport" "$N" >/dev/null
  done
  kill "$pid"; wait "$pid" 2>/dev/null || true
  [ -n "$ppid" ] && { kill "$ppid"; wait "$ppid" 2>/dev/null || true; }
  grep -h 'h149:\|overlapped rounds (EIO' "$dir/log" | sed 's/^/  log: /' || true
}

for r in $(seq 1 "$ROUNDS"); do
  i=0
  for spec in "$@"; do i=$((i + 1)); echo "== round $r"; one "$spec" "$i"; done
done
python3 - "$RES" "$@" <<'PY'
import sys, statistics, collections
rows = [l.split() for l in open(sys.argv[1])]
print("\n| target | runs | ops/s median [values] | CPU us/req median [values] |\n|---|---|---|---|")
for i, spec in enumerate(sys.argv[2:], 1):
    for which, pick in (("all", lambda r: True), ("run 1", lambda r: r[1] == "1"), ("runs 2+", lambda r: r[1] != "1")):
        sel = [r for r in rows if r[0] == str(i) and pick(r)]
        if not sel: continue
        o = [float(r[2]) for r in sel]; c = [float(r[3]) for r in sel]
        print(f"| {spec} | {which} | {statistics.median(o):,.0f} [{' '.join(f'{x:,.0f}' for x in o)}] | "
              f"{statistics.median(c):.2f} [{' '.join(f'{x:.2f}' for x in c)}] |")
PY
