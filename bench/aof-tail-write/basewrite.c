// A rewrite's base: TOTAL bytes in 1 MiB pwrites; MODE 0 buffered + fdatasync every 4 MiB + final fsync; MODE 1 O_DIRECT
// (aligned buffer) + final fsync. Then unlink (timed apart). CPU of the thread.  basewrite FILE TOTAL_MB MODE
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>
#include <time.h>
static double cpu(void) { struct rusage r; getrusage(RUSAGE_THREAD, &r);
  return r.ru_utime.tv_sec * 1e6 + r.ru_utime.tv_usec + r.ru_stime.tv_sec * 1e6 + r.ru_stime.tv_usec; }
static double wall(void){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec*1e6+t.tv_nsec/1e3;}
int main(int argc, char **argv) {
  long total = atol(argv[2]) << 20; int mode = atoi(argv[3]); long chunk = 1 << 20;
  char *buf; posix_memalign((void**)&buf, 4096, chunk); for (long i = 0; i < chunk; i++) buf[i] = 'a' + i % 26;
  int f = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC | (mode ? O_DIRECT : 0), 0644);
  if (f < 0) { perror("open"); return 1; }
  double c0 = cpu(), w0 = wall(); long synced = 0;
  for (long off = 0; off < total; off += chunk) {
    buf[0] = off;
    if (pwrite(f, buf, chunk, off) != chunk) { perror("pwrite"); return 1; }
    if (!mode && off + chunk - synced >= 4 << 20) { fdatasync(f); synced = off + chunk; }
  }
  fsync(f); close(f);
  double c1 = cpu(), w1 = wall();
  unlink(argv[1]);
  double c2 = cpu();
  printf("mode %d: write %.1f ms CPU (%.3f ns/B), wall %.1f ms; unlink %.1f ms CPU\n", mode, (c1 - c0) / 1000, (c1 - c0) * 1000 / total, (w1 - w0) / 1000, (c2 - c1) / 1000);
  return 0;
}
