// AOF-style appends of N records of LEN bytes to a file, two ways, CPU per record (getrusage: user + system):
//   pwrite: one pwrite(2) per record at the file's end (EioSharp.Kv's AOF write, rationale §145/§158);
//   mmap:   a memcpy into a MAP_SHARED mapping of the file's tail, the file extended by fallocate(2) in 64 MiB steps
//           (page faults included; the file is cut back to its length at the end).
// Either way the record is in the page cache (the kernel) when the call returns. Built and run by bench/aof-tail-write.sh.
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

static double cpu_us(void) {
  struct rusage r;
  getrusage(RUSAGE_SELF, &r);
  return r.ru_utime.tv_sec * 1e6 + r.ru_utime.tv_usec + r.ru_stime.tv_sec * 1e6 + r.ru_stime.tv_usec;
}

int main(int argc, char **argv) {
  if (argc < 4) { fprintf(stderr, "usage: tailwrite FILE N LEN\n"); return 2; }
  int n = atoi(argv[2]), len = atoi(argv[3]);
  char rec[4096];
  memset(rec, 'x', sizeof rec);
  if (len < 2 || len > (int)sizeof rec) return 2;
  rec[len - 2] = '\r'; rec[len - 1] = '\n';

  int f = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (f < 0) { perror("open"); return 1; }
  double t0 = cpu_us();
  for (long i = 0, off = 0; i < n; i++, off += len)
    if (pwrite(f, rec, len, off) != len) { perror("pwrite"); return 1; }
  double t1 = cpu_us();
  close(f);
  printf("pwrite: %.3f us cpu per %d-byte record\n", (t1 - t0) / n, len);

  f = open(argv[1], O_RDWR | O_CREAT | O_TRUNC, 0644);
  if (f < 0) { perror("open"); return 1; }
  const long chunk = 64L << 20;
  long mapped = 0, off = 0;
  char *m = NULL;
  t0 = cpu_us();
  for (long i = 0; i < n; i++) {
    if (off + len > mapped) {  // extend and map the next chunk; a record that would straddle starts there (a measurement, not a file format)
      if (m) munmap(m, chunk);
      off = mapped;
      if (fallocate(f, 0, mapped, chunk)) { perror("fallocate"); return 1; }
      m = mmap(NULL, chunk, PROT_READ | PROT_WRITE, MAP_SHARED, f, mapped);
      if (m == MAP_FAILED) { perror("mmap"); return 1; }
      mapped += chunk;
    }
    memcpy(m + (off - (mapped - chunk)), rec, len);
    off += len;
  }
  t1 = cpu_us();
  munmap(m, chunk);
  if (ftruncate(f, off)) { perror("ftruncate"); return 1; }
  close(f);
  printf("mmap tail: %.3f us cpu per %d-byte record (page faults included)\n", (t1 - t0) / n, len);
  return 0;
}
