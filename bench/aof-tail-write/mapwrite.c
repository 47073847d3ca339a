// Long AOF rounds, three ways: MODE 0 pwrite past end; 1 pwrite into fallocate-reserved 1 MiB chunks; 2 memcpy into a
// MAP_SHARED mapping of fallocate-reserved chunks (faults per page); 3 as 2 with MADV_POPULATE_WRITE of each new chunk.
// fdatasync every SYNC bytes (timed apart).  mapwrite FILE N LEN MODE SYNC
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif
static double cpu(void) { struct rusage r; getrusage(RUSAGE_THREAD, &r);
  return r.ru_utime.tv_sec * 1e6 + r.ru_utime.tv_usec + r.ru_stime.tv_sec * 1e6 + r.ru_stime.tv_usec; }
int main(int argc, char **argv) {
  const char *path = argv[1]; int n = atoi(argv[2]), len = atoi(argv[3]); int mode = atoi(argv[4]);
  long chunk = argc > 6 ? atol(argv[6]) : 1 << 20, sync = atol(argv[5]);
  char *buf = malloc(len); for (int i = 0; i < len; i++) buf[i] = 'a' + i % 26; buf[len - 1] = '\n';
  int f = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
  long off = 0, reserved = 0, synced = 0, mapstart = 0; double tw = 0, ts = 0; char *map = 0;
  for (int i = 0; i < n; i++) {
    double t0 = cpu();
    if (mode >= 1 && off + len > reserved) {
      long start = off & ~4095L; long l = chunk; if (start + l < off + len) l = ((off + len - start) + 4095) & ~4095L;
      if (fallocate(f, 0, start, l)) { perror("fallocate"); return 1; }
      if (mode >= 2) {
        if (map) munmap(map, reserved - mapstart);
        map = mmap(0, l, PROT_READ | PROT_WRITE, MAP_SHARED, f, start); if (map == MAP_FAILED) { perror("mmap"); return 1; }
        mapstart = start;
        if (mode == 3 && madvise(map, l, MADV_POPULATE_WRITE)) { perror("madvise"); return 1; }
      }
      reserved = start + l; }
    if (mode >= 2) memcpy(map + (off - mapstart), buf, len);
    else if (pwrite(f, buf, len, off) != len) { perror("pwrite"); return 1; }
    off += len;
    double t1 = cpu(); tw += t1 - t0;
    if (off - synced >= sync) { fdatasync(f); synced = off; ts += cpu() - t1; }
  }
  if (map) munmap(map, reserved - mapstart);
  if (reserved > off) ftruncate(f, off);
  fdatasync(f);
  printf("mode %d len=%d n=%d: writes %.3f us/append (%.3f ns/B), fdatasyncs %.3f us/append\n", mode, len, n, tw / n, tw * 1000 / n / len, ts / n);
  close(f); unlink(path);
  return 0;
}
