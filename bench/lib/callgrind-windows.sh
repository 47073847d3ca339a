# Shared part of the callgrind "windows" scripts (bench/kv-p1-instructions.sh, kv-set-instructions.sh,
# kv-pingpong-instructions.sh, kv-stream-instructions.sh): a server runs under callgrind; each script starts it and warms
# it up, then cgw_windows counts WINDOWS consecutive windows of the script's load (callgrind_control -z before, -d after;
# the lowest window is the settled code's), then an idle stretch as long as the last window ("net" subtracts it), and
# cgw_run_all alternates the targets REPEATS times and prints the medians. Sourced, not run.
#
# The sourcing script sets ROOT, WINDOWS, REPEATS, TOP before calling these; cgw_init sets WORK and SPID, cgw_start PORT
# and SPID.
# Optional hooks a script may define: cgw_before_window PORT, cgw_after_window PORT (e.g. CONFIG RESETSTAT and reading
# INFO commandstats), cgw_window_note TARGET RUN PORT (an extra stderr line per run); KEEP=DIR keeps each run's lowest dump.

# cgw_init PREFIX: a work directory /tmp/PREFIX.XXXXXX, removed (and the server killed) on exit.
cgw_init() {
  WORK="$(mktemp -d "/tmp/$1.XXXXXX")"; SPID=""; PORT=""; CGW_REDIS_ARGS=()
  trap cgw_cleanup EXIT INT TERM
}

cgw_cleanup() { [ -n "${SPID:-}" ] && kill -KILL "$SPID" 2>/dev/null && wait "$SPID" 2>/dev/null; rm -rf "$WORK"; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }

# total_ir DUMP: the dump's total instruction count.
total_ir() { awk '/^(summary|totals):/ { print $2; exit }' "$1"; }

# wait_dump PID N: the path of dump N of process PID once callgrind has written it whole (callgrind_control -d returns
# before the file is).
wait_dump() {
  local f="$WORK/callgrind.out.$1.$2"
  for _ in $(seq 1 600); do
    if [ -f "$f" ] && grep -q '^totals:\|^summary:' "$f"; then echo "$f"; return 0; fi
    sleep 0.2
  done
  echo "no dump $f" >&2; return 1
}

# cgw_start TARGET RUN ARGS...: starts TARGET ("redis", or a directory or path of EioSharp.Kv.dll) under callgrind, on a
# free port (PORT) with the data directory $WORK/data.RUN, passing ARGS (Redis's option names, which both servers take),
# plus the array CGW_REDIS_ARGS for redis-server only and KV_ARGS for EioSharp.Kv only; sets SPID. The Kv server runs
# tiered without PGO and with call counting from the first call, no background GC, no W^X double mapping, FullOpts
# relocations under valgrind, and the perf map for naming JIT code (the scripts' headers say why); KV_ENV (e.g.
# "DOTNET_TieredPGO=1") overrides or adds environment settings.
cgw_start() {
  local target=$1 run=$2 dir dll; shift 2
  PORT=$(free_port); dir="$WORK/data.$run"; rm -rf "$dir"; mkdir -p "$dir"
  if [ "$target" = redis ]; then
    (cd "$WORK" && exec valgrind --tool=callgrind --callgrind-out-file="$WORK/callgrind.out.%p" --dump-instr=yes \
      redis-server --port "$PORT" --bind 127.0.0.1 --dir "$dir" "$@" "${CGW_REDIS_ARGS[@]}" >"$WORK/server.log" 2>&1) &
  else
    dll=$target; [ -d "$dll" ] && dll="$dll/EioSharp.Kv.dll"
    # shellcheck disable=SC2086
    (cd "$WORK" && exec env DOTNET_TieredPGO=0 DOTNET_TC_CallCountingDelayMs=0 DOTNET_gcConcurrent=0 \
      DOTNET_EnableWriteXorExecute=0 DOTNET_JitEnableOptionalRelocs=0 DOTNET_PerfMapEnabled=1 DOTNET_PerfMapIgnoreSignal=1 \
      ${KV_ENV:-} valgrind --tool=callgrind --callgrind-out-file="$WORK/callgrind.out.%p" --dump-instr=yes \
      dotnet "$dll" --port "$PORT" --bind 127.0.0.1 --dir "$dir" "$@" ${KV_ARGS:-} >"$WORK/server.log" 2>&1) &
  fi
  SPID=$!
}

# cgw_wait_ready PORT [SECONDS=1200]: waits for PONG from the server $SPID; on a timeout or its exit prints its log's tail
# and returns 1.
cgw_wait_ready() {
  local port=$1 secs=${2:-1200} t_start
  t_start=$(date +%s)
  while [ $(($(date +%s) - t_start)) -lt "$secs" ]; do
    if [ "$(redis-cli -p "$port" ping 2>/dev/null)" = PONG ]; then
      echo "# ready in $(($(date +%s) - t_start)) s" >&2
      return 0
    fi
    kill -0 "$SPID" 2>/dev/null || break
    sleep 0.5
  done
  echo "server not ready after $(($(date +%s) - t_start)) s (pid $SPID); its log:" >&2
  grep -v '^==' "$WORK/server.log" | tail -20 >&2
  kill -KILL "$SPID" 2>/dev/null; wait "$SPID" 2>/dev/null || true
  SPID=""
  return 1
}

