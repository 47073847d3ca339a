#!/usr/bin/env python3
"""Regenerates apps/EioSharp.Kv.Core/Resources/redis-commands.*.resp3 from a running redis-server 7.0.

The files are Redis's own command table, as COMMAND INFO and COMMAND DOCS print it in RESP3 (HELLO 3), byte for byte:
EioSharp.Kv answers COMMAND INFO/DOCS and takes its ACL categories, key specs and the ACL command set from them
(docs/kv.md, "Command table"). The differential test CommandInfoDiffTests checks them against a live redis-server.

Usage: redis-server --port 16399 --save '' & scripts/gen-kv-command-data.py 16399
"""
import socket
import sys

port = int(sys.argv[1]) if len(sys.argv) > 1 else 6379
out = sys.argv[2] if len(sys.argv) > 2 else "apps/EioSharp.Kv.Core/Resources"
sock = socket.create_connection(("127.0.0.1", port))
buf = b""


def fill():
    global buf
    data = sock.recv(1 << 20)
    if not data:
        raise EOFError("server closed")
    buf += data


def line(pos):
    while True:
        end = buf.find(b"\r\n", pos)
        if end >= 0:
            return buf[pos:end], end + 2
        fill()


def skip(pos):
    """Returns the position after the RESP3 value at pos."""
    global buf
    head, pos = line(pos)
    kind, rest = chr(head[0]), head[1:]
    if kind in "+-:,#_(":
        return pos
    if kind in "$=!":
        n = int(rest)
        if n < 0:
            return pos
        while len(buf) < pos + n + 2:
            fill()
        return pos + n + 2
    if kind in "*~>%|":
        n = int(rest)
        if kind in "%|":
            n *= 2
        for _ in range(max(n, 0)):
            pos = skip(pos)
        return pos
    raise ValueError(head)


def call(cmd):
    global buf
    buf = b""
    args = cmd.split()
    sock.sendall(b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a.encode()) for a in args))
    end = skip(0)
    return buf[:end]


call("HELLO 3")
version = call("INFO server")
if b"redis_version:7.0." not in version:
    sys.exit("expected redis-server 7.0.x")
for name, cmd in (("info", "COMMAND INFO"), ("docs", "COMMAND DOCS")):
    with open(f"{out}/redis-commands.{name}.resp3", "wb") as f:
        f.write(call(cmd))
print("written")
