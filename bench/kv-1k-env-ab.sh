#!/usr/bin/env bash
# The 1 KB -P16 SET row's store thread by kind of work, one build under several environments, alternated (issue 14,
# session 33, h191): per round and environment one `PROFILE=perf bash bench/kv-1k-set-profile.sh kv DLL` (a fresh
# server, 200k SETs of warm-up, 400k measured under `perf record -e cpu-clock -g`, 4 kHz: a sample is 250 us), then the
# store thread's ("dotnet") samples classified by bench/lib/perf-thread-classes.py (pwrite64, fallocate, page faults,
# io_uring_enter, ...) and its page-fault samples by the managed frame that took them.
#
#   ROUNDS=3 DLL=/tmp/s33-base/kv/EioSharp.Kv.dll bash bench/kv-1k-env-ab.sh NAME1 "VAR=x ..." NAME2 "VAR=y ..." ...
#   e.g. default "X=1" chunk8m "EIOSHARP_KV_AOF_TAIL_CHUNK_KB=8192"      (OUT=dir keeps the perf scripts; default /tmp)
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
dll=${DLL:?DLL=path/EioSharp.Kv.dll}; out=${OUT:-$(mktemp -d /tmp/kv-1k-env-ab.XXXXXX)}
args=("$@")
for round in $(seq 1 "${ROUNDS:-3}"); do
  for ((i = 0; i < ${#args[@]}; i += 2)); do
    name=${args[i]}; envs=${args[i + 1]}; d=$out/r$round-$name; mkdir -p "$d"
    echo "== round $round $name ($envs) load $(cut -d' ' -f1 /proc/loadavg)"
    # shellcheck disable=SC2086
    env $envs PROFILE=perf OUT="$d" bash "$root/bench/kv-1k-set-profile.sh" kv "$dll" 2>&1 |
      grep -E "redis-benchmark|^process|^  dotnet |eio_sys|AOF rewrites|allocated"
    perf script -i "$d/perf.data" --comm dotnet -F comm,ip,sym 2>/dev/null >"$d/script.txt"
    python3 "$root/bench/lib/perf-thread-classes.py" dotnet <"$d/script.txt" | cut -c1-64
    rm -f "$d/perf.data"
  done
done
