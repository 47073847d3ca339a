#!/usr/bin/env bash
# The durable row by count (issue 14, session 22, h142): 50 clients SET with fsync always (redis-server --appendonly yes
# --appendfsync always; EioSharp.Kv --appendfsync always), as bench/kv-vs-redis.sh's durable-c50 runs it. For each TARGET
# (a directory or path of EioSharp.Kv.dll, or "redis"): one fresh server, WARM SETs, then
#   - a plain run of N requests: server CPU (utime+stime, /proc/PID/stat) per request, ops/s, and (Kv) fsyncs per request
#     from INFO persistence aof_fsyncs;
#   - a run of S requests under `strace -f -c` (attached to the running server): syscalls per request, by name;
#   - a run of S requests under `strace -f -T -e trace=write,pwrite64,fdatasync,fsync`: every AOF write's size (so the
#     requests per write, i.e. per round and fsync: one SET of redis-benchmark's is 59 bytes in the AOF) as a histogram
#     and in order (two cohorts of clients taking turns show as alternating sizes that sum to the clients),
#     and, where the fsync is a system call (redis-server; Kv on epoll/portable, whose fsync runs on a system thread), the
#     fsync's duration and the thread that ran it. On io_uring Kv's fsync is an IORING_OP_FSYNC run by an io-wq worker
#     (no system call to trace): only its count (INFO).
# A Kv server's own summary at exit (its `h149:` line: hinted rounds, waits that ended at the limit, the overlap's
# rounds and, since h195, its guard's decisions and the fsync and turn it measured) follows each Kv target's counts.
# The load of a shared machine moves the CPU and ops/s figures; the counts are what to compare.
#
#   bash bench/kv-durable-counts.sh TARGET ...
#
# Environment: N (20000), S (20000), WARM (5000), C (50 clients), KV_ARGS (e.g. "--backend epoll"), KV_ENV (environment).
set -u
N=${N:-20000}; S=${S:-20000}; WARM=${WARM:-5000}; C=${C:-50}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
for target in "$@"; do
  PORT=$(free_port); D=$(mktemp -d /tmp/kv-durable-counts.XXXXXX)
  if [ "$target" = redis ]; then
    redis-server --port "$PORT" --bind 127.0.0.1 --dir "$D" --save '' --appendonly yes --appendfsync always \
      --daemonize no --logfile "$D/log" --maxclients 10000 &
    name=redis
  else
    dll=$target; [ -d "$dll" ] && dll="$dll/EioSharp.Kv.dll"
    # shellcheck disable=SC2086
    env ${KV_ENV:-} dotnet "$dll" --port "$PORT" --bind 127.0.0.1 --dir "$D/data" --maxclients 10000 --appendfsync always ${KV_ARGS:-} >"$D/log" 2>&1 &
    name="$target ${KV_ARGS:-}"
  fi
  PID=$!
  for _ in $(seq 1 600); do [ "$(redis-cli -p "$PORT" ping 2>/dev/null)" = PONG ] && break; sleep 0.1; done
  rb() { redis-benchmark -p "$PORT" -n "$1" -r 100000 -d 16 -c "$C" -t set "${@:2}" 2>/dev/null; }
  fsyncs() { sleep 0.3; redis-cli -p "$PORT" info persistence 2>/dev/null | awk -F: '/^aof_fsyncs:/ {print $2+0; f=1} END {if (!f) print -1}' | tr -d '\r'; }
  rb "$WARM" -q >/dev/null
  f0=$(fsyncs); c0=$(awk '{print $14+$15}' "/proc/$PID/stat")
  rps=$(rb "$N" --csv | awk -F'","' 'NR>1 {gsub(/"/,"",$2); print $2; exit}')
  c1=$(awk '{print $14+$15}' "/proc/$PID/stat"); f1=$(fsyncs)
  strace -f -c -p "$PID" -o "$D/strace.c" 2>/dev/null &
  SP=$!; sleep 1
  rb "$S" -q >/dev/null
  sleep 0.3; kill -INT "$SP"; wait "$SP" 2>/dev/null
  sc=$(awk -v s="$S" '$1 ~ /^[0-9.]+$/ && $NF != "total" && $4 / s >= 0.001 { printf "%s %.3f, ", $NF, $4 / s }' "$D/strace.c")
  tot=$(awk -v s="$S" '$NF == "total" { printf "%.3f", $4 / s }' "$D/strace.c")
  strace -f -T -e trace=write,pwrite64,fdatasync,fsync -p "$PID" -o "$D/strace.t" 2>/dev/null &
  SP=$!; sleep 1
  t0=$(date +%s.%N); rb "$S" -q >/dev/null; t1=$(date +%s.%N)
  sleep 0.3; kill -INT "$SP"; wait "$SP" 2>/dev/null
  aof_fd=$(ls -l /proc/"$PID"/fd 2>/dev/null | awk '/appendonly.*incr\.aof$/ {print $9; exit}')
  python3 - "$D/strace.t" "${aof_fd:-none}" "$S" "$t0" "$t1" <<'PY' >"$D/summary"
