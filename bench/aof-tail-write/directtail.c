// The AOF's incremental appends past the page cache (issue 14, session 35, h200): N appends of LEN bytes (the 1 KB -P16
// SET row's round: ~17 KB; a long round ~800 KB) to a file reserved ahead in CHUNK_MB chunks (fallocate mode 0, as
// MappedTailAppender.ReserveForWrites under everysec), a thread fdatasyncs every second (the everysec flusher), the
// appends paced to RATE MB/s (0: as fast as they go). MODE:
//   0 buffered pwrite (the server today);
//   1 O_DIRECT pwrite from a 4 KiB-aligned buffer: each append writes from the block holding the previous end to the
//     block past its own end, zero-padded; the next append writes that last partial block again (same prefix bytes);
//   2 as 1 through io_uring (raw syscalls): the writer submits and goes on, one write in flight; appends that come
//     while it flies are gathered and go in the next write (the previous write's last block copied in front);
//   3 as 1, the chunks reserved with FALLOC_FL_WRITE_ZEROES (written extents: the writes are overwrites), if the
//     kernel and device have it (else mode 1's fallocate, said on stderr);
//   4 as 1 into a file whose chunks are written with zeros first, by the writer, O_DIRECT (written extents).
// Prints per append: the writer thread's CPU, the fsync thread's, the process's (io_uring workers included), the kernel
// threads' (flusher kworkers, jbd2, ...: /proc/*/stat of children of kthreadd) and the machine's non-idle CPU
// (/proc/stat; other work on the machine included), and the wall time (MB/s).
//   gcc -O2 -pthread -o /tmp/directtail bench/aof-tail-write/directtail.c
//   /tmp/directtail FILE N LEN MODE [RATE_MBPS [CHUNK_MB]]
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/io_uring.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#ifndef FALLOC_FL_WRITE_ZEROES
#define FALLOC_FL_WRITE_ZEROES 0x80
#endif
#define BLK 4096L

static double tcpu(int who) { struct rusage r; getrusage(who, &r);
  return r.ru_utime.tv_sec * 1e6 + r.ru_utime.tv_usec + r.ru_stime.tv_sec * 1e6 + r.ru_stime.tv_usec; }
