#!/usr/bin/env bash
# The stream row of bench/kv-features.sh (bench/EioSharp.Kv.LoadGen stream: 2 producers XADD, 2 consumers XREADGROUP
# COUNT 10 BLOCK 1000 + XACK; op = one message added, read and acknowledged) per message, on several servers in windows
# that alternate between them: messages/s, the server's user and system CPU µs (all threads, /proc/PID/stat), its
# voluntary (slept) and involuntary (preempted) context switches (all threads, /proc/PID/task/*/status), the load
# generator's own CPU µs (all its threads, measured inside it) and its XREADGROUP replies with entries, and the server's
# XADD / XREADGROUP / XACK calls (INFO commandstats after CONFIG RESETSTAT): what a message costs on both sides of the
# socket. On a 2-core machine the client shares the cores with the server, so the client's CPU per message bounds the
# row as much as the server's.
#
#   bench/kv-stream-counts.sh TARGET ...   # TARGET: "redis", a path of EioSharp.Kv.dll, or "V=x,W=y@path" (that Kv
#                                          # build run with that environment)
# All targets start first (appendonly yes, appendfsync everysec, no save points: as bench/kv-features.sh), each is warmed
# with WARM messages (6000), then WINDOWS windows of MESSAGES messages (30000) run, alternating the targets window by
# window; each window prints one line per target, the end a median per target over windows SKIP+1.. (SKIP=0).
# Environment: WARM, MESSAGES, WINDOWS (5), SKIP, LOADGEN_DLL (this tree's Release build), KV_ARGS, REDIS_ARGS.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WARM="${WARM:-6000}"; MESSAGES="${MESSAGES:-30000}"; WINDOWS="${WINDOWS:-5}"; SKIP="${SKIP:-0}"
LOADGEN_DLL="${LOADGEN_DLL:-$ROOT/bench/EioSharp.Kv.LoadGen/bin/Release/net10.0/EioSharp.Kv.LoadGen.dll}"
[ $# -gt 0 ] || { sed -n '2,16p' "$0"; exit 2; }
# WORK, PIDS, CLK_TCK, the cleanup trap, free_port, wait_ping
source "$ROOT/bench/lib/servers.sh" kv-stream-counts

cpu() { sed 's/.*) //' "/proc/$1/stat" | awk '{ print $12 + $14, $13 + $15 }'; } # user, system ticks (children included)
csw() { cat /proc/"$1"/task/*/status 2>/dev/null | awk '/^voluntary_ctxt_switches/ {v += $2} /^nonvoluntary_ctxt_switches/ {n += $2} END {print v + 0, n + 0}'; }
calls() { redis-cli -p "$1" INFO commandstats | tr -d '\r' | awk -F'[:=,]' -v c="cmdstat_$2" '$1 == c { print $3 } END {}' | head -1; }

declare -a PORTS SPID
i=0
for target in "$@"; do
  port=$(free_port); dir="$WORK/data$i"; mkdir -p "$dir"
  if [ "$target" = redis ]; then
    # shellcheck disable=SC2086
    redis-server --port "$port" --bind 127.0.0.1 --dir "$dir" --appendonly yes --appendfsync everysec --save '' ${REDIS_ARGS:-} >"$WORK/log$i" 2>&1 &
  else
    envs=""; dll=$target
    case "$target" in *@*) envs=${target%@*}; envs=${envs//,/ }; dll=${target##*@} ;; esac
    # shellcheck disable=SC2086
    env $envs dotnet "$dll" --port "$port" --bind 127.0.0.1 --dir "$dir" --appendonly yes --appendfsync everysec --save "" ${KV_ARGS:-} >"$WORK/log$i" 2>&1 &
  fi
  SPID[$i]=$!; PIDS+=($!); PORTS[$i]=$port
  wait_ping "$port"
  i=$((i + 1))
done
for j in $(seq 0 $((i - 1))); do dotnet "$LOADGEN_DLL" stream --port "${PORTS[$j]}" --producers 2 --consumers 2 --count 10 --messages "$WARM" >/dev/null; done
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
: >"$WORK/all"
for win in $(seq 1 "$WINDOWS"); do
  for j in $(seq 0 $((i - 1))); do
    pid=${SPID[$j]}; port=${PORTS[$j]}; target=${*:$((j + 1)):1}
    redis-cli -p "$port" CONFIG RESETSTAT >/dev/null
    read -r u0 s0 < <(cpu "$pid"); read -r v0 n0 < <(csw "$pid")
    out=$(dotnet "$LOADGEN_DLL" stream --port "$port" --producers 2 --consumers 2 --count 10 --messages "$MESSAGES" | tail -1)
    read -r u1 s1 < <(cpu "$pid"); read -r v1 n1 < <(csw "$pid")
    xadd=$(calls "$port" xadd); xrg=$(calls "$port" xreadgroup); xack=$(calls "$port" xack)
    python3 - "$WORK/all" "$target" "$win" "$MESSAGES" "$CLK_TCK" "$out" "$u0 $s0 $u1 $s1 $v0 $n0 $v1 $n1" "${xadd:-0} ${xrg:-0} ${xack:-0}" "$(cut -d' ' -f1 /proc/loadavg)" <<'PY'
import sys
path, target, win, n, tck, out = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), sys.argv[6]
u0, s0, u1, s1, v0, n0, v1, n1 = map(int, sys.argv[7].split())
xadd, xrg, xack = map(int, sys.argv[8].split())
r = dict(f.split('=', 1) for f in out.split()[1:] if '=' in f)
us = lambda t: t / tck * 1e6 / n
row = [float(r['ops_per_s']), us(u1 - u0), us(s1 - s0), us(u1 - u0 + s1 - s0), (v1 - v0) / n, (n1 - n0) / n,
       float(r.get('client_cpu_us_per_op', 'nan')), float(r.get('reads_per_op', 'nan')), xadd / n, xrg / n, xack / n]
print(f"{target} window {win} (load {sys.argv[9]}): {row[0]:,.0f} msg/s; server user {row[1]:.1f} sys {row[2]:.1f} = {row[3]:.1f} us, "
      f"switches vol {row[4]:.3f} invol {row[5]:.3f}; client {row[6]:.1f} us, reads {row[7]:.3f}; xadd {row[8]:.3f} xreadgroup {row[9]:.3f} xack {row[10]:.3f} per msg")
with open(path, 'a') as o: o.write(target + ' ' + win + ' ' + ' '.join(f"{x:.4f}" for x in row) + '\n')
PY
  done
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== medians over windows $((SKIP + 1))..$WINDOWS, per message (server + client CPU = what the 2 cores pay per message)"
python3 - "$WORK/all" "$SKIP" <<'PY'
import sys, statistics, collections
rows = collections.defaultdict(list); order = []
for l in open(sys.argv[1]):
    f = l.split(); t, w = f[0], int(f[1])
    if w <= int(sys.argv[2]): continue
    if t not in rows: order.append(t)
    rows[t].append([float(x) for x in f[2:]])
for t in order:
    m = [statistics.median(x[k] for x in rows[t]) for k in range(11)]
    tot = statistics.median(x[3] + x[6] for x in rows[t])
    print(f"  {t}: {m[0]:,.0f} msg/s; server {m[3]:.1f} us (user {m[1]:.1f} sys {m[2]:.1f}), vol {m[4]:.3f} invol {m[5]:.3f}; "
          f"client {m[6]:.1f} us; server+client {tot:.1f} us; reads {m[7]:.3f}; xreadgroup {m[9]:.3f} xack {m[10]:.3f} ({len(rows[t])} windows)")
    print(f"    msg/s per window: {', '.join(f'{x[0]:,.0f}' for x in rows[t])}")
PY
