// The AOF's long appends into the page cache, shaped as the 1 KB -P16 SET row writes them (issue 14, session 42, h225,
// §222): appends of 80-120 KB (random, so they start unaligned, as the row's ~100 KB rounds and 128 KB early writes do)
// paced to RATE MB/s into an incremental file reserved ahead 8 MiB at a time (fallocate mode 0, as
// MappedTailAppender.ReserveForWrites); a background thread fdatasyncs every second (the everysec flusher) and, every
// ROTATE_MB, the writer starts a new file while the background thread cuts the old one to its length, fsyncs it and
// unlinks the one before it (an AOF rewrite's switch and its removal of the incremental file before last), so that the
// writer's new page-cache pages come from memory just freed, as in the server. TOTAL_MB in all. MODE:
//   0 one pwrite per append (the server today);
//   1 each append split so that every piece after the first starts at an ALIGN_KB boundary of the file (idea 1);
//   2 stores (memcpy) into a MAP_SHARED mapping of the tail; a helper thread reserves (fallocate), maps and populates
//     (madvise MADV_POPULATE_WRITE) the next 8 MiB chunk ahead of the writer, so the writer's stores find mapped,
//     allocated, dirty page-cache pages (idea 2; the helper's CPU is the process's too);
//   3 one pwritev2(RWF_DONTCACHE) per append (Linux 6.14+: writeback started at once, the folios dropped after it);
//   4 as 0 without fallocate (delayed allocation, past the end);
//   5 as 0, but the incremental file before last is kept (renamed to a spare) instead of unlinked, and the next rotation
//     writes over it from offset 0: its page cache (clean, uptodate folios with mapped buffers over written blocks) is
//     reused, nothing is torn down by an unlink (the upper bound of recycling AOF files; NOT crash-safe with Redis's
//     format: the stale commands past the logical end would be replayed after a crash);
//   6 as 0, but the old files are not unlinked until the readings are taken (their page cache is not torn down in the
//     run: the unlink's share of mode 0, for the split of mode 5's saving);
//   7 as 5, each write followed by zeros to the end of the page after its last byte in the same pwritev (a fence that
//     a loader reading forward would stop at after a process crash: the cost of the fence);
//   8 as 7 with a checksum of every write's bytes computed first (what a per-write checksum, the guard against stale
//     pages after an OS crash, would add): XXH3_64bits from libxxhash.so.0 when it loads, else CRC32C (SSE4.2, one
//     stream);
//   9 as 0, and the background thread starts the writeback of what was appended every 100 ms
//     (sync_file_range SYNC_FILE_RANGE_WRITE), so that the everysec fdatasync finds less to write (pacing).
// Prints CPU per MB appended (us): the writer thread's user and system time, the helper's, the background thread's (the
// fsyncs, the old files' cuts and unlinks), the process's, the kernel threads' (children of kthreadd: the flusher,
// jbd2, the end-of-I/O workers) and the machine's non-idle (/proc/stat: everything on the machine), the wall MB/s, and
// the process's CPU per 1,069-byte record (a 1 KB SET of a 16-byte key in the AOF).
//   gcc -O2 -msse4.2 -Wall -pthread -o /tmp/appendcost bench/aof-tail-write/appendcost.c -ldl
//   /tmp/appendcost DIR TOTAL_MB MODE [RATE_MBPS [ROTATE_MB [ALIGN_KB]]]
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif
#ifndef RWF_DONTCACHE
#define RWF_DONTCACHE 0x00000080
#endif
#define CHUNK (8L << 20)

static double tcpu(int who, int part) { struct rusage r; getrusage(who, &r); // part: 0 user, 1 sys, 2 both
  double u = r.ru_utime.tv_sec * 1e6 + r.ru_utime.tv_usec, s = r.ru_stime.tv_sec * 1e6 + r.ru_stime.tv_usec;
  return part == 0 ? u : part == 1 ? s : u + s; }
