// Two threads pinned to CPUs A and B hand one 128-byte-aligned word back and forth (rdtsc-free: clock_gettime per batch).
// Usage: line ROUNDS CPU_A CPU_B MODE (MODE 0: plain load spin, 1: pause in the spin). Prints ns per round trip
// (median of 21 batches).
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <immintrin.h>
static volatile long word __attribute__((aligned(128)));
static long rounds; static int cpus[2]; static int mode;
static void pin(int c){cpu_set_t s;CPU_ZERO(&s);CPU_SET(c,&s);pthread_setaffinity_np(pthread_self(),sizeof s,&s);}
static void *pong(void*a){pin(cpus[1]);for(long i=0;i<rounds*21;i++){while(word!=2*i+1){if(mode)_mm_pause();}word=2*i+2;}return 0;}
static double now(){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec*1e9+t.tv_nsec;}
static int cmp(const void*a,const void*b){double x=*(double*)a,y=*(double*)b;return x<y?-1:x>y;}
int main(int c,char**v){rounds=atol(v[1]);cpus[0]=atoi(v[2]);cpus[1]=atoi(v[3]);mode=atoi(v[4]);pthread_t t;pin(cpus[0]);pthread_attr_t at;pthread_attr_init(&at);cpu_set_t cs;CPU_ZERO(&cs);CPU_SET(cpus[1],&cs);pthread_attr_setaffinity_np(&at,sizeof cs,&cs);pthread_create(&t,&at,pong,0);
 double r[21];long k=0;for(int b=0;b<21;b++){double t0=now();for(long i=0;i<rounds;i++,k++){word=2*k+1;while(word!=2*k+2){if(mode)_mm_pause();}}r[b]=(now()-t0)/rounds;}
 pthread_join(t,0);qsort(r,21,sizeof r[0],cmp);printf("cpus %d,%d mode %d: median %.0f ns per round trip (min %.0f max %.0f)\n",cpus[0],cpus[1],mode,r[10],r[0],r[20]);}
