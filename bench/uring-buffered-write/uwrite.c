// Probe used by bench/uring-buffered-write.sh (session 24, h148): N small pwrite(2)s against N IORING_OP_WRITEs of the
// same size to a regular file, one io_uring_enter each; CPU per write over every thread (io-wq workers included),
// how many completed inside the submitting call, and the threads the process has afterwards.
// usage: uwrite FILE [N]
#define _GNU_SOURCE
#include <linux/io_uring.h>
#include <sys/syscall.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <dirent.h>
static int setup(unsigned e, struct io_uring_params *p){return syscall(__NR_io_uring_setup,e,p);}
static int enter(int fd,unsigned s,unsigned m,unsigned f){return syscall(__NR_io_uring_enter,fd,s,m,f,NULL,0);}
static double now(){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
static double cpu(){struct rusage r;getrusage(RUSAGE_SELF,&r);return r.ru_utime.tv_sec+r.ru_utime.tv_usec*1e-6+r.ru_stime.tv_sec+r.ru_stime.tv_usec*1e-6;}
static int nthreads(){int n=0;DIR*d=opendir("/proc/self/task");struct dirent*e;while((e=readdir(d)))if(e->d_name[0]!='.')n++;closedir(d);return n;}
int main(int argc,char**argv){
  int N=argc>2?atoi(argv[2]):20000; const char*path=argv[1];
  int f=open(path,O_WRONLY|O_CREAT|O_TRUNC,0644);
  char buf[64];memset(buf,'x',sizeof buf);buf[62]='\r';buf[63]='\n';
  double t0=now(),c0=cpu();
  for(int i=0;i<N;i++) pwrite(f,buf,64,(off_t)i*64);
  double t1=now(),c1=cpu();
  printf("pwrite: %.2f us wall, %.2f us cpu per write\n",(t1-t0)/N*1e6,(c1-c0)/N*1e6);
  struct io_uring_params p;memset(&p,0,sizeof p);
  int r=setup(8,&p); if(r<0){perror("setup");return 1;}
  unsigned char*sq=mmap(0,p.sq_off.array+p.sq_entries*4,PROT_READ|PROT_WRITE,MAP_SHARED|MAP_POPULATE,r,IORING_OFF_SQ_RING);
  unsigned char*cq=mmap(0,p.cq_off.cqes+p.cq_entries*sizeof(struct io_uring_cqe),PROT_READ|PROT_WRITE,MAP_SHARED|MAP_POPULATE,r,IORING_OFF_CQ_RING);
  struct io_uring_sqe*sqes=mmap(0,p.sq_entries*sizeof(struct io_uring_sqe),PROT_READ|PROT_WRITE,MAP_SHARED|MAP_POPULATE,r,IORING_OFF_SQES);
  unsigned*sqtail=(unsigned*)(sq+p.sq_off.tail),*sqarr=(unsigned*)(sq+p.sq_off.array),sqmask=*(unsigned*)(sq+p.sq_off.ring_mask);
  unsigned*cqhead=(unsigned*)(cq+p.cq_off.head),*cqtail=(unsigned*)(cq+p.cq_off.tail),cqmask=*(unsigned*)(cq+p.cq_off.ring_mask);
  struct io_uring_cqe*cqes=(void*)(cq+p.cq_off.cqes);
  int inl=0;
  t0=now();c0=cpu();
  for(int i=0;i<N;i++){
    unsigned t=*sqtail; struct io_uring_sqe*s=&sqes[t&sqmask]; memset(s,0,sizeof*s);
    s->opcode=IORING_OP_WRITE;s->fd=f;s->addr=(unsigned long)buf;s->len=64;s->off=(unsigned long)(N+i)*64;s->user_data=i;
    sqarr[t&sqmask]=t&sqmask; __atomic_store_n(sqtail,t+1,__ATOMIC_RELEASE);
    enter(r,1,0,0);
    if(__atomic_load_n(cqtail,__ATOMIC_ACQUIRE)!=*cqhead) inl++;
    else enter(r,0,1,IORING_ENTER_GETEVENTS);
    struct io_uring_cqe*c=&cqes[*cqhead&cqmask]; if(c->res!=64){printf("res %d\n",c->res);}
    __atomic_store_n(cqhead,*cqhead+1,__ATOMIC_RELEASE);
  }
  t1=now();c1=cpu();
  printf("uring write: %.2f us wall, %.2f us cpu (process incl. io-wq) per write, inline %d/%d, threads now %d\n",(t1-t0)/N*1e6,(c1-c0)/N*1e6,inl,N,nthreads());
  DIR*d=opendir("/proc/self/task");struct dirent*e;while((e=readdir(d)))if(e->d_name[0]!='.'){char pth[128],nm[64]={0};snprintf(pth,sizeof pth,"/proc/self/task/%s/comm",e->d_name);FILE*fp=fopen(pth,"r");fgets(nm,64,fp);fclose(fp);printf("  task %s %s",e->d_name,nm);}
  return 0;
}