import re, sys, collections
path, fd, s, t0, t1 = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5])
sizes, syncs, sync_tids, write_tids = [], [], collections.Counter(), collections.Counter()
for line in open(path):
    m = re.match(r"(\d+)\s+(write|pwrite64|fdatasync|fsync)\((\d+)(.*)<([0-9.]+)>$", line.strip())
    if not m or (fd != "none" and m.group(3) != fd):
        continue
    tid, call, rest, dur = m.group(1), m.group(2), m.group(4), float(m.group(5))
    if call in ("fdatasync", "fsync"):
        syncs.append(dur); sync_tids[tid] += 1
    else:
        r = re.search(r"= (\d+)", rest)
        if r: sizes.append(int(r.group(1))); write_tids[tid] += 1
reqs = [max(1, round(b / 59)) for b in sizes]
hist = collections.Counter(min(50, (r - 1) // 5 * 5 + 5) for r in reqs)
by_req = {k: sum(r for r in reqs if min(50, (r - 1) // 5 * 5 + 5) == k) for k in hist}
tot = sum(reqs) or 1
print(f"aof writes={len(sizes)} ({len(sizes)/s:.4f}/req) requests/write mean={tot/max(1,len(sizes)):.1f} "
      f"(write threads {len(write_tids)})")
print("  requests by round size (<=N: share of requests): " + ", ".join(f"<={k}: {by_req[k]*100/tot:.0f}%" for k in sorted(hist)))
print("  requests per write, in order (the first 60): " + " ".join(str(r) for r in reqs[:60]))
if syncs:
    syncs.sort(); n = len(syncs)
    print(f"fsync calls={n} ({n/s:.4f}/req) duration us: median {syncs[n//2]*1e6:.0f}, p10 {syncs[n//10]*1e6:.0f}, "
          f"p90 {syncs[n*9//10]*1e6:.0f}; busy {sum(syncs)/(t1-t0)*100:.0f}% of the {t1-t0:.2f} s run; threads {dict(sync_tids)}")
else:
    print("fsync calls: none traced (io_uring: run by an io-wq worker)")
PY
  python3 -c "print('$name c$C set rps=$rps cpu_us=%.2f fsyncs/req=%s syscalls/req=$tot [$sc] load=$(cut -d' ' -f1 /proc/loadavg)' % (($c1-$c0)*1e6/$(getconf CLK_TCK)/$N, ('%.4f' % (($f1-$f0)/$N)) if $f0 >= 0 else 'n/a'))"
  sed 's/^/  /' "$D/summary"
  kill "$PID"; wait "$PID" 2>/dev/null
  grep -h 'h149:' "$D/log" 2>/dev/null | sed 's/^/  server: /'
  rm -rf "$D"
done
