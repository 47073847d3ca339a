// What an io_uring wait's timeout costs the sleeping thread on this guest: a waiter sleeps in io_uring_enter(min_complete
// 1, GETEVENTS) on a POLL_ADD of an eventfd, with no timeout or with a 1 s EXT_ARG timeout (an hrtimer started and
// cancelled per sleep: the io_uring backend's wait before §208), woken by a peer thread per round trip (eventfd). The
// ring has SINGLE_ISSUER | DEFER_TASKRUN as the backend's. Alternated rounds; prints the waiter's thread CPU per sleep.
//   uringsleep ROUNDS ITERS
#include <linux/io_uring.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
static int efA, efB, ring, with_timeout, iters;
static unsigned *sqtail, *sqmask, *cqhead, *cqtail, *cqmask, *sqarray;
static struct io_uring_sqe *sqes;
static struct io_uring_cqe *cqes;
static double tcpu(void) { struct timespec t; clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t); return t.tv_sec * 1e9 + t.tv_nsec; }
static double wcpu;
static void *waiter(void *arg) {
  (void)arg; uint64_t v; double c0 = 0;
  struct __kernel_timespec ts = {.tv_sec = 1};
  struct io_uring_getevents_arg ga = {.ts = (uint64_t)(uintptr_t)&ts};
  for (int i = -1; i < iters; i++) {
    if (i == 0) c0 = tcpu(); // iteration -1 enables the ring on this thread
    unsigned t = *sqtail; struct io_uring_sqe *s = &sqes[t & *sqmask]; memset(s, 0, sizeof *s);
    s->opcode = IORING_OP_POLL_ADD; s->fd = efA; s->poll32_events = 1; s->user_data = 1; sqarray[t & *sqmask] = t & *sqmask;
    __atomic_store_n(sqtail, t + 1, __ATOMIC_RELEASE);
    if (i == -1) syscall(__NR_io_uring_register, ring, IORING_REGISTER_ENABLE_RINGS, 0, 0);
    for (;;) {
      long r = with_timeout
        ? syscall(__NR_io_uring_enter, ring, 1, 1, IORING_ENTER_GETEVENTS | IORING_ENTER_EXT_ARG, &ga, sizeof ga)
        : syscall(__NR_io_uring_enter, ring, 1, 1, IORING_ENTER_GETEVENTS, 0, 0);
      unsigned h = *cqhead;
      if (h != __atomic_load_n(cqtail, __ATOMIC_ACQUIRE)) { __atomic_store_n(cqhead, h + 1, __ATOMIC_RELEASE); break; }
      (void)r;
    }
    read(efA, &v, 8); v = 1; write(efB, &v, 8);
  }
  wcpu = tcpu() - c0; return NULL;
}
int main(int argc, char **argv) {
  int rounds = atoi(argv[1]); iters = atoi(argv[2]);
  efA = eventfd(0, 0); efB = eventfd(0, 0);
  for (int r = 0; r < rounds; r++) for (int m = 0; m < 2; m++) {
    with_timeout = (r & 1) ? 1 - m : m;
    struct io_uring_params p; memset(&p, 0, sizeof p);
    p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_R_DISABLED;
    ring = syscall(__NR_io_uring_setup, 8, &p);
    if (ring < 0) { perror("io_uring_setup"); return 1; }
    size_t sz = p.sq_off.array + p.sq_entries * 4; size_t csz = p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe);
    if (csz > sz) sz = csz;
    char *q = mmap(0, sz, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, ring, IORING_OFF_SQ_RING);
    sqes = mmap(0, p.sq_entries * sizeof(struct io_uring_sqe), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, ring, IORING_OFF_SQES);
    sqtail = (unsigned *)(q + p.sq_off.tail); sqmask = (unsigned *)(q + p.sq_off.ring_mask); sqarray = (unsigned *)(q + p.sq_off.array);
    cqhead = (unsigned *)(q + p.cq_off.head); cqtail = (unsigned *)(q + p.cq_off.tail); cqmask = (unsigned *)(q + p.cq_off.ring_mask);
    cqes = (struct io_uring_cqe *)(q + p.cq_off.cqes);
    pthread_t t; pthread_create(&t, NULL, waiter, NULL);
    uint64_t v = 1; write(efA, &v, 8); read(efB, &v, 8); // the enabling iteration
    for (int i = 0; i < iters; i++) { v = 1; write(efA, &v, 8); read(efB, &v, 8); }
    pthread_join(t, NULL);
    printf("round %d %s: waiter cpu %.3f us/sleep\n", r + 1, with_timeout ? "timeout 1s" : "no timeout", wcpu / 1000 / iters);
    fflush(stdout);
    munmap(q, sz); munmap(sqes, p.sq_entries * sizeof(struct io_uring_sqe)); close(ring);
  }
  return 0;
}
