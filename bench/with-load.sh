#!/usr/bin/env bash
# Runs a command under a controlled load that this script starts and stops itself (session 34, h195, issue 14: the
# durable row's A/B must not depend on what else the shared machine runs). LOAD is a comma-separated list of:
#   cpu        one busy loop (a shell `while :`), pinned to core CPU (1) with taskset: half of this 2-core machine
#   cpu2       two busy loops, one pinned to each core
#   io         a writer that appends 64 KiB and fdatasyncs it in a loop (dd oflag=dsync into a file under WORK): the disk
#              the AOF's fdatasync goes to is shared, as other engineers' builds share it
#   none       nothing (the same command's quiet-ish reading)
# Every load process is stopped by its PID when the command ends (also on INT/TERM); the load average before and after
# is printed.
#
#   LOAD=cpu bash bench/with-load.sh COMMAND [ARG...]
set -uo pipefail
LOAD=${LOAD:-cpu}; CPU=${CPU:-1}
WORK=$(mktemp -d /tmp/with-load.XXXXXX)
LOADPIDS=()
stop_load() {
  for pid in "${LOADPIDS[@]:-}"; do [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; done
  LOADPIDS=(); rm -rf "$WORK"
}
trap stop_load EXIT
trap 'stop_load; exit 130' INT TERM
IFS=',' read -r -a kinds <<<"$LOAD"
for k in "${kinds[@]}"; do
  case $k in
    cpu) taskset -c "$CPU" bash -c 'while :; do :; done' & LOADPIDS+=("$!") ;;
    cpu2) for c in 0 1; do taskset -c "$c" bash -c 'while :; do :; done' & LOADPIDS+=("$!"); done ;;
    io) bash -c "while :; do dd if=/dev/zero of='$WORK/io' bs=64k count=16 oflag=dsync conv=notrunc status=none; done" &
        LOADPIDS+=("$!") ;;
    none) ;;
    *) echo "unknown LOAD kind: $k" >&2; exit 2 ;;
  esac
done
echo "with-load: LOAD=$LOAD (pids ${LOADPIDS[*]:-none}), load average $(cut -d' ' -f1-3 /proc/loadavg) at $(date -u +%H:%M:%S)"
"$@"; rc=$?
echo "with-load: done, load average $(cut -d' ' -f1-3 /proc/loadavg) at $(date -u +%H:%M:%S)"
exit $rc
