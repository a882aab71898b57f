/* N iterations of lstat relative to a directory descriptor, tar's shape for each file:
   fstatat(dirfd, NAME, &st, AT_SYMLINK_NOFOLLOW) (newfstatat), a path call systrace
   carries out on the checked path (kernel/emulate_path.py) under a learned filename rule.
   usage: dirfd_stat_loop N DIR NAME; reports the loop's own time on stderr. */
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
    if (argc != 4) { fprintf(stderr, "usage: dirfd_stat_loop N DIR NAME\n"); return 2; }
    long n = atol(argv[1]);
    int dir = open(argv[2], O_RDONLY | O_DIRECTORY);
    if (dir < 0) { perror("open"); return 1; }
    struct stat st;
    double start = now();
    for (long i = 0; i < n; i++) {
        if (fstatat(dir, argv[3], &st, AT_SYMLINK_NOFOLLOW) < 0) { perror("fstatat"); return 1; }
    }
    fprintf(stderr, "loop: %.6f s\n", now() - start);
    return 0;
}
