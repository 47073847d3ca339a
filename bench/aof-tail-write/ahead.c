// The AOF tail's page cache prepared by another thread (issue 14, session 33, h191): N appends of LEN bytes, an
// fdatasync every SYNC bytes. MODE 0: the writer fallocates CHUNK_KB chunks itself (MappedTailAppender.ReserveForWrites,
// as merged). MODE 4: a helper thread fallocates + readahead()s (zero folios of the unwritten extent into the page cache)
// the chunk AHEAD chunks past the writer's; the writer never waits (a late helper leaves the write to allocate; neither
// readahead nor a mode-0 fallocate can overwrite data). MODE 5: the helper fallocates only. Prints the CPU per append of
// the writer's writes, of its fdatasyncs and of the helper.
//   gcc -O2 -pthread -o /tmp/ahead bench/aof-tail-write/ahead.c && /tmp/ahead FILE N LEN MODE SYNC [AHEAD [CHUNK_KB]]
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <unistd.h>
static double cpu(void) { struct rusage r; getrusage(RUSAGE_THREAD, &r);
  return r.ru_utime.tv_sec * 1e6 + r.ru_utime.tv_usec + r.ru_stime.tv_sec * 1e6 + r.ru_stime.tv_usec; }
static int f, mode; static long chunk = 1 << 20;
static _Atomic long want = -1; static _Atomic int stop; static double helper_cpu; static long late;
static void *helper(void *a) {
  (void)a; long next = 0;
  while (!atomic_load(&stop)) {
    long w = atomic_load(&want);
    if (w >= next) { fallocate(f, 0, next * chunk, chunk); if (mode == 4) readahead(f, next * chunk, chunk); next++; } else usleep(20);
  }
  helper_cpu = cpu(); return 0;
}
int main(int argc, char **argv) {
  const char *path = argv[1]; int n = atoi(argv[2]), len = atoi(argv[3]); mode = atoi(argv[4]); long sync = atol(argv[5]);
  int ahead = argc > 6 ? atoi(argv[6]) : 1; if (argc > 7) chunk = atol(argv[7]) << 10;
  char *buf = malloc(len); for (int i = 0; i < len; i++) buf[i] = 'a' + i % 26; buf[len - 1] = '\n';
  f = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
  pthread_t t; if (mode >= 4) { atomic_store(&want, ahead); pthread_create(&t, 0, helper, 0); usleep(20000); }
  long off = 0, reserved = 0, synced = 0; double tw = 0, ts = 0;
  for (int i = 0; i < n; i++) {
    double t0 = cpu();
    if (mode == 0 && off + len > reserved) {
      long start = off & ~4095L; long l = chunk; if (start + l < off + len) l = ((off + len - start) + 4095) & ~4095L;
      if (fallocate(f, 0, start, l)) { perror("fallocate"); return 1; } reserved = start + l; }
    if (mode >= 4) { long c = (off + len - 1) / chunk + ahead; if (atomic_load(&want) < c) atomic_store(&want, c); }
    if (pwrite(f, buf, len, off) != len) { perror("pwrite"); return 1; }
    off += len;
    double t1 = cpu(); tw += t1 - t0;
    if (off - synced >= sync) { fdatasync(f); synced = off; ts += cpu() - t1; }
  }
  atomic_store(&stop, 1); if (mode >= 4) pthread_join(t, 0);
  ftruncate(f, off); fdatasync(f);
  printf("mode %d len=%d n=%d ahead=%d chunk=%ldK: writes %.3f us/append, fdatasyncs %.3f, helper %.3f us/append\n", mode, len, n, ahead, chunk >> 10, tw / n, ts / n, helper_cpu / n);
  close(f); unlink(path); return 0;
}
