# Sourced (not run) by the bench scripts that start servers on loopback and measure them:
#
#   source "$ROOT/bench/lib/servers.sh" NAME     # after `set -euo pipefail`
#
# Sets WORK (a fresh directory /tmp/NAME.XXXXXX), PIDS (empty: append the PID of every server the script starts,
# `PIDS+=("$!")`) and CLK_TCK (clock ticks per second, for /proc/PID/stat), and traps EXIT, INT and TERM: every PID in
# PIDS is killed (SIGTERM) and waited for, then WORK is removed. Defines:
#   free_port        prints a TCP port on 127.0.0.1 that was free a moment ago
#   wait_ping PORT   returns once redis-cli PING on PORT answers PONG; after 20 s says so and exits the script (status 1)
# Used by bench/kv-vs-redis.sh, bench/kv-features.sh and bench/kv-evalsha-sides.sh.

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
