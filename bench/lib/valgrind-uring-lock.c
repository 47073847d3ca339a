/* Does valgrind release its one-thread-at-a-time lock while a thread waits in io_uring_enter? (session 17, h118)
 *   gcc -O1 -pthread -o /tmp/uring_block bench/lib/valgrind-uring-lock.c && /tmp/uring_block
 *   timeout -s KILL 60 valgrind --tool=none -q /tmp/uring_block    # valgrind 3.19: prints nothing, killed at 60 s
 * Natively the second thread prints after 0.3 s and exits the process; under valgrind 3.19 it never runs (it waits
 * for the lock in anon_pipe_read while the main thread sits in io_cqring_wait) and SIGTERM is not delivered. */
#include <linux/io_uring.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
static void *other(void *a) {
  (void)a;
  struct timespec t = {0, 300000000};
  nanosleep(&t, 0);
  printf("other thread ran while main was in io_uring_enter: lock released\n");
  fflush(stdout);
  _exit(0);
}
int main(void) {
  struct io_uring_params p; memset(&p, 0, sizeof p);
  int fd = syscall(__NR_io_uring_setup, 8, &p);
  if (fd < 0) { perror("setup"); return 1; }
  pthread_t th; pthread_create(&th, 0, other, 0);
  struct timespec t = {0, 50000000}; nanosleep(&t, 0);
  /* block: wait for 1 completion, none will come */
  long r = syscall(__NR_io_uring_enter, fd, 0, 1, IORING_ENTER_GETEVENTS, 0, 0);
  printf("enter returned %ld\n", r);
  return 0;
}
