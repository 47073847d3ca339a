// Cross-CPU TSC order check by ping-pong: two threads pinned to CPU 0 and CPU 1 take turns; each reads the TSC after
// seeing the other's turn end, and compares with the other's last reading. Every reading is a cross-CPU handover.
// The smallest (mine - other's) over handovers in each direction bounds the offset between the two CPUs' counters:
// -min(1->0) < offset(1 - 0) < min(0->1). A negative minimum is a warp (a later reading with an earlier time).
// Usage: tscpingpong SECONDS [plain|lfence]
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>
#include <x86intrin.h>
static volatile int turn;
static volatile uint64_t stamp;
static int fenced; static double secs; static volatile int stop;
static long long n[2], warps[2]; static int64_t mind[2]={INT64_MAX,INT64_MAX};
static inline uint64_t rd(void){ if (fenced) _mm_lfence(); return __rdtsc(); }
static void *run(void *arg){
  int me=(int)(long)arg; cpu_set_t s; CPU_ZERO(&s); CPU_SET(me,&s);
  if (pthread_setaffinity_np(pthread_self(),sizeof s,&s)) { perror("affinity"); exit(1); }
  while(!stop){
    while(turn!=me && !stop) _mm_pause();
    if (stop) break;
    uint64_t prev=stamp;
    uint64_t now=rd();
    if (prev){ int64_t d=(int64_t)(now-prev); n[me]++; if(d<0) warps[me]++; if(d<mind[me]) mind[me]=d; }
    stamp=now;
    __atomic_store_n(&turn,1-me,__ATOMIC_RELEASE);
  }
  return 0;
}
int main(int c,char**v){
  secs=c>1?atof(v[1]):5; fenced=c>2&&!strcmp(v[2],"lfence");
  pthread_t t[2]; for(int i=0;i<2;i++) pthread_create(&t[i],0,run,(void*)(long)i);
  usleep((useconds_t)(secs*1e6)); stop=1;
  for(int i=0;i<2;i++) pthread_join(t[i],0);
  printf("mode=%s handovers 0->1=%lld 1->0=%lld warps=%lld/%lld min_delta_cycles 0->1=%lld 1->0=%lld => offset(cpu1-cpu0) in (%lld, %lld) cycles\n",
    fenced?"lfence+rdtsc":"rdtsc", n[1], n[0], warps[1], warps[0], (long long)mind[1], (long long)mind[0], -(long long)mind[0], (long long)mind[1]);
}
