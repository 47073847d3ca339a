// The price of io_uring_enter naming its ring by fd against by its registered index (IORING_REGISTER_RING_FDS +
// IORING_ENTER_REGISTERED_RING, 5.18+), issue 14, session 39, h217 (rationale §214). One ring as EioSharp's poller sets
// it up (SINGLE_ISSUER | DEFER_TASKRUN | TASKRUN_FLAG), a second thread that only sleeps (the process has several
// threads, as a .NET server does: the kernel then takes a reference on the ring's file per fd entry), then rounds that
// alternate the two modes: CALLS entries each of io_uring_enter(GETEVENTS, nothing to submit or reap) or, with NOP=1,
// each submitting one IORING_OP_NOP and reaping its completion. Per round and mode: the thread's CPU per entry (ns).
//   gcc -O2 -pthread -o regring bench/uring-registered-ring/regring.c && ./regring ROUNDS CALLS [NOP]
#define _GNU_SOURCE
#include <linux/io_uring.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static int ring_fd;
static struct io_uring_sqe *sqes;
static unsigned *sq_tail, *sq_mask, *cq_head, *cq_tail;

static long thread_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return t.tv_sec * 1000000000L + t.tv_nsec;
}

static void *sleeper(void *arg) {
  (void)arg;
  for (;;) pause();
  return NULL;
}

static double round_ns(int fd, unsigned flags, long calls, int nop) {
  long t0 = thread_ns();
  for (long i = 0; i < calls; i++) {
    unsigned submit = 0;
    if (nop) {
      unsigned tail = *sq_tail;
      struct io_uring_sqe *sqe = &sqes[tail & *sq_mask];
      memset(sqe, 0, sizeof *sqe);
      sqe->opcode = IORING_OP_NOP;
      __atomic_store_n(sq_tail, tail + 1, __ATOMIC_RELEASE);
      submit = 1;
    }
    long r = syscall(__NR_io_uring_enter, fd, submit, 0, IORING_ENTER_GETEVENTS | flags, NULL, 0);
    if (r < 0) { perror("io_uring_enter"); exit(1); }
    __atomic_store_n(cq_head, __atomic_load_n(cq_tail, __ATOMIC_ACQUIRE), __ATOMIC_RELEASE);
  }
  return (double)(thread_ns() - t0) / calls;
}

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
  int rounds = argc > 1 ? atoi(argv[1]) : 11;
  long calls = argc > 2 ? atol(argv[2]) : 200000;
  int nop = argc > 3 ? atoi(argv[3]) : 0;
  struct io_uring_params p;
  memset(&p, 0, sizeof p);
  p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_TASKRUN_FLAG;
  ring_fd = syscall(__NR_io_uring_setup, 64, &p);
  if (ring_fd < 0) { perror("io_uring_setup"); return 1; }
  size_t sq_size = p.sq_off.array + p.sq_entries * 4, cq_size = p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe);
  size_t size = sq_size > cq_size ? sq_size : cq_size;
  char *ring = mmap(0, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, ring_fd, IORING_OFF_SQ_RING);
  sqes = mmap(0, p.sq_entries * sizeof(struct io_uring_sqe), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, ring_fd, IORING_OFF_SQES);
  if (ring == MAP_FAILED || sqes == MAP_FAILED) { perror("mmap"); return 1; }
  sq_tail = (unsigned *)(ring + p.sq_off.tail); sq_mask = (unsigned *)(ring + p.sq_off.ring_mask);
  cq_head = (unsigned *)(ring + p.cq_off.head); cq_tail = (unsigned *)(ring + p.cq_off.tail);
  unsigned *array = (unsigned *)(ring + p.sq_off.array);
  for (unsigned i = 0; i < p.sq_entries; i++) array[i] = i;
  pthread_t t;
  pthread_create(&t, NULL, sleeper, NULL);
  struct io_uring_rsrc_update upd = {.offset = -1U, .data = ring_fd};
  if (syscall(__NR_io_uring_register, ring_fd, IORING_REGISTER_RING_FDS, &upd, 1) != 1) { perror("IORING_REGISTER_RING_FDS"); return 1; }
  int index = upd.offset;
  round_ns(ring_fd, 0, calls / 10, nop); round_ns(index, IORING_ENTER_REGISTERED_RING, calls / 10, nop); // warm-up
  double *fd_ns = calloc(rounds, sizeof(double)), *reg_ns = calloc(rounds, sizeof(double)), *diff = calloc(rounds, sizeof(double));
  int cheaper = 0;
  for (int r = 0; r < rounds; r++) {
    if (r & 1) { reg_ns[r] = round_ns(index, IORING_ENTER_REGISTERED_RING, calls, nop); fd_ns[r] = round_ns(ring_fd, 0, calls, nop); }
    else { fd_ns[r] = round_ns(ring_fd, 0, calls, nop); reg_ns[r] = round_ns(index, IORING_ENTER_REGISTERED_RING, calls, nop); }
    diff[r] = fd_ns[r] - reg_ns[r];
    cheaper += reg_ns[r] < fd_ns[r];
    printf("round %d: by fd %.1f ns, registered %.1f ns per entry\n", r + 1, fd_ns[r], reg_ns[r]);
  }
  qsort(fd_ns, rounds, sizeof(double), cmp); qsort(reg_ns, rounds, sizeof(double), cmp); qsort(diff, rounds, sizeof(double), cmp);
  printf("%s: medians by fd %.1f, registered %.1f ns per entry; per-round difference median %.1f ns; registered cheaper in %d of %d rounds\n",
         nop ? "NOP submitted and reaped" : "GETEVENTS, nothing to do", fd_ns[rounds / 2], reg_ns[rounds / 2], diff[rounds / 2], cheaper, rounds);
  return 0;
}
