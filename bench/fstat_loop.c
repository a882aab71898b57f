/* N iterations of fstat on a descriptor the program holds: glibc makes it
   newfstatat(fd, "", &st, AT_EMPTY_PATH), the descriptor form of a path call, routed to
   the supervisor when the policy permits it by a rule (the base's `fd match "*"`), as
   two of every three calls tar routes. Reports the loop's own time on stderr. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
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
    struct stat st;
    double start = now();
    for (long i = 0; i < n; i++) {
        if (fstat(fd, &st) < 0) { perror("fstat"); return 1; }
    }
    fprintf(stderr, "loop: %.6f s\n", now() - start);
    return 0;
}
