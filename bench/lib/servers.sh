# Sourced (not run) by the bench scripts that start servers on loopback and measure them:
#
#   source "$ROOT/bench/lib/servers.sh" NAME     # after `set -euo pipefail`
#
# Sets WORK (a fresh directory /tmp/NAME.XXXXXX), PIDS (empty: append the PID of every server the script starts,
# `PIDS+=("$!")`) and CLK_TCK (clock ticks per second, for /proc/PID/stat), and traps EXIT, INT and TERM: every PID in
# PIDS is killed (SIGTERM) and waited for, then WORK is removed. Defines:
#   free_port        prints a TCP port on 127.0.0.1 that was free a moment ago
#   wait_ping PORT   returns once redis-cli PING on PORT answers PONG; after 20 s says so and exits the script (status 1)
#   start_server SPEC [VAR=VALUE...] [-- ARG...]
#                    starts one server on a free 127.0.0.1 port, its data in a fresh directory under WORK, and returns once
#                    it answers PING. SPEC is `redis` (redis-server --appendonly no --save '') or PATH/EioSharp.Kv.dll (run
#                    by dotnet), with more server arguments after `|` (`PATH|--backend|epoll`) and environment for that
#                    server before `@` (`V=x,W=y@PATH`, the form the bench scripts' targets take). VAR=VALUE... is more
#                    environment for a Kv server (e.g. DOTNET_PerfMapEnabled=1); ARG... after `--` are more arguments for
#                    either server (empty ones kept, e.g. `--save ""`). Sets SERVER_PID (appended to PIDS), SERVER_PORT
#                    and SERVER_DIR (the server's log is SERVER_DIR/log).
# Used by bench/kv-vs-redis.sh, bench/kv-features.sh and bench/kv-evalsha-sides.sh; start_server by the count scripts
# bench/kv-c1-kernel-counts.sh, kv-c1-kernel-profile.sh, kv-pingpong-enter-sites.sh and kv-request-syscalls.sh.

WORK="$(mktemp -d "/tmp/${1:?usage: source bench/lib/servers.sh NAME}.XXXXXX")"
PIDS=()
CLK_TCK=$(getconf CLK_TCK)

cleanup() {
  for pid in "${PIDS[@]:-}"; do
    [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
  done
  rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }

wait_ping() { # port
  for _ in $(seq 1 400); do
    [ "$(redis-cli -p "$1" ping 2>/dev/null)" = "PONG" ] && return 0
    sleep 0.05
  done
  echo "server on port $1 did not start" >&2
  exit 1
}

start_server() { # spec [VAR=VALUE...] [-- arg...]
  local spec=$1 envs="" parts kvenv=() args=()
  shift
  while [ $# -gt 0 ] && [ "$1" != -- ]; do kvenv+=("$1"); shift; done
  [ $# -gt 0 ] && shift
  args=("$@")
  if [[ $spec == *@* ]]; then envs=${spec%%@*}; envs=${envs//,/ }; spec=${spec#*@}; fi
  IFS='|' read -r -a parts <<<"$spec"
  SERVER_PORT=$(free_port)
  SERVER_DIR=$(mktemp -d "$WORK/srv.XXXXXX")
  if [ "${parts[0]}" = redis ]; then
    redis-server --port "$SERVER_PORT" --bind 127.0.0.1 --dir "$SERVER_DIR" --appendonly no --save '' --daemonize no \
      --logfile "$SERVER_DIR/log" "${parts[@]:1}" "${args[@]}" &
  else
    # shellcheck disable=SC2086
    env "${kvenv[@]}" $envs dotnet "${parts[0]}" --port "$SERVER_PORT" --bind 127.0.0.1 --dir "$SERVER_DIR/data" \
      "${parts[@]:1}" "${args[@]}" >"$SERVER_DIR/log" 2>&1 &
  fi
  SERVER_PID=$!
  PIDS+=("$SERVER_PID")
  wait_ping "$SERVER_PORT"
}
