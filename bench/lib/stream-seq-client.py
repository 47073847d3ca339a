#!/usr/bin/env python3
# A fixed stream workload for instruction counts (bench/kv-server-instructions.sh, row stream-seq): one connection, no
# pipelining; per message XADD <key> <i>-1 job payload-0123456789, XREADGROUP GROUP g c1 COUNT 10 STREAMS <key> >, and
# XACK of that id: exactly three requests per message on any server (the LoadGen stream row's batch sizes depend on
# timing). Checks each reply. Usage: stream-seq-client.py PORT MESSAGES
import socket, sys
port, n = int(sys.argv[1]), int(sys.argv[2])
s = socket.create_connection(("127.0.0.1", port)); f = s.makefile("rb")
def enc(*a):
    out = [b"*%d\r\n" % len(a)]
    for x in a:
        x = x if isinstance(x, bytes) else str(x).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(x), x))
    return b"".join(out)
def read():
    line = f.readline(); t = line[:1]; rest = line[1:-2]
    if t in (b"+", b":"): return rest
    if t == b"-": raise RuntimeError(rest)
    if t == b"$":
        k = int(rest)
        if k < 0: return None
        d = f.read(k + 2); return d[:-2]
    if t == b"*":
        k = int(rest)
        return None if k < 0 else [read() for _ in range(k)]
    raise RuntimeError(line)
def call(*a): s.sendall(enc(*a)); return read()
key = b"seq-" + str(port).encode()
call("XGROUP", "CREATE", key, "g", "$", "MKSTREAM")
for i in range(1, n + 1):
    ident = b"%d-1" % i
    call("XADD", key, ident, "job", "payload-0123456789")
    r = call("XREADGROUP", "GROUP", "g", "c1", "COUNT", "10", "STREAMS", key, ">")
    assert r[0][1][0][0] == ident, r
    assert call("XACK", key, "g", ident) == b"1"
call("DEL", key)
