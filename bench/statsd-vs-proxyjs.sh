#!/usr/bin/env bash
# StatsD filter benchmark: highest zero-loss forwarding rate of EioSharp.StatsdFilter vs the npm statsd package's
# proxy.js (the baseline), on loopback, in the same run. See docs/BENCHMARKS.md ("StatsD filter").
#
#   bench/statsd-vs-proxyjs.sh            # RUNS=3 by default; medians are reported
#   RUNS=5 DURATION=2s FILTER_ARGS="--reuseport" PROXYJS_FORKS=0 bench/statsd-vs-proxyjs.sh
#
# Load: bench/EioSharp.StatsdFilter.Load sends one line per datagram at increasing rates (open loop, rate x DURATION
# datagrams per step, from 4 source sockets) and counts the lines reaching its sink; a rate passes with zero loss.
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${RUNS:-3}
DURATION=${DURATION:-2s}
FILTER_ARGS=${FILTER_ARGS:-}
PROXYJS_FORKS=${PROXYJS_FORKS:-0}
LISTEN=18125 SINK=18126 HEALTH=18127 MGMT=18128
BLOCKLIST='blocked.*,tag:env:dev,regex:secret\.'

dotnet build apps/EioSharp.StatsdFilter -c Release -v quiet -nologo >/dev/null
dotnet build bench/EioSharp.StatsdFilter.Load -c Release -v quiet -nologo >/dev/null
[ -d tests/npm/node_modules/statsd ] || (cd tests/npm && npm install --no-audit --no-fund --loglevel=error >/dev/null)

FILTER=apps/EioSharp.StatsdFilter/bin/Release/net10.0/EioSharp.StatsdFilter.dll
LOAD=bench/EioSharp.StatsdFilter.Load/bin/Release/net10.0/EioSharp.StatsdFilter.Load.dll
work=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null || true; [ -n "${KEEP_LOG:-}" ] && cp "$work/log" "$KEEP_LOG"; rm -rf "$work"; }
trap cleanup EXIT

cat > "$work/proxy-config.js" <<CONFIG
{
  nodes: [ { host: '127.0.0.1', port: $SINK, adminport: $HEALTH } ],
  address: '127.0.0.1', port: $LISTEN,
  mgmt_address: '127.0.0.1', mgmt_port: $MGMT,
  forkCount: $PROXYJS_FORKS, checkInterval: 1000, cacheSize: 10000,
  server: './servers/udp'
}
CONFIG

run_load() { # label [extra load args...]
  local label=$1; shift
  local out
  out=$(dotnet "$LOAD" --target-port $LISTEN --sink-port $SINK --duration "$DURATION" --label "$label" "$@" 2>>"$work/log") || true
  awk '/^RESULT/ { r = $3 } END { print r + 0 }' <<<"$out"
}

stop() { kill -TERM "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; pid=; }

ours=() theirs=()
for run in $(seq 1 "$RUNS"); do
  # shellcheck disable=SC2086
  dotnet "$FILTER" --listen-port $LISTEN --target-host 127.0.0.1 --target-port $SINK --blocklist "$BLOCKLIST" $FILTER_ARGS \
    >>"$work/log" 2>&1 &
  pid=$!
  sleep 1
  ours+=("$(run_load eiosharp)")
  stop

  (cd tests/npm/node_modules/statsd && exec node proxy.js "$work/proxy-config.js") >>"$work/log" 2>&1 &
  pid=$!
  theirs+=("$(run_load proxyjs --health-port $HEALTH)")
  stop
  echo "run $run: EioSharp.StatsdFilter ${ours[-1]} lines/s, proxy.js ${theirs[-1]} lines/s" >&2
done

median() { printf '%s\n' "$@" | sort -n | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
m_ours=$(median "${ours[@]}")
m_theirs=$(median "${theirs[@]}")
echo "per-step log:" >&2; grep -E 'rate|nothing' "$work/log" >&2 || true
echo "EioSharp.StatsdFilter (${FILTER_ARGS:-defaults}): runs ${ours[*]} -> median $m_ours lines/s"
echo "statsd proxy.js (forkCount $PROXYJS_FORKS): runs ${theirs[*]} -> median $m_theirs lines/s"
awk -v a="$m_ours" -v b="$m_theirs" 'BEGIN { if (b > 0) printf "ratio: %.2fx\n", a / b; else print "ratio: n/a (baseline 0)" }'
