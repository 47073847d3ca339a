// What a sleep's timeout costs the sleeping thread on this guest: a waiter thread sleeps in epoll_wait on an eventfd
// (timeout -1: no timer; or a 1 s timeout: an hrtimer started and cancelled per sleep, as io_uring_enter's EXT_ARG
// timeout does), woken by a peer thread per round trip. Alternated rounds; prints the waiter's thread CPU per sleep.
//   sleeptimer ROUNDS ITERS
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <pthread.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include <time.h>
static int efA, efB, ep, timeout_ms, iters;
static double tcpu(void) { struct timespec t; clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t); return t.tv_sec * 1e9 + t.tv_nsec; }
static double wall(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec * 1e9 + t.tv_nsec; }
static double wcpu;
static void *waiter(void *arg) {
  (void)arg; struct epoll_event ev; uint64_t v = 1; double c0 = tcpu();
  for (int i = 0; i < iters; i++) {
    while (epoll_wait(ep, &ev, 1, timeout_ms) != 1) {}
    read(efA, &v, 8); v = 1; write(efB, &v, 8);
  }
  wcpu = tcpu() - c0; return NULL;
}
int main(int argc, char **argv) {
  int rounds = atoi(argv[1]); iters = atoi(argv[2]);
  efA = eventfd(0, 0); efB = eventfd(0, 0); ep = epoll_create1(0);
  struct epoll_event e = {.events = EPOLLIN}; epoll_ctl(ep, EPOLL_CTL_ADD, efA, &e);
  for (int r = 0; r < rounds; r++) for (int m = 0; m < 2; m++) {
    int mode = (r & 1) ? 1 - m : m; timeout_ms = mode ? 1000 : -1;
    pthread_t t; double w0 = wall(); pthread_create(&t, NULL, waiter, NULL);
    uint64_t v = 1;
    for (int i = 0; i < iters; i++) { v = 1; write(efA, &v, 8); read(efB, &v, 8); }
    pthread_join(t, NULL);
    printf("round %d %s: waiter cpu %.3f us/sleep, wall %.3f us/round trip\n", r + 1, mode ? "timeout 1s" : "no timeout",
           wcpu / 1000 / iters, (wall() - w0) / 1000 / iters);
    fflush(stdout);
  }
  return 0;
}
