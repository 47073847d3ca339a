// Cost of clock_gettime(CLOCK_MONOTONIC) and sched_yield on this VM, pinned to CPU (argv[1]).
#define _GNU_SOURCE
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <immintrin.h>
#include <unistd.h>
static double now(){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec*1e9+t.tv_nsec;}
int main(int c,char**v){cpu_set_t s;CPU_ZERO(&s);CPU_SET(atoi(v[1]),&s);sched_setaffinity(0,sizeof s,&s);
 int n=1000000; double t0=now(); for(int i=0;i<n;i++){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);} double t1=now();
 printf("clock_gettime %.1f ns\n",(t1-t0)/n);
 n=200000; t0=now(); for(int i=0;i<n;i++) sched_yield(); t1=now(); printf("sched_yield %.1f ns\n",(t1-t0)/n);
 n=200000; t0=now(); for(int i=0;i<n;i++) getppid(); t1=now(); printf("getppid %.1f ns\n",(t1-t0)/n);
 n=1000000; t0=now(); for(int i=0;i<n;i++) _mm_pause(); t1=now(); printf("pause %.2f ns\n",(t1-t0)/n);
 unsigned long long a=__rdtsc(); t0=now(); for(int i=0;i<n;i++) _mm_pause(); t1=now(); unsigned long long b=__rdtsc(); printf("tsc per ns %.3f\n",(b-a)/(t1-t0));
}
