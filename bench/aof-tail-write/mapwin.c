// The AOF's mapped tail at one client (session 36, h203): N appends of LEN bytes into MAP_SHARED mappings of
// fallocate-reserved 8 MiB chunks, an fdatasync every SYNC bytes (timed apart), CPU per append (RUSAGE_THREAD, read
// around each fdatasync). MODE 2: a store faults each page in (as MappedTailAppender); MODE 4: when an append enters a
// new WIN-byte window, MADV_POPULATE_WRITE of the next window first (one call per window, no fault per page);
// MODE 1: pwrite of each append into the reserved chunks. Also the thread's minor faults per append (MADV_POPULATE_WRITE's count too).
// MODE 5 (session 37, h209): each 8 MiB chunk written with zeros and fdatasynced first (timed apart as "zero prep"),
// then stored into through the mapping (a written, not unwritten, tail); MODE 6: fallocate'd chunks as MODE 2, but only a
// WIN-byte window mapped at a time (the previous one unmapped), so that few written pages are mapped at the fdatasync.
//   gcc -O2 -o /tmp/mapwin bench/aof-tail-write/mapwin.c && /tmp/mapwin FILE N LEN MODE SYNC [WIN]   (docs/BENCHMARKS.md session 36)
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
static double cpu(long *minflt) { struct rusage r; getrusage(RUSAGE_THREAD, &r); if (minflt) *minflt = r.ru_minflt;
  return r.ru_utime.tv_sec * 1e6 + r.ru_utime.tv_usec + r.ru_stime.tv_sec * 1e6 + r.ru_stime.tv_usec; }
int main(int argc, char **argv) {
  const char *path = argv[1]; long n = atol(argv[2]); int len = atoi(argv[3]); int mode = atoi(argv[4]);
  long sync = atol(argv[5]), win = argc > 6 ? atol(argv[6]) : 65536, chunk = 8 << 20;
  char *buf = malloc(len); for (int i = 0; i < len; i++) buf[i] = 'a' + i % 26; buf[len - 1] = '\n';
  int f = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
  long off = 0, reserved = 0, synced = 0, mapstart = 0, populated = 0, f0, f1, faults = 0; double tw = 0, ts = 0, tp = 0; char *map = 0; char *wmap = 0; long wstart = 0, wlen = 0, wend = 0;
  double t0 = cpu(&f0);
  for (long i = 0; i < n; i++) {
    if (off + len > reserved) {
      long start = off & ~4095L;
      if (mode == 5) { // written zeros (not an unwritten extent), synced before the appends reach them (timed apart)
        double p0 = cpu(0); static char *z; if (!z) z = calloc(1, 1 << 20);
        for (long o = 0; o < chunk; o += 1 << 20) if (pwrite(f, z, 1 << 20, start + o) != 1 << 20) { perror("pwrite0"); return 1; }
        fdatasync(f); tp += cpu(0) - p0; }
      else if (fallocate(f, 0, start, chunk)) { perror("fallocate"); return 1; }
      if (mode != 1 && mode != 6) {
        if (map) munmap(map, reserved - mapstart);
        map = mmap(0, chunk, PROT_READ | PROT_WRITE, MAP_SHARED, f, start); if (map == MAP_FAILED) { perror("mmap"); return 1; }
        mapstart = start; populated = start;
      }
      reserved = start + chunk; }
    if (mode == 6 && (off + len > wend || !wmap)) {
      if (wmap) munmap(wmap, wlen);
      wstart = off & ~4095L; wlen = win; if (wstart + wlen > reserved) wlen = reserved - wstart;
      if (off + len > wstart + wlen) { fprintf(stderr, "window crosses chunk\n"); return 1; }
      wmap = mmap(0, wlen, PROT_READ | PROT_WRITE, MAP_SHARED, f, wstart); if (wmap == MAP_FAILED) { perror("mmap6"); return 1; }
      wend = wstart + wlen; }
    if (mode == 4 && off + len > populated) {
      long p = off & ~(win - 1); if (p < populated) p = populated;
      long l = (off + len + win - 1) / win * win + win - p; if (p + l > reserved) l = reserved - p;
      if (l > 0 && madvise(map + (p - mapstart), l, MADV_POPULATE_WRITE)) { perror("madvise"); return 1; }
      populated = p + l;
    }
    if (mode == 6) memcpy(wmap + (off - wstart), buf, len);
    else if (mode != 1) memcpy(map + (off - mapstart), buf, len);
    else if (pwrite(f, buf, len, off) != len) { perror("pwrite"); return 1; }
    off += len;
    if (off - synced >= sync) {
      double t1 = cpu(&f1); tw += t1 - t0; faults += f1 - f0;
      fdatasync(f); synced = off;
      if (mode == 4) populated = off & ~4095L; // written back: the pages ahead are clean (write-protected) again
      t0 = cpu(&f0); ts += t0 - t1; }
  }
  double t1 = cpu(&f1); tw += t1 - t0; faults += f1 - f0;
  if (map) munmap(map, reserved - mapstart);
  ftruncate(f, off); fdatasync(f);
  printf("mode %d len=%d n=%ld win=%ld: appends %.4f us/append, %.5f faults/append; fdatasyncs %.4f us/append; zero prep %.4f us/append\n", mode, len, n, win, tw / n - tp / n, (double)faults / n, ts / n, tp / n);
  close(f); unlink(path);
  return 0;
}
