// The AOF's appends into new page-cache pages, with and without giving the synced pages back (issue 14, session 41,
// h221, §218): TOTAL_MB of appends of LEN_KB each (the 1 KB -P16 SET row's early writes: ~100-128 KB) to a file reserved
// ahead 8 MiB at a time (fallocate mode 0, as MappedTailAppender.ReserveForWrites under everysec), paced to RATE MB/s
// (0: unpaced), a second thread fdatasyncs every second (the everysec flusher); then the file is unlinked (a rewrite's
// removal of the old incremental file). MODE:
//   0 as the server today: the written pages stay in the page cache until the unlink frees them;
//   1 after each fdatasync the sync thread drops the synced pages behind the writer (posix_fadvise DONTNEED from the last
//     drop to the synced length rounded down to 2 MiB, less 2 MiB), so the writer's next new pages are ones just freed.
// Prints per MB appended: the writer thread's user and system CPU (RUSAGE_THREAD), the sync thread's, the unlink's, the
// process's, and the wall time. On a VM whose balloon reports free pages to the host (VIRTIO_BALLOON_F_REPORTING),
// a guest page that sat free is discarded by the host and its next first touch is a host fault.
//   gcc -O2 -pthread -o /tmp/pagedrop bench/aof-tail-write/pagedrop.c
//   /tmp/pagedrop FILE TOTAL_MB LEN_KB RATE_MBPS MODE
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

static double ru_us(int who, int sys) { struct rusage r; getrusage(who, &r);
  struct timeval t = sys ? r.ru_stime : r.ru_utime; return t.tv_sec * 1e6 + t.tv_usec; }
static double wall(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec * 1e6 + t.tv_nsec / 1e3; }

static int fd, mode; static atomic_long written; static atomic_int done; static double sync_us; static long syncs, dropped_mb;
static void *syncer(void *arg) {
  (void)arg; long dropped = 0; double t0 = ru_us(RUSAGE_THREAD, 0) + ru_us(RUSAGE_THREAD, 1);
  while (!atomic_load(&done)) {
    usleep(1000000); long len = atomic_load(&written);
    fdatasync(fd); syncs++;
    if (mode == 1) {
      long to = (len & ~((2L << 20) - 1)) - (2L << 20);
      if (to > dropped) { posix_fadvise(fd, dropped, to - dropped, POSIX_FADV_DONTNEED); dropped_mb += (to - dropped) >> 20; dropped = to; }
    }
  }
  sync_us = ru_us(RUSAGE_THREAD, 0) + ru_us(RUSAGE_THREAD, 1) - t0;
  return NULL;
}

int main(int argc, char **argv) {
  if (argc < 6) { fprintf(stderr, "usage: %s FILE TOTAL_MB LEN_KB RATE_MBPS MODE\n", argv[0]); return 2; }
  const char *path = argv[1]; long total = atol(argv[2]) << 20, len = atol(argv[3]) * 1024; double rate = atof(argv[4]); mode = atoi(argv[5]);
  unlink(path); fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0644); if (fd < 0) { perror("open"); return 1; }
  char *src = malloc(len); for (long i = 0; i < len; i++) src[i] = (char)(rand() >> 7);
  pthread_t th; pthread_create(&th, NULL, syncer, NULL);
  double p0 = ru_us(RUSAGE_SELF, 0) + ru_us(RUSAGE_SELF, 1), wu0 = ru_us(RUSAGE_THREAD, 0), ws0 = ru_us(RUSAGE_THREAD, 1), w0 = wall();
  long off = 0, reserved = 0, chunk = 8L << 20;
  while (off < total) {
    long n = len; if (off + n > total) n = total - off;
    if (off + n > reserved) { long start = off & ~4095L; long l = chunk > off + n - start ? chunk : off + n - start; if (fallocate(fd, 0, start, l) == 0) reserved = start + l; }
    if (pwrite(fd, src, n, off) != n) { perror("pwrite"); return 1; }
    off += n; atomic_store(&written, off);
    if (rate > 0) { double ahead = off / rate - (wall() - w0); if (ahead > 200) usleep((useconds_t)ahead); }
  }
  double wu = ru_us(RUSAGE_THREAD, 0) - wu0, ws = ru_us(RUSAGE_THREAD, 1) - ws0, w = wall() - w0;
  atomic_store(&done, 1); pthread_join(th, NULL);
  double u0 = ru_us(RUSAGE_SELF, 0) + ru_us(RUSAGE_SELF, 1);
  ftruncate(fd, off); close(fd); unlink(path);
  double ul = ru_us(RUSAGE_SELF, 0) + ru_us(RUSAGE_SELF, 1) - u0, proc = ru_us(RUSAGE_SELF, 0) + ru_us(RUSAGE_SELF, 1) - p0;
  double mb = total / 1048576.0;
  printf("mode %d %ld MB in %ld KB writes: writer user %.1f sys %.1f us/MB, sync thread %.1f (%ld fsyncs, %ld MB dropped), unlink %.1f, process %.1f us/MB; %.0f MB/s\n",
         mode, total >> 20, len >> 10, wu / mb, ws / mb, sync_us / mb, syncs, dropped_mb, ul / mb, proc / mb, mb / (w / 1e6));
  return 0;
}
