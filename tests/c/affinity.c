/* Opens a file N times and checks its own CPU affinity after each open, and in a child
   forked after each 50th: systrace's wake-up hint must never leave a narrowed mask.
   Usage: affinity N [pin]   ("pin": first pin itself to its current CPU)
   Prints "before=B min_after=M child_min=C". */
#define _GNU_SOURCE
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static int cpus(void) {
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) != 0) { perror("sched_getaffinity"); exit(2); }
    return CPU_COUNT(&set);
}

int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 1000;
    if (argc > 2 && strcmp(argv[2], "pin") == 0) {
        cpu_set_t one;
        CPU_ZERO(&one);
        CPU_SET(sched_getcpu(), &one);
        if (sched_setaffinity(0, sizeof one, &one) != 0) { perror("sched_setaffinity"); return 2; }
    }
    int before = cpus(), min_after = before, child_min = before;
    for (int i = 0; i < n; i++) {
        int fd = open("/etc/hostname", O_RDONLY);
        if (fd < 0) { perror("open"); return 1; }
        int now = cpus();
        if (now < min_after) min_after = now;
        if (i % 50 == 0) {
            pid_t pid = fork();
            if (pid == 0) _exit(cpus());
            int status;
            waitpid(pid, &status, 0);
            if (WEXITSTATUS(status) < child_min) child_min = WEXITSTATUS(status);
        }
        close(fd);
    }
    printf("before=%d min_after=%d child_min=%d\n", before, min_after, child_min);
    return 0;
}
