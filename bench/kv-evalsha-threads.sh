#!/usr/bin/env bash
# The EVALSHA row of bench/kv-features.sh (redis-benchmark -c 50, EVALSHA of INCR + SET + GET) per call and per thread,
# every target in the same run (session 32, h183): for each round and target, alternating,
#   - a plain run: calls/s; per server thread (/proc/PID/task/*/stat and status, named by comm) user and system µs per
#     call, voluntary switches (the thread slept) and involuntary ones (it was preempted) per call; the client's
#     (redis-benchmark, /usr/bin/time) user, system and switches per call;
#   - a counted run of the same size (perf stat -p of the server, every thread): syscalls per call (io_uring_enter,
#     epoll_wait, read, write, pwrite64, sendto/recvfrom, all syscalls), and sched_switch per call; and the client's
#     syscalls (epoll_wait, epoll_ctl, read, write, sendto, recvfrom) per call, perf stat of redis-benchmark itself;
#   - in the plain run, the shares of the wall time (bench/lib/schedstat-split.py, /proc/PID/schedstat sampled every 20
#     ms) the client and the server's main thread (Kv: its domain; redis-server: its event loop) spent running, waiting
#     for a CPU and asleep: a client asleep is waiting for replies, whatever the machine's load.
# Counts do not move with the machine's load as calls/s does; CPU per call moves less than calls/s.
#
#   bash bench/kv-evalsha-threads.sh TARGET ...   # TARGET: `redis`, a path of EioSharp.Kv.dll, or "V=x,W=y@path" (that
#                                                 # Kv with that environment), with server arguments after `|` (`path|--domains|2`)
#
# Servers: appendonly yes + appendfsync everysec, no save points (as kv-features.sh). Environment: N (200000 calls per
# run), REPEATS (5), COUNTS (1: the counted runs; 0 to skip them), WARM (50000 calls of warm-up per target).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
N="${N:-200000}"; REPEATS="${REPEATS:-5}"; COUNTS="${COUNTS:-1}"; WARM="${WARM:-50000}"
[ $# -gt 0 ] || { sed -n '2,16p' "$0"; exit 2; }
# WORK, PIDS, CLK_TCK, the cleanup trap, free_port, wait_ping, start_server
source "$ROOT/bench/lib/servers.sh" kv-evalsha-threads

snap() { # pid -> "tid comm utime stime vol invol" per thread (a thread that ends meanwhile is left out)
  for t in /proc/$1/task/*; do
    c=$( { tr ' ' _ <"$t/comm"; } 2>/dev/null) || continue
    st=$( { sed 's/.*) //' "$t/stat" | awk '{print $12, $13}'; } 2>/dev/null) || continue
    cs=$( { awk '/^voluntary_ctxt_switches/{v=$2} /^nonvoluntary_ctxt_switches/{n=$2} END{print v+0, n+0}' "$t/status"; } 2>/dev/null) || continue
    echo "$(basename "$t") $c $st $cs"
  done; true
}

declare -a PORT PID NAME
i=0
for target in "$@"; do
  if [ "$target" = redis ]; then
    start_server redis -- --appendonly yes --appendfsync everysec --save ""
  else
    start_server "$target" -- --appendonly yes --appendfsync everysec --save ""
  fi
  PORT[$i]=$SERVER_PORT; PID[$i]=$SERVER_PID; NAME[$i]="t$i"; i=$((i + 1))
done

SCRIPT="local n = redis.call('INCR', KEYS[1]) redis.call('SET', KEYS[1] .. ':v', n) return redis.call('GET', KEYS[1] .. ':v')"
SHA=$(redis-cli -p "${PORT[0]}" SCRIPT LOAD "$SCRIPT")
for j in "${!PORT[@]}"; do [ "$(redis-cli -p "${PORT[$j]}" SCRIPT LOAD "$SCRIPT")" = "$SHA" ] || { echo "SCRIPT LOAD differs" >&2; exit 1; }; done

bench() { # port n -> calls/s
  redis-benchmark -h 127.0.0.1 -p "$1" -c 50 -n "$2" -r 100000 --csv EVALSHA "$SHA" 1 'key:__rand_int__' 2>/dev/null |
    awk -F'","' 'NR == 2 { gsub(/"/, "", $2); print $2 }'
}
for j in "${!PORT[@]}"; do bench "${PORT[$j]}" "$WARM" >/dev/null; done

SEV='syscalls:sys_enter_io_uring_enter,syscalls:sys_enter_epoll_wait,syscalls:sys_enter_epoll_pwait,syscalls:sys_enter_read,syscalls:sys_enter_write,syscalls:sys_enter_pwrite64,syscalls:sys_enter_sendto,syscalls:sys_enter_recvfrom,raw_syscalls:sys_enter,sched:sched_switch'
CEV='syscalls:sys_enter_epoll_wait,syscalls:sys_enter_epoll_ctl,syscalls:sys_enter_read,syscalls:sys_enter_write,syscalls:sys_enter_writev,syscalls:sys_enter_recvfrom,syscalls:sys_enter_sendto,raw_syscalls:sys_enter'
RES="$WORK/res"; : >"$RES"
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
for rep in $(seq 1 "$REPEATS"); do
  for j in "${!PORT[@]}"; do
    pid=${PID[$j]}; port=${PORT[$j]}
    snap "$pid" >"$WORK/a"
    rate=$(python3 "$ROOT/bench/lib/schedstat-split.py" "$pid" -- /usr/bin/time -f "%U %S %w %c" -o "$WORK/time" \
      redis-benchmark -h 127.0.0.1 -p "$port" -c 50 -n "$N" -r 100000 --csv EVALSHA "$SHA" 1 'key:__rand_int__' 2>"$WORK/sched" |
      awk -F'","' 'NR == 2 { gsub(/"/, "", $2); print $2 }')
    snap "$pid" >"$WORK/b"
    python3 - "$j" "$rate" "$N" "$CLK_TCK" "$WORK/a" "$WORK/b" "$WORK/time" "$WORK/sched" >>"$RES" <<'EOF'
import sys
j, rate, n, tck = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
def load(p):
    d = {}
    for line in open(p):
        tid, comm, u, s, v, i = line.split(); d[tid] = (comm, int(u), int(s), int(v), int(i))
    return d
a, b = load(sys.argv[5]), load(sys.argv[6])
cu, cs, cv, ci = map(float, open(sys.argv[7]).read().split()[-4:])
sched = [l.split()[1:] for l in open(sys.argv[8]) if l.startswith("SCHED ")]
fr, cur = {}, "client"
for f in (sched[0] if sched else []):  # "client run=.. runq=.. sleep=.. server:TID run=.. ..."
    if "=" not in f:
        cur = "client" if f == "client" else "server"
    else:
        fr[cur + " " + f.split("=")[0]] = f.split("=")[1]
sp = " ".join(fr.get(k, "nan") for k in ("client run", "client runq", "client sleep", "server run", "server runq", "server sleep"))
out = [f"plain {j} rate {rate} client {cu*1e6/n:.3f} {cs*1e6/n:.3f} {cv/n:.4f} {ci/n:.4f} sched {sp}"]
for tid, (comm, u, s, v, i) in b.items():
    u0, s0, v0, i0 = a.get(tid, (comm, 0, 0, 0, 0))[1:]
    du, ds, dv, di = u - u0, s - s0, v - v0, i - i0
    if du or ds or dv or di:
        out.append(f"{comm}:{tid} {du/tck*1e6/n:.3f} {ds/tck*1e6/n:.3f} {dv/n:.4f} {di/n:.4f}")
print(" | ".join(out))
EOF
    if [ "$COUNTS" = 1 ]; then
      perf stat -x, -o "$WORK/sperf" -e "$SEV" -p "$pid" & pp=$!; sleep 0.3
      perf stat -x, -o "$WORK/cperf" -e "$CEV" -- bash -c "$(declare -f bench); SHA=$SHA; bench $port $N" >/dev/null
      kill -INT $pp; wait $pp 2>/dev/null || true
      python3 "$ROOT/bench/lib/perf-stat-counts.py" "$j" "$N" "$WORK/sperf" "$WORK/cperf" >>"$RES"
    fi
  done
  echo "  round $rep/$REPEATS done, load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
done
echo "Targets: $(for j in "${!PORT[@]}"; do printf 't%s=%s  ' "$j" "${@:$((j + 1)):1}"; done)"
echo "Load average before: $load_before; after: $(cut -d' ' -f1-3 /proc/loadavg). N=$N calls per run, medians of $REPEATS."
python3 - "$RES" <<'EOF'
import sys, statistics, collections, re
plain = collections.defaultdict(list); cnt = collections.defaultdict(list)
for line in open(sys.argv[1]):
    if line.startswith("plain"):
        parts = line.strip().split(" | ")
        h = parts[0].split(); j = h[1]
        row = {"calls/s": float(h[3]), "client user": float(h[5]), "client sys": float(h[6]), "client vol": float(h[7]), "client invol": float(h[8])}
        if len(h) >= 16:  # shares of the wall time (schedstat): running, waiting for a CPU, asleep
            for k, v in zip(("client run", "client runq", "client sleep", "server main run", "server main runq", "server main sleep"), h[10:16]):
                row[k + " share"] = float(v)
        threads = collections.defaultdict(lambda: [0.0, 0.0, 0.0, 0.0])
        for p in parts[1:]:
            name, *v = p.split(); comm = re.sub(r":\d+$", "", name)
            # the domain threads by their name; the runtime's many workers summed by name
            t = threads[comm]
            for k in range(4): t[k] += float(v[k])
        tot = [sum(t[k] for t in threads.values()) for k in range(4)]
        row.update({"server user": tot[0], "server sys": tot[1], "server vol": tot[2], "server invol": tot[3]})
        for comm, t in threads.items():
            row[f"[{comm}] u+s"] = t[0] + t[1]; row[f"[{comm}] vol"] = t[2]; row[f"[{comm}] invol"] = t[3]
        plain[j].append(row)
    elif line.startswith("counts"):
        s, c = line.strip().split(" | client ")
        j = s.split()[1]; row = {}
        for kv in s.split()[3:]: k, v = kv.split("="); row["server " + k] = float(v)
        for kv in c.split(): k, v = kv.split("="); row["client " + k] = float(v)
        cnt[j].append(row)
for j in sorted(plain):
    print(f"\n### t{j}")
    rows = plain[j] + []
    keys = []
    for r in rows:
        for k in r:
            if k not in keys: keys.append(k)
    for k in keys:
        vals = [r.get(k, 0.0) for r in rows]
        fmt = (lambda x: f"{x:,.0f}") if k == "calls/s" else (lambda x: f"{x:.3f}")
        print(f"  {k:40s} median {fmt(statistics.median(vals)):>10s}   runs " + " ".join(fmt(x) for x in vals))
    if cnt[j]:
        ckeys = []
        for r in cnt[j]:
            for k in r:
                if k not in ckeys: ckeys.append(k)
        for k in ckeys:
            vals = [r.get(k, 0.0) for r in cnt[j]]
            print(f"  {k:40s} median {statistics.median(vals):10.4f}   runs " + " ".join(f"{x:.4f}" for x in vals))
EOF
echo
echo "Raw:"; sed 's/^/    /' "$RES"
