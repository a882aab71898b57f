/* N iterations of lseek on a descriptor the program holds: one notified call per
   iteration when lseek is routed to the supervisor (a call on a held descriptor, as
   most of what tar routes). Reports the loop's own time on stderr ("loop: S s"). */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}
int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 100000;
    int fd = open(argc > 2 ? argv[2] : "/etc/hostname", O_RDONLY);
    if (fd < 0) { perror("open"); return 1; }
    double start = now();
    for (long i = 0; i < n; i++) {
        if (lseek(fd, 0, SEEK_SET) < 0) { perror("lseek"); return 1; }
    }
    fprintf(stderr, "loop: %.6f s\n", now() - start);
    return 0;
}
