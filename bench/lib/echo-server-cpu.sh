# Sourced by bench/echo-backends.sh and bench/accept-backends.sh: runs one echo server (bench/EioSharp.Benchmarks
# echo-server BACKEND) in its own process on a free loopback port, a warm-up client run, then the measured client run,
# and reports the server's CPU over the measured run.
# Usage: server_cpu_run BACKEND "WARM-UP CLIENT ARGS" "MEASURED CLIENT ARGS"   (client args after the port, e.g.
#   "echo-client" -> `dotnet DLL echo-client PORT ...`: give the client command as the first word)
# Sets SERVER_CPU_SECONDS (utime+stime from /proc/PID/stat, in seconds) and CLIENT_OUTPUT (the measured run's output).
dll=${DLL:-bench/EioSharp.Benchmarks/bin/Release/net10.0/EioSharp.Benchmarks.dll} # DLL=... to run another build
tck=$(getconf CLK_TCK)
server_cpu_ticks() { awk '{print $14+$15}' /proc/$1/stat; }
server_cpu_run() {
  local backend=$1 warm=($2) measured=($3)
  local fifo portfile pid port before after
  fifo=$(mktemp -u); mkfifo "$fifo"
  portfile=$(mktemp)
  dotnet "$dll" echo-server "$backend" <"$fifo" >"$portfile" 2>/dev/null & pid=$!
  exec 9>"$fifo" # keeps the server's stdin open; closing it stops the server
  for _ in $(seq 100); do [ -s "$portfile" ] && break; sleep 0.1; done
  port=$(head -1 "$portfile")
  dotnet "$dll" "${warm[0]}" "$port" "${warm[@]:1}" >/dev/null
  before=$(server_cpu_ticks $pid)
  CLIENT_OUTPUT=$(dotnet "$dll" "${measured[0]}" "$port" "${measured[@]:1}")
  after=$(server_cpu_ticks $pid)
  exec 9>&-
  wait $pid 2>/dev/null
  rm -f "$fifo" "$portfile"
  SERVER_CPU_SECONDS=$(awk -v b="$before" -v a="$after" -v t="$tck" 'BEGIN { print (a-b)/t }')
}