static double wall(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec * 1e6 + t.tv_nsec / 1e3; }
static double machine_us(void) { FILE *p = fopen("/proc/stat", "r"); unsigned long long v[8] = {0};
  if (fscanf(p, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7]) < 8) v[0] = 0;
  fclose(p); return (v[0] + v[1] + v[2] + v[5] + v[6]) * 1e6 / sysconf(_SC_CLK_TCK); }
static void disk(double *io) { // vda's writes completed and sectors written (/proc/diskstats)
  FILE *p = fopen("/proc/diskstats", "r"); char line[512], dev[64]; unsigned long long v[11]; io[0] = io[1] = 0;
  while (fgets(line, sizeof line, p))
    if (sscanf(line, "%*u %*u %63s %llu %llu %llu %llu %llu %llu %llu", dev, &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6]) == 8 && !strcmp(dev, "vda")) { io[0] = v[4]; io[1] = v[6]; }
  fclose(p); }
static double kthreads_us(void) { DIR *d = opendir("/proc"); struct dirent *e; double sum = 0; char path[300], buf[512];
  while ((e = readdir(d))) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    snprintf(path, sizeof path, "/proc/%s/stat", e->d_name);
    int fd = open(path, O_RDONLY); if (fd < 0) continue; int n = read(fd, buf, sizeof buf - 1); close(fd); if (n <= 0) continue; buf[n] = 0;
    char *q = strrchr(buf, ')'); if (!q) continue; char st; int ppid; unsigned long ut, stt;
    if (sscanf(q + 2, "%c %d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &st, &ppid, &ut, &stt) == 4 && ppid == 2) sum += ut + stt;
  }
  closedir(d); return sum * 1e6 / sysconf(_SC_CLK_TCK); }

static const char *dir; static int mode;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER, hm = PTHREAD_MUTEX_INITIALIZER; // hm: the helper reserving, held against a cut
static int cur_fd = -1; static int gen; // the writer's file and its number
static int old_fd = -1; static long old_len; static int old_gen = -1; // a file to cut and sync (set by a rotation)
static int recycle; // modes 5, 7, 8
static int spare_ready; // modes 5, 7, 8: a synced old incremental file kept to be written over (under mu)
static _Atomic long pub_len; static _Atomic int pub_gen; // the writer's length in its file (mode 9)
static _Atomic int stop; static double bg_cpu, helper_cpu; static long nsyncs, nunlinks;
#include <nmmintrin.h>
static unsigned crc32c(unsigned c, const char *p, long n) { // SSE4.2, one stream (mode 8: a checksum of every write)
  unsigned long long x = ~c; long i = 0; for (; i + 8 <= n; i += 8) { unsigned long long w; memcpy(&w, p + i, 8); x = _mm_crc32_u64(x, w); }
  for (; i < n; i++) x = _mm_crc32_u8((unsigned)x, (unsigned char)p[i]);
  return ~(unsigned)x; }
#include <dlfcn.h>
static unsigned long long (*xxh3)(const void *, size_t); // XXH3_64bits from libxxhash.so.0 when the machine has it (mode 8)
static void name(char *b, int g) { snprintf(b, 300, "%s/incr.%d", dir, g); }

static void *background(void *a) { (void)a; double next = wall() + 1e6, next_kick = wall() + 1e5; long kicked = 0; int kick_gen = 0;
  while (!atomic_load(&stop)) {
    if (mode == 9 && wall() >= next_kick) { // writeback started every 100 ms for what was appended since
      pthread_mutex_lock(&mu); int kfd = cur_fd, g = gen; pthread_mutex_unlock(&mu); int pg = atomic_load(&pub_gen); long l = atomic_load(&pub_len);
      if (g != kick_gen || pg != g) { kicked = 0; kick_gen = g; }
      else if (l > kicked) { sync_file_range(kfd, kicked, l - kicked, SYNC_FILE_RANGE_WRITE); kicked = l; }
      next_kick += 1e5; }
    pthread_mutex_lock(&mu); int ofd = old_fd, og = old_gen; long ol = old_len; old_fd = -1; int fd = cur_fd; pthread_mutex_unlock(&mu);
    if (ofd >= 0) { // the switch: the old file cut and synced, the one before it removed
      pthread_mutex_lock(&hm); if (ftruncate(ofd, ol)) perror("ftruncate"); pthread_mutex_unlock(&hm); fdatasync(ofd); close(ofd);
      if (og >= 1) { char b[300], sp[300]; name(b, og - 1); snprintf(sp, sizeof sp, "%s/spare", dir);
        pthread_mutex_lock(&mu); int keep = recycle && !spare_ready; if (keep) { if (rename(b, sp)) perror("rename spare"); else spare_ready = 1; } pthread_mutex_unlock(&mu);
        if (!keep && mode == 6) { snprintf(sp, sizeof sp, "%s/trash.%d", dir, og - 1); if (rename(b, sp)) perror("rename trash"); }
        else if (!keep) { unlink(b); nunlinks++; } } }
    if (wall() >= next) { fdatasync(fd); nsyncs++; next += 1e6; }
    usleep(5000); }
  pthread_mutex_lock(&mu); int fd = cur_fd; pthread_mutex_unlock(&mu); fdatasync(fd); nsyncs++; // the last second's pages, counted too
  bg_cpu = tcpu(RUSAGE_THREAD, 2); return 0; }

// mode 2: the helper reserves, maps and populates chunk `want` of generation `want_gen`; the writer takes it
static _Atomic long want = -1; static _Atomic int want_gen; static char *_Atomic ready_map; static _Atomic long ready_chunk = -1; static _Atomic int ready_gen = -1;
static void *helper(void *a) { (void)a; long done = -1; int done_gen = -1;
  while (!atomic_load(&stop)) {
    long w = atomic_load(&want); int g = atomic_load(&want_gen);
    if (w < 0 || (w == done && g == done_gen) || atomic_load(&ready_map)) { usleep(200); continue; }
    pthread_mutex_lock(&hm); pthread_mutex_lock(&mu); int fd = cur_fd; int fg = gen; pthread_mutex_unlock(&mu);
    if (fg != g) { pthread_mutex_unlock(&hm); usleep(200); continue; }
    if (fallocate(fd, 0, w * CHUNK, CHUNK)) { perror("helper fallocate"); exit(1); }
    char *m = mmap(0, CHUNK, PROT_READ | PROT_WRITE, MAP_SHARED, fd, w * CHUNK); if (m == MAP_FAILED) { perror("helper mmap"); exit(1); }
    if (madvise(m, CHUNK, MADV_POPULATE_WRITE)) { perror("madvise"); exit(1); }
    pthread_mutex_unlock(&hm);
    atomic_store(&ready_chunk, w); atomic_store(&ready_gen, g); atomic_store(&ready_map, m); done = w; done_gen = g; }
  helper_cpu = tcpu(RUSAGE_THREAD, 2); return 0; }

int main(int argc, char **argv) {
  if (argc < 4) { fprintf(stderr, "usage: appendcost DIR TOTAL_MB MODE [RATE_MBPS [ROTATE_MB [ALIGN_KB]]]\n"); return 2; }
  dir = argv[1]; long total = atol(argv[2]) << 20; mode = atoi(argv[3]);
  double rate = argc > 4 ? atof(argv[4]) : 350; long rotate = (argc > 5 ? atol(argv[5]) : 300) << 20; long align = (argc > 6 ? atol(argv[6]) : 64) << 10;
  recycle = mode == 5 || mode == 7 || mode == 8;
  if (mode == 8) { void *h = dlopen("libxxhash.so.0", RTLD_NOW); if (h) xxh3 = (unsigned long long (*)(const void *, size_t))dlsym(h, "XXH3_64bits");
    fprintf(stderr, "mode 8 checksum: %s\n", xxh3 ? "XXH3_64bits (libxxhash.so.0)" : "CRC32C (SSE4.2, one stream)"); } static char zeros[8192]; unsigned crc = 0;
  char *src = malloc(256 << 10); for (int i = 0; i < 256 << 10; i++) src[i] = 'a' + (i * 7) % 26;
  char b[300]; name(b, 0); cur_fd = open(b, O_RDWR | O_CREAT | O_TRUNC, 0644); if (cur_fd < 0) { perror("open"); return 1; }
  pthread_t bt, ht; pthread_create(&bt, 0, background, 0); if (mode == 2) pthread_create(&ht, 0, helper, 0);
  srand(42);
  double d0[2], d1[2]; disk(d0); double m0 = machine_us(), k0 = kthreads_us(), p0 = tcpu(RUSAGE_SELF, 2), w0 = wall(), u0 = tcpu(RUSAGE_THREAD, 0), s0 = tcpu(RUSAGE_THREAD, 1);
  long recycled = 0, off = 0, reserved = 0, flen = 0, appends = 0, writes = 0, waits = 0, selfmapped = 0; int fd = cur_fd;
  char *map = 0; long map_chunk = -1; // mode 2: the writer's mapping of its current chunk
  if (mode == 2) { atomic_store(&want_gen, 0); atomic_store(&want, 0); }
  while (off < total) {
    long len = 80000 + rand() % 40001;
    if (flen + len > rotate && flen > 0) { // a rewrite's switch: a new incremental file
      if (map) { munmap(map, CHUNK); map = 0; map_chunk = -1; }
      char *stale = atomic_exchange(&ready_map, (char *)0); if (stale) munmap(stale, CHUNK);
      int g = gen + 1; name(b, g); pthread_mutex_lock(&mu);
      if (old_fd >= 0) { pthread_mutex_unlock(&mu); usleep(1000); continue; }
      long have = 0; int nfd;
      if (recycle && spare_ready) { char sp[300]; snprintf(sp, sizeof sp, "%s/spare", dir); if (rename(sp, b)) { perror("rename"); return 1; } spare_ready = 0;
        nfd = open(b, O_RDWR); struct stat st; fstat(nfd, &st); have = st.st_size & ~4095L; recycled++; }
      else nfd = open(b, O_RDWR | O_CREAT | O_TRUNC, 0644);
      if (nfd < 0) { perror("open"); return 1; }
      old_fd = fd; old_len = flen; old_gen = gen; gen = g; cur_fd = fd = nfd; pthread_mutex_unlock(&mu);
      flen = 0; reserved = have;
      if (mode == 2) { atomic_store(&want_gen, g); atomic_store(&want, 0); } }
    if (mode == 2) { // stores into the mapped tail, chunk by chunk
      long at = 0;
      while (at < len) {
        long c = (flen + at) / CHUNK;
        if (c != map_chunk) {
          if (map) munmap(map, CHUNK);
          char *m = 0; for (int spins = 0;; spins++) {
            m = atomic_load(&ready_map);
            if (m && atomic_load(&ready_chunk) == c && atomic_load(&ready_gen) == gen) { atomic_store(&ready_map, (char *)0); break; }
            if (m && (atomic_load(&ready_chunk) != c || atomic_load(&ready_gen) != gen)) { atomic_store(&ready_map, (char *)0); munmap(m, CHUNK); m = 0; }
            if (spins > 20) { // the helper is behind: reserve and map it here (faults instead of a populated chunk)
              if (fallocate(fd, 0, c * CHUNK, CHUNK)) { perror("fallocate"); return 1; }
              m = mmap(0, CHUNK, PROT_READ | PROT_WRITE, MAP_SHARED, fd, c * CHUNK); selfmapped++; break; }
            waits++; usleep(50); }
          map = m; map_chunk = c; atomic_store(&want, c + 1); }
        long in = CHUNK - (flen + at) % CHUNK; if (in > len - at) in = len - at;
        memcpy(map + (flen + at) % CHUNK, src + at, in); at += in; }
      writes++; }
    else {
      if (mode != 4 && flen + len > reserved) { long start = flen & ~4095L, l = CHUNK; if (start + l < flen + len) l = ((flen + len - start) + 4095) & ~4095L;
        if (fallocate(fd, 0, start, l)) { perror("fallocate"); return 1; } reserved = start + l; }
      if (mode == 1) {
        long at = 0; while (at < len) { long p = flen + at, nb = (p / align + 1) * align, n = nb - p; if (n > len - at) n = len - at;
          if (pwrite(fd, src + at, n, p) != n) { perror("pwrite"); return 1; } at += n; writes++; } }
      else if (mode == 3) { struct iovec v = {src, len}; ssize_t r = pwritev2(fd, &v, 1, flen, RWF_DONTCACHE);
        if (r != len) { fprintf(stderr, "pwritev2 RWF_DONTCACHE: %zd %s\n", r, strerror(errno)); return 1; } writes++; }
      else if (mode == 7 || mode == 8) { // data, then zeros to the end of the page after it (the fence), in one pwritev
        if (mode == 8) crc = xxh3 ? (unsigned)xxh3(src, len) : crc32c(crc, src, len);
        long end = flen + len, fence = ((end + 4095) & ~4095L) + 4096 - end; struct iovec v[2] = {{src, len}, {zeros, fence}};
        if (pwritev(fd, v, 2, flen) != len + fence) { perror("pwritev"); return 1; } writes++; }
      else { if (pwrite(fd, src, len, flen) != len) { perror("pwrite"); return 1; } writes++; } }
    flen += len; off += len; appends++; atomic_store(&pub_len, flen); atomic_store(&pub_gen, gen);
    if (rate > 0) { double due = w0 + off / rate; double now = wall(); if (due > now) { struct timespec ts = {(long)((due - now) / 1e6), (long)((due - now) * 1e3) % 1000000000L}; nanosleep(&ts, 0); } }
  }
  double u1 = tcpu(RUSAGE_THREAD, 0), s1 = tcpu(RUSAGE_THREAD, 1), w1 = wall();
  atomic_store(&stop, 1); pthread_join(bt, 0); if (mode == 2) pthread_join(ht, 0);
  double p1 = tcpu(RUSAGE_SELF, 2), k1 = kthreads_us(), m1 = machine_us(); disk(d1);
  if (map) munmap(map, CHUNK);
  for (int g = gen - 2; g <= gen; g++) if (g >= 0) { name(b, g); unlink(b); }
  snprintf(b, sizeof b, "%s/spare", dir); unlink(b);
  for (int g = 0; g <= gen; g++) { snprintf(b, sizeof b, "%s/trash.%d", dir, g); unlink(b); } // mode 6's, after the readings
  double mb = off / 1048576.0; if (crc == 1) printf("(crc %u)\n", crc);
  printf("mode %d rate=%.0f rotate=%ldM align=%ldK: writer user %.1f sys %.1f, helper %.1f, background %.1f (%ld syncs, %ld unlinks), process %.1f, kthreads %.1f, machine %.1f us/MB; process %.3f us/record; %.0f MB/s; %ld appends %ld writes, %ld waits %ld self-mapped %ld recycled; disk %.1f write requests/MB, %.0f KB a request\n",
    mode, rate, rotate >> 20, align >> 10, (u1 - u0) / mb, (s1 - s0) / mb, helper_cpu / mb, bg_cpu / mb, nsyncs, nunlinks, (p1 - p0) / mb, (k1 - k0) / mb, (m1 - m0) / mb,
    (p1 - p0) / mb * 1069 / 1048576, mb / ((w1 - w0) / 1e6), appends, writes, waits, selfmapped, recycled, (d1[0] - d0[0]) / mb, (d1[1] - d0[1]) / 2 / (d1[0] - d0[0] > 0 ? d1[0] - d0[0] : 1));
  return 0;
}
