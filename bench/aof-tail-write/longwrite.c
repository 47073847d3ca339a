// Long AOF rounds (issue 14, session 29, h171): N appends of LEN bytes by pwrite past the file's end (RESERVE 0), or into
// a region reserved ahead with fallocate (mode 0) a 1 MiB chunk at a time (RESERVE 1, MappedTailAppender.ReserveForWrites);
// an fdatasync every SYNC bytes (the everysec fsync's writeback). Prints the thread's CPU per append of the writes and of
// the fdatasyncs.   gcc -O2 -o /tmp/longwrite bench/aof-tail-write/longwrite.c && /tmp/longwrite FILE N LEN RESERVE SYNC
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>
static double cpu(void) { struct rusage r; getrusage(RUSAGE_THREAD, &r);
  return r.ru_utime.tv_sec * 1e6 + r.ru_utime.tv_usec + r.ru_stime.tv_sec * 1e6 + r.ru_stime.tv_usec; }
int main(int argc, char **argv) {
  const char *path = argv[1]; int n = atoi(argv[2]), len = atoi(argv[3]); int reserve = atoi(argv[4]);
  long chunk = 1 << 20, sync = atol(argv[5]);
  char *buf = malloc(len); for (int i = 0; i < len; i++) buf[i] = 'a' + i % 26; buf[len - 1] = '\n';
  int f = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
  long off = 0, reserved = 0, synced = 0; double tw = 0, ts = 0;
  for (int i = 0; i < n; i++) {
    double t0 = cpu();
    if (reserve && off + len > reserved) { long start = off & ~4095L; long l = chunk; if (start + l < off + len) l = ((off + len - start) + 4095) & ~4095L;
      if (fallocate(f, 0, start, l)) { perror("fallocate"); return 1; } reserved = start + l; }
    if (pwrite(f, buf, len, off) != len) { perror("pwrite"); return 1; }
    off += len;
    double t1 = cpu(); tw += t1 - t0;
    if (off - synced >= sync) { fdatasync(f); synced = off; ts += cpu() - t1; }
  }
  if (reserved > off) ftruncate(f, off);
  fdatasync(f);
  printf("%s len=%d n=%d: writes %.3f us/append, fdatasyncs %.3f us/append\n", reserve ? "reserved" : "past-end", len, n, tw / n, ts / n);
  close(f); unlink(path);
  return 0;
}
