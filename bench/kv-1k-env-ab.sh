#!/usr/bin/env bash
# The 1 KB -P16 SET row's store thread by kind of work, one build under several environments, alternated (issue 14,
# session 33, h191): per round and environment one `PROFILE=perf bash bench/kv-1k-set-profile.sh kv DLL` (a fresh
# server, 200k SETs of warm-up, 400k measured under `perf record -e cpu-clock -g`, 4 kHz: a sample is 250 us), then the
# store thread's ("dotnet") samples classified by bench/lib/perf-thread-classes.py (pwrite64, fallocate, page faults,
# io_uring_enter, ...) and its page-fault samples by the managed frame that took them.
#
#   ROUNDS=3 DLL=/tmp/s33-base/kv/EioSharp.Kv.dll bash bench/kv-1k-env-ab.sh NAME1 "VAR=x ..." NAME2 "VAR=y ..." ...
#   e.g. default "X=1" chunk8m "EIOSHARP_KV_AOF_TAIL_CHUNK_KB=8192"      (OUT=dir keeps the perf scripts; default /tmp)
#   AB_DLL=path among a name's variables runs that build instead of DLL (two builds alternated, session 35, h197:
#   base "AB_DLL=/tmp/s35-base/kv/EioSharp.Kv.dll" new "AB_DLL=/tmp/h197/new/EioSharp.Kv.dll"); each run also prints
#   the copy-on-write arrays and the snapshot entry arrays reused, and the GC-clearing samples (bench/lib/perf-gc-clear.py).
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
dll=${DLL:-}; out=${OUT:-$(mktemp -d /tmp/kv-1k-env-ab.XXXXXX)}
args=("$@")
for round in $(seq 1 "${ROUNDS:-3}"); do
  for ((i = 0; i < ${#args[@]}; i += 2)); do
    name=${args[i]}; envs=${args[i + 1]}; d=$out/r$round-$name; mkdir -p "$d"
    run_dll=$dll
    for v in $envs; do [[ $v == AB_DLL=* ]] && run_dll=${v#AB_DLL=}; done
    echo "== round $round $name ($envs) load $(cut -d' ' -f1 /proc/loadavg)"
    # shellcheck disable=SC2086
    env $envs PROFILE=perf OUT="$d" bash "$root/bench/kv-1k-set-profile.sh" kv "$run_dll" 2>&1 |
      grep -E "redis-benchmark|^process|^  dotnet |eio_sys|AOF rewrites|allocated|copy-on-write|entry arrays"
    perf script -i "$d/perf.data" --comm dotnet -F comm,ip,sym 2>/dev/null >"$d/script.txt"
    python3 "$root/bench/lib/perf-thread-classes.py" dotnet <"$d/script.txt" | cut -c1-64
    python3 "$root/bench/lib/perf-gc-clear.py" <"$d/script.txt"
    rm -f "$d/perf.data"
  done
done