static double wall(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec * 1e6 + t.tv_nsec / 1e3; }
// the machine: user+nice, system, irq+softirq, steal (hypervisor), in us
static void machine_us(double *out) { // /proc/stat's first line (all CPUs)
  FILE *p = fopen("/proc/stat", "r"); unsigned long long v[10] = {0};
  if (fscanf(p, "cpu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7], &v[8], &v[9]) < 8) v[0] = 0;
  fclose(p); double k = 1e6 / sysconf(_SC_CLK_TCK);
  out[0] = (v[0] + v[1]) * k; out[1] = v[2] * k; out[2] = (v[5] + v[6]) * k; out[3] = v[7] * k; }
static double kthreads_us(void) { // utime+stime of kernel threads (parent 2, kthreadd), in us
  DIR *d = opendir("/proc"); struct dirent *e; double sum = 0; char path[300], buf[512];
  while ((e = readdir(d))) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    snprintf(path, sizeof path, "/proc/%s/stat", e->d_name);
    int fd = open(path, O_RDONLY); if (fd < 0) continue; int n = read(fd, buf, sizeof buf - 1); close(fd); if (n <= 0) continue; buf[n] = 0;
    char *q = strrchr(buf, ')'); if (!q) continue; char st; int ppid; unsigned long ut, stt;
    if (sscanf(q + 2, "%c %d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &st, &ppid, &ut, &stt) == 4 && ppid == 2) sum += ut + stt;
  }
  closedir(d); return sum * 1e6 / sysconf(_SC_CLK_TCK); }

static int f, mode; static _Atomic int stop; static double fsync_cpu; static long nsyncs;
static void *flusher(void *a) { (void)a; // the everysec fsync
  double next = wall() + 1e6;
  while (!atomic_load(&stop)) { if (wall() >= next) { fdatasync(f); nsyncs++; next += 1e6; } usleep(5000); }
  fsync_cpu = tcpu(RUSAGE_THREAD); return 0; }

// io_uring, raw
static int ring; static unsigned *sq_tail, *sq_mask, *sq_array, *cq_head, *cq_tail, *cq_mask; static struct io_uring_sqe *sqes; static struct io_uring_cqe *cqes;
static unsigned *sq_head;
static void ring_setup(void) {
  struct io_uring_params p; memset(&p, 0, sizeof p);
  ring = syscall(__NR_io_uring_setup, 8, &p); if (ring < 0) { perror("io_uring_setup"); exit(1); }
  size_t sqsz = p.sq_off.array + p.sq_entries * sizeof(unsigned), cqsz = p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe);
  char *sq = mmap(0, sqsz, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, ring, IORING_OFF_SQ_RING);
  char *cq = mmap(0, cqsz, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, ring, IORING_OFF_CQ_RING);
  sqes = mmap(0, p.sq_entries * sizeof(struct io_uring_sqe), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, ring, IORING_OFF_SQES);
  sq_head = (unsigned *)(sq + p.sq_off.head); sq_tail = (unsigned *)(sq + p.sq_off.tail); sq_mask = (unsigned *)(sq + p.sq_off.ring_mask); sq_array = (unsigned *)(sq + p.sq_off.array);
  cq_head = (unsigned *)(cq + p.cq_off.head); cq_tail = (unsigned *)(cq + p.cq_off.tail); cq_mask = (unsigned *)(cq + p.cq_off.ring_mask);
  cqes = (struct io_uring_cqe *)(cq + p.cq_off.cqes); }
static void ring_write(char *b, long len, long off) {
  unsigned t = *sq_tail, i = t & *sq_mask; struct io_uring_sqe *s = &sqes[i]; memset(s, 0, sizeof *s);
  s->opcode = IORING_OP_WRITE; s->fd = f; s->addr = (uintptr_t)b; s->len = len; s->off = off; s->user_data = len;
  sq_array[i] = i; atomic_store_explicit((_Atomic unsigned *)sq_tail, t + 1, memory_order_release);
  if (syscall(__NR_io_uring_enter, ring, 1, 0, 0, 0, 0) != 1) { perror("io_uring_enter"); exit(1); } }
static int ring_reap(int wait) { // 1 if a completion was taken
  for (;;) {
    unsigned h = *cq_head, t = atomic_load_explicit((_Atomic unsigned *)cq_tail, memory_order_acquire);
    if (h != t) { struct io_uring_cqe *c = &cqes[h & *cq_mask];
      if (c->res != (int)c->user_data) { fprintf(stderr, "ring write: %d of %llu\n", c->res, (unsigned long long)c->user_data); exit(1); }
      atomic_store_explicit((_Atomic unsigned *)cq_head, h + 1, memory_order_release); return 1; }
    if (!wait) return 0;
    syscall(__NR_io_uring_enter, ring, 0, 1, IORING_ENTER_GETEVENTS, 0, 0); } }

static char *stage[2];
// Writes stage[cur][0, roundup(fill)) at blk (the rest of its last block zeroed first); keeps the last partial block as
// the next write's first (in the other stage under io_uring: this one is in flight).
static void submit(int *cur, long *fill, long *blk, int *inflight, long *writes) {
  long wl = (*fill + BLK - 1) & ~(BLK - 1); char *b = stage[*cur];
  memset(b + *fill, 0, wl - *fill);
  if (mode == 2) { ring_write(b, wl, *blk); *inflight = 1; }
  else if (pwrite(f, b, wl, *blk) != wl) { perror("pwrite direct"); exit(1); }
  (*writes)++;
  long whole = *fill & ~(BLK - 1), part = *fill - whole; int next = mode == 2 ? !*cur : *cur;
  memmove(stage[next], b + whole, part);
  *cur = next; *blk += whole; *fill = part; }

int main(int argc, char **argv) {
  if (argc < 5) { fprintf(stderr, "usage: directtail FILE N LEN MODE [RATE_MBPS [CHUNK_MB]]\n"); return 2; }
  const char *path = argv[1]; int n = atoi(argv[2]); long len = atol(argv[3]); mode = atoi(argv[4]);
  double rate = argc > 5 ? atof(argv[5]) : 0; long chunk = (argc > 6 ? atol(argv[6]) : 8) << 20; // 0: no reservation (appends past the file's end)
  char *rec = malloc(len); for (long i = 0; i < len; i++) rec[i] = 'a' + i % 26; rec[len - 1] = '\n';
  long cap = 64L << 20; posix_memalign((void **)&stage[0], BLK, cap); posix_memalign((void **)&stage[1], BLK, cap);
  memset(stage[0], 0, cap); memset(stage[1], 0, cap); char *zeros = 0;
  if (mode == 4 && chunk) { posix_memalign((void **)&zeros, BLK, chunk); memset(zeros, 0, chunk); }
  f = open(path, O_RDWR | O_CREAT | O_TRUNC | (mode ? O_DIRECT : 0), 0644); if (f < 0) { perror("open"); return 1; }
  if (mode == 2) ring_setup();
  int wz = mode == 3;
  pthread_t t; pthread_create(&t, 0, flusher, 0);
  double m0[4], m1[4]; machine_us(m0); double k0 = kthreads_us(), p0 = tcpu(RUSAGE_SELF), w0 = wall(), c0 = tcpu(RUSAGE_THREAD);
  long off = 0, reserved = 0, blk = 0; // blk: the file offset of stage[cur]'s first byte (a block boundary)
  int cur = 0; long fill = 0; int inflight = 0; long writes = 0;
  for (int i = 0; i < n; i++) {
    if (chunk > 0 && off + len > reserved) { // reserve the next chunk, from the block holding the end
      long start = off & ~(BLK - 1), l = chunk; if (start + l < off + len) l = ((off + len - start) + BLK - 1) & ~(BLK - 1);
      if (mode == 4) { for (long z = reserved > start ? reserved : start; z < start + l; z += chunk) if (pwrite(f, zeros, start + l - z < chunk ? start + l - z : chunk, z) < 0) { perror("zero"); return 1; } }
      else if (wz) { if (fallocate(f, FALLOC_FL_WRITE_ZEROES, start, l)) { perror("fallocate WRITE_ZEROES (mode 1's fallocate instead)"); wz = 0; } }
      if (mode != 4 && !wz && fallocate(f, 0, start, l)) { perror("fallocate"); return 1; }
      reserved = start + l; }
    if (mode == 0) { if (pwrite(f, rec, len, off) != len) { perror("pwrite"); return 1; } off += len; }
    else {
      if (fill + len + BLK > cap) { // (mode 2: the device is behind by a whole stage) wait, write what is gathered, wait
        if (mode != 2) { fprintf(stderr, "stage full\n"); return 1; }
        if (inflight) { ring_reap(1); }
        submit(&cur, &fill, &blk, &inflight, &writes); ring_reap(1); inflight = 0; }
      memcpy(stage[cur] + fill, rec, len); fill += len; off += len;
      if (mode == 2 && inflight && ring_reap(0)) inflight = 0;
      if (mode != 2 || !inflight) submit(&cur, &fill, &blk, &inflight, &writes); }
    if (rate > 0) { double due = w0 + off / rate; double now = wall(); if (due > now) { struct timespec ts = {(long)((due - now) / 1e6), (long)((due - now) * 1e3) % 1000000000L}; nanosleep(&ts, 0); } }
  }
  if (mode == 2) { if (inflight) ring_reap(1); inflight = 0; if (fill) { submit(&cur, &fill, &blk, &inflight, &writes); ring_reap(1); } }
  double c1 = tcpu(RUSAGE_THREAD), w1 = wall();
  atomic_store(&stop, 1); pthread_join(t, 0);
  double p1 = tcpu(RUSAGE_SELF), k1 = kthreads_us(); machine_us(m1);
  if (ftruncate(f, off)) { perror("ftruncate"); }
  fdatasync(f); close(f); unlink(path);
  double mb = off / 1e6;
  printf("mode %d len=%ld n=%d rate=%.0f chunk=%ldM: writer %.2f us/append (%.3f ns/B), fsync thread %.2f (%ld syncs), process %.2f, kthreads %.2f, machine user %.1f sys %.1f irq %.1f steal %.1f us/append; %.0f MB/s wall; %ld writes\n",
    mode, len, n, rate, chunk >> 20, (c1 - c0) / n, (c1 - c0) * 1000 / off, fsync_cpu / n, nsyncs, (p1 - p0) / n, (k1 - k0) / n, (m1[0] - m0[0]) / n, (m1[1] - m0[1]) / n, (m1[2] - m0[2]) / n, (m1[3] - m0[3]) / n, mb / ((w1 - w0) / 1e6), writes);
  return 0;
}
