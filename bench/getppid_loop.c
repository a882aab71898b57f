/* N getppid calls: decided in the kernel by the filter, never notified. Reports the
   loop's own time on stderr ("loop: S s"), so the benchmark compares the loop without
   anyone's start-up. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}
int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 1000000;
    double start = now();
    for (long i = 0; i < n; i++) syscall(SYS_getppid);
    fprintf(stderr, "loop: %.6f s\n", now() - start);
    return 0;
}
