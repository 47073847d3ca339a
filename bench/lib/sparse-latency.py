#!/usr/bin/env python3
"""Sparse clients' latency (session 35, h198): CLIENTS connections on one thread, each sending one GET at a time at
RATE requests per second (Poisson arrivals per client: an open loop, except that a client whose reply has not come yet
sends its next request when it comes), for SECONDS after WARM seconds; prints one line:

    sent=N p50_us=.. p90_us=.. p99_us=.. p999_us=.. max_us=.. mean_us=.. achieved_rps=..

Latency: from just before the request's send() to the reply's last byte read (time.perf_counter_ns), loopback only.
The client's own overhead (Python, ~10-30 us) is in every reading, the same against every server, so compare targets
within one run. Used by bench/kv-batch-wait-latency.sh.

    python3 bench/lib/sparse-latency.py PORT CLIENTS RATE SECONDS [WARM]
"""
import heapq
import random
import select
import socket
import sys
import time

port, clients, rate, seconds = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
warm = float(sys.argv[5]) if len(sys.argv) > 5 else 1.0
REQ = b"*2\r\n$3\r\nGET\r\n$13\r\nsparse:absent\r\n"
REPLY = b"$-1\r\n"
rng = random.Random(1)
ep = select.epoll()
socks = []
for i in range(clients):
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.setblocking(False)
    socks.append(s)
    ep.register(s.fileno(), select.EPOLLIN)
by_fd = {s.fileno(): i for i, s in enumerate(socks)}
sent_at = [0] * clients
buf = [b""] * clients
busy = [False] * clients
late = [False] * clients  # the next send came due while busy: send on reply
ns = time.perf_counter_ns
start = ns()
measure_from = start + int(warm * 1e9)
end = measure_from + int(seconds * 1e9)
heap = [(start + int(rng.expovariate(rate) * 1e9), i) for i in range(clients)]
heapq.heapify(heap)
lat = []
sent = 0


def send(i, now):
    global sent
    sent_at[i] = now
    busy[i] = True
    socks[i].send(REQ)


while True:
    now = ns()
    if now >= end:
        break
    while heap and heap[0][0] <= now:
        _, i = heapq.heappop(heap)
        heapq.heappush(heap, (now + int(rng.expovariate(rate) * 1e9), i))
        if busy[i]:
            late[i] = True
        else:
            send(i, ns())
    timeout = max(0.0, (heap[0][0] - ns()) / 1e9) if heap else 0.01
    for fd, _ in ep.poll(timeout):
        i = by_fd[fd]
        data = socks[i].recv(4096)
        t = ns()
        if not data:
            sys.exit("server closed the connection")
        buf[i] += data
        if buf[i] == REPLY:
            buf[i] = b""
            busy[i] = False
            if sent_at[i] >= measure_from:
                lat.append((t - sent_at[i]) / 1000.0)
                sent += 1
            if late[i]:
                late[i] = False
                send(i, ns())
        elif len(buf[i]) > len(REPLY) or not REPLY.startswith(buf[i]):
            sys.exit("unexpected reply %r" % buf[i])

lat.sort()


def pct(p):
    return lat[min(len(lat) - 1, int(p * len(lat)))] if lat else float("nan")


print("sent=%d p50_us=%.1f p90_us=%.1f p99_us=%.1f p999_us=%.1f max_us=%.1f mean_us=%.1f achieved_rps=%.0f" % (
    len(lat), pct(0.5), pct(0.9), pct(0.99), pct(0.999), lat[-1] if lat else float("nan"),
    sum(lat) / len(lat) if lat else float("nan"), len(lat) / seconds))
