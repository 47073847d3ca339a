#!/usr/bin/env python3
# Issue 15 (session 20): a trace started at run time that loses its events. Start the Kv server with
# `--enable-debug-command yes` on some port, then: python3 scripts/kv-trace-start-check.py PORT DIR RUNS
# Each run: DEBUG TRACE START DIR/tN.json, 10 SET round trips, DEBUG TRACE STOP; prints how many traces have no fiber-run
# slice ("ph":"X"). Seen: 6 of 30 on epoll with the NativeAOT server on an idle machine; 0 of 30 under load.
import socket,json,collections,sys
port=int(sys.argv[1]); d=sys.argv[2]; n=int(sys.argv[3])
def call(s,*a):
    s.sendall(("*%d\r\n"%len(a)+"".join("$%d\r\n%s\r\n"%(len(x),x) for x in a)).encode())
    return s.recv(65536)
bad=0
for i in range(n):
    s=socket.create_connection(('127.0.0.1',port)); p='%s/t%d.json'%(d,i)
    call(s,'DEBUG','TRACE','START',p)
    for k in range(10): call(s,'SET','k%d'%k,'v')
    call(s,'DEBUG','TRACE','STOP'); s.close()
    c=collections.Counter(e['ph'] for e in json.load(open(p))['traceEvents'])
    if c.get('X',0)==0: bad+=1
print('runs',n,'without fiber-run slices',bad)