# cgw_wait_jit_idle [QUIET_SECONDS=5] [MAX_SECONDS=300]: for a Kv server, waits until the runtime's perf map
# (/tmp/perf-$SPID.map, one line per method the JIT compiled) has not grown for QUIET_SECONDS: under callgrind a warm-up's
# tier-1 backlog takes minutes to compile, and a fixed sleep left the JIT in the first windows and in the idle stretch
# (session 26: windows of 71,666 / 56,507 / 14,536 / 9,219 instructions per request after a 3 s sleep). Prints how long
# it waited to stderr. Does nothing for redis-server.
cgw_wait_jit_idle() {
  local quiet=${1:-5} max=${2:-300} map="/tmp/perf-$SPID.map" size last="" same=0 t_start
  [ -f "$map" ] || return 0
  t_start=$(date +%s)
  while [ $(($(date +%s) - t_start)) -lt "$max" ]; do
    size=$(stat -c %s "$map" 2>/dev/null || echo 0)
    if [ "$size" = "$last" ]; then same=$((same + 1)); else same=0; last=$size; fi
    [ "$same" -ge "$quiet" ] && break
    sleep 1
  done
  echo "# JIT idle after $(($(date +%s) - t_start)) s (perf map $last bytes)" >&2
}

# cgw_windows TARGET RUN PORT LOAD...: counts WINDOWS windows of the command LOAD... (run once per window, its output
# discarded), then the idle
# stretch; prints "TARGET RUN IR_IDLE SECS IR_WINDOW..." (the line callgrind-windows-summary.py reads), keeps the lowest
# window's dump as $WORK/last.RUN.out (with the perf map as last.RUN.map), and stops the server.
cgw_windows() {
  local target=$1 run=$2 port=$3; shift 3
  local t0 t1 secs f w windows="" idle
  for w in $(seq 1 "$WINDOWS"); do
    if declare -F cgw_before_window >/dev/null; then cgw_before_window "$port"; fi
    callgrind_control -z "$SPID" >/dev/null
    t0=$(date +%s.%N)
    "$@" >/dev/null
    t1=$(date +%s.%N)
    callgrind_control -d "$SPID" >/dev/null
    f=$(wait_dump "$SPID" "$w")
    windows="$windows $(total_ir "$f")"
    if declare -F cgw_after_window >/dev/null; then cgw_after_window "$port"; fi
  done
  secs=$(python3 -c "print($t1 - $t0)")
  callgrind_control -z "$SPID" >/dev/null
  sleep "$secs"
  callgrind_control -d "$SPID" >/dev/null
  idle=$(total_ir "$(wait_dump "$SPID" $((WINDOWS + 1)))")
  echo "$target $run $idle $secs$windows"
  if declare -F cgw_window_note >/dev/null; then cgw_window_note "$target" "$run" "$port"; fi
  local best=1 bestv="" i=0 v
  for v in $windows; do i=$((i + 1)); if [ -z "$bestv" ] || [ "$v" -lt "$bestv" ]; then bestv=$v; best=$i; fi; done
  cp "$WORK/callgrind.out.$SPID.$best" "$WORK/last.$run.out"
  [ -f "/tmp/perf-$SPID.map" ] && cp "/tmp/perf-$SPID.map" "$WORK/last.$run.map"
  if [ -n "${KEEP:-}" ]; then
    mkdir -p "$KEEP"; cp "$WORK/last.$run.out" "$KEEP/run$run.out"
    [ -f "$WORK/last.$run.map" ] && cp "$WORK/last.$run.map" "$KEEP/run$run.map"
  fi
  redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || kill "$SPID" 2>/dev/null || true
  wait "$SPID" 2>/dev/null || true
  rm -f "/tmp/perf-$SPID.map" "/tmp/perfinfo-$SPID.map"
  SPID=""
}

# cgw_run_all PER UNIT TARGET...: REPEATS rounds of `measure TARGET RUN` (the script's function: start, warm up,
# cgw_windows) over the targets in turn; with TOP=N the N highest self costs of each target's last run (per UNIT: the
# window's PER operations); then the medians.
cgw_run_all() {
  local per=$1 unit=$2; shift 2
  local rep t run=0
  : >"$WORK/runs.txt"
  for rep in $(seq 1 "$REPEATS"); do
    for t in "$@"; do
      run=$((run + 1))
      measure "$t" "$run" | tee -a "$WORK/runs.txt" >&2
      if [ "$TOP" -gt 0 ] && [ "$rep" = "$REPEATS" ]; then
        echo "== top $TOP self cost, $t (last run; instructions per $unit)"
        python3 "$ROOT/bench/lib/callgrind-self.py" "$WORK/last.$run.out" "$WORK/last.$run.map" "$per" "$TOP" || true
      fi
    done
  done
  python3 "$ROOT/bench/lib/callgrind-windows-summary.py" "$WORK/runs.txt" "$per" "$unit"
}
