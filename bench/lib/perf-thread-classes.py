# Classifies the samples of one thread (by comm) of `perf script -F comm,ip,sym` output by what their call stack holds
# (the AOF pwrite64, fallocate, fdatasync, page faults, io_uring_enter, other system calls, interrupts, else user code):
#   perf script -i perf.data --comm dotnet -F comm,ip,sym | python3 bench/lib/perf-thread-classes.py dotnet
# (issue 14, session 33, h191: the 1 KB -P16 SET row store thread by kind of work).
import sys, re, collections
cats = [
 ('pwrite64 (AOF append)', ['__x64_sys_pwrite64', 'ksys_pwrite64']),
 ('fallocate', ['__x64_sys_fallocate']),
 ('fdatasync', ['__x64_sys_fdatasync', 'do_fsync']),
 ('page fault', ['asm_exc_page_fault', 'exc_page_fault']),
 ('io_uring_enter', ['__x64_sys_io_uring_enter', '__do_sys_io_uring_enter']),
 ('other syscall', ['entry_SYSCALL_64', 'do_syscall_64']),
 ('irq/softirq', ['asm_common_interrupt','asm_sysvec', 'irq_exit_rcu', '__do_softirq', 'handle_softirqs']),
]
comm_filter = sys.argv[1] if len(sys.argv) > 1 else None
tot = collections.Counter(); bysym = collections.defaultdict(collections.Counter); n = 0
cur = None; stack = []
def flush():
    global n
    if cur is None: return
    comm = cur
    if comm_filter and comm != comm_filter: return
    n += 1
    joined = ' '.join(stack)
    c = 'user/managed/other'
    for name, keys in cats:
        if any(k in joined for k in keys): c = name; break
    tot[c] += 1
    if stack: bysym[c][stack[0][:90]] += 1
for line in sys.stdin:
    if not line.strip():
        flush(); cur = None; stack = []; continue
    if not line.startswith((' ', '\t')):
        cur = line.split()[0] if not line.startswith('.NET') and not line.startswith('eio ') else ' '.join(line.split()[:2])
        stack = []
    else:
        parts = line.strip().split(None, 1)
        if len(parts) == 2:
            sym = parts[1].rsplit(' (', 1)[0]
            stack.append(sym)
flush()
print(f"samples {n}")
for c, v in tot.most_common():
    print(f"  {c:28s} {v/n*100:6.2f}%   top: " + '; '.join(f"{s} {k/n*100:.2f}%" for s, k in bysym[c].most_common(4)))
