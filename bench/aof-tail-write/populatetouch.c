// What a user store into freshly populated memory costs on this VM (issue 14, session 42, h225, §222): a 64 MiB
// fallocated file mapped MAP_SHARED and populated with madvise(MADV_POPULATE_WRITE), then copied into twice in 1 MiB
// memcpys; the same for anonymous memory. Prints user and system µs per MB of the populate and of each pass. On the
// PVM guest the first pass over populated pages costs ~0.8 ns/B of *user* time (the guest kernel filled the page
// tables, the host's shadow ones fault at the first touch) and the second ~0: the reason mode 2 of appendcost.c loses.
//   gcc -O2 -o /tmp/populatetouch bench/aof-tail-write/populatetouch.c && /tmp/populatetouch /tmp/h225/ac/touch.dat
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>
static double cpu(int s) { struct rusage r; getrusage(RUSAGE_THREAD, &r); return s ? r.ru_stime.tv_sec * 1e6 + r.ru_stime.tv_usec : r.ru_utime.tv_sec * 1e6 + r.ru_utime.tv_usec; }
int main(int argc, char **argv) {
  long len = 64L << 20; char *src = malloc(1 << 20); memset(src, 'x', 1 << 20);
  int f = open(argv[1], O_RDWR | O_CREAT | O_TRUNC, 0644); fallocate(f, 0, 0, len);
  char *m = mmap(0, len, PROT_READ | PROT_WRITE, MAP_SHARED, f, 0);
  double u0 = cpu(0), s0 = cpu(1); madvise(m, len, 23 /* MADV_POPULATE_WRITE */); double u1 = cpu(0), s1 = cpu(1);
  for (long o = 0; o < len; o += 1 << 20) memcpy(m + o, src, 1 << 20);
  double u2 = cpu(0), s2 = cpu(1);
  for (long o = 0; o < len; o += 1 << 20) memcpy(m + o, src, 1 << 20);
  double u3 = cpu(0), s3 = cpu(1);
  char *a = mmap(0, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0); madvise(a, len, 23); double u4 = cpu(0), s4 = cpu(1);
  for (long o = 0; o < len; o += 1 << 20) memcpy(a + o, src, 1 << 20);
  double u5 = cpu(0), s5 = cpu(1);
  for (long o = 0; o < len; o += 1 << 20) memcpy(a + o, src, 1 << 20);
  double u6 = cpu(0), s6 = cpu(1);
  double mb = len / 1048576.0;
  printf("file: populate user %.0f sys %.0f; first pass user %.0f sys %.0f; second pass user %.0f sys %.0f us/MB\n", (u1-u0)/mb, (s1-s0)/mb, (u2-u1)/mb, (s2-s1)/mb, (u3-u2)/mb, (s3-s2)/mb);
  printf("anon: populate user %.0f sys %.0f; first pass user %.0f sys %.0f; second pass user %.0f sys %.0f us/MB\n", (u4-u3)/mb, (s4-s3)/mb, (u5-u4)/mb, (s5-s4)/mb, (u6-u5)/mb, (s6-s5)/mb);
  unlink(argv[1]); return 0; }
