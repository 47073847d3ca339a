#!/usr/bin/env bash
# What kind of io_uring_enter a BLPOP/LPUSH ping-pong round trip costs the KV server (issue 12, session 24, h148): for
# each VARIANT (`label=DLL` or `label=DLL:VAR=value,...`, or `redis`), a fresh server (AOF everysec), WARM round trips,
# then `perf record` of the syscall tracepoints (io_uring_enter with its to_submit / min_complete, pwrite64) and the
# server threads' sched_switch during ROUNDS round trips (bench/EioSharp.Kv.LoadGen pingpong). Prints per round trip:
# entries that submit and wait (sub-wait), submit without waiting (sub-poll: the idle pre-pass, a busy round's poll),
# wait with nothing to submit (nosub-wait), pwrite64, the domain thread's sleeps inside an entry (sleep: switch out in
# state S) and preemptions (switch out in state R) of the main thread (the KV's domain; redis-server's event loop), and the commonest sequences between two sleeps
# (s3w = submit 3 and wait, s1p = submit 1 without waiting, n0w = wait, W = pwrite, ^ = preempted, | = slept).
# perf's tracepoints cost far less than strace, so the timing between clients and server is closer to an untraced run.
#
#   REPEATS=3 bash bench/kv-pingpong-enter-kinds.sh base=/tmp/s24-base/kv/EioSharp.Kv.dll new=apps/EioSharp.Kv/bin/Release/net10.0/EioSharp.Kv.dll
#
# Environment: ROUNDS (4000), WARM (3000), REPEATS (1), LOADGEN_DLL (/tmp/s24-base/loadgen/EioSharp.Kv.LoadGen.dll).
set -u
ROUNDS=${ROUNDS:-4000}; WARM=${WARM:-3000}; REPEATS=${REPEATS:-1}
LG=${LOADGEN_DLL:-/tmp/s24-base/loadgen/EioSharp.Kv.LoadGen.dll}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
for rep in $(seq 1 "$REPEATS"); do
  for variant in "$@"; do
    label=${variant%%=*}; spec=${variant#*=}; dll=${spec%%:*}; envs=""
    [ "$spec" != "$dll" ] && envs=$(echo "${spec#*:}" | tr ',' ' ')
    port=$(free_port); dir=$(mktemp -d /tmp/kv-pp-enter-kinds.XXXXXX)
    if [ "$variant" = redis ]; then
      redis-server --port "$port" --bind 127.0.0.1 --dir "$dir" --appendonly yes --save '' --daemonize no --logfile "$dir/log" &
    else
      # shellcheck disable=SC2086
      env $envs dotnet "$dll" --port "$port" --bind 127.0.0.1 --dir "$dir/data" >"$dir/log" 2>&1 &
    fi
    pid=$!
    for _ in $(seq 1 600); do [ "$(redis-cli -p "$port" ping 2>/dev/null)" = PONG ] && break; sleep 0.1; done
    dotnet "$LG" pingpong --port "$port" --rounds "$WARM" --timeout 600 >/dev/null
    perf record -q -o "$dir/perf.data" -e 'syscalls:sys_enter_io_uring_enter,syscalls:sys_enter_pwrite64,sched:sched_switch' -p "$pid" 2>/dev/null &
    pp=$!; sleep 1.5
    dotnet "$LG" pingpong --port "$port" --rounds "$ROUNDS" --timeout 600 >/dev/null
    kill -INT $pp; wait $pp 2>/dev/null
    kill "$pid"; wait "$pid" 2>/dev/null
    perf script -i "$dir/perf.data" 2>/dev/null >"$dir/trace"
    echo "$label run $rep (load $(cut -d' ' -f1 /proc/loadavg)):"
    python3 - "$dir/trace" "$ROUNDS" "$pid" <<'PY'
import sys, re, collections
n = int(sys.argv[2]); pid = sys.argv[3]
c = collections.Counter(); seq = collections.Counter(); cur = []
for l in open(sys.argv[1]):
    if 'iou-wrk' in l: continue
    m = re.search(r'sys_enter_io_uring_enter: fd: \S+, to_submit: (0x[0-9a-f]+), min_complete: (0x[0-9a-f]+)', l)
    if m:
        s, w = int(m.group(1), 16), int(m.group(2), 16)
        c[('sub' if s else 'nosub') + ('-wait' if w else '-poll')] += 1; cur.append(('s' if s else 'n') + str(s) + ('w' if w else 'p')); continue
    if 'sys_enter_pwrite64' in l: c['pwrite64'] += 1; cur.append('W'); continue
    if 'sched_switch' in l and f'prev_pid={pid} ' in l: # the main thread: the KV's domain, redis-server's event loop
        if 'prev_state=S' in l: c['sleep'] += 1; cur.append('|'); seq[' '.join(cur)] += 1; cur = []
        elif 'prev_state=R' in l: c['preempt'] += 1; cur.append('^')
enters = sum(v for k, v in c.items() if k.endswith('-wait') or k.endswith('-poll'))
print('  per round trip: io_uring_enter %.2f (%s)  pwrite64 %.2f  sleep %.2f  preempt %.2f' % (enters / n,
      ', '.join('%s %.2f' % (k, c[k] / n) for k in ('sub-wait', 'sub-poll', 'nosub-wait', 'nosub-poll') if c[k]),
      c['pwrite64'] / n, c['sleep'] / n, c['preempt'] / n))
for s, v in seq.most_common(5): print('    %.3f  %s' % (v / n, s))
PY
    rm -rf "$dir"
  done
done
