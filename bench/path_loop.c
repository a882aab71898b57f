/* N calls of one path call family in DIR; prints "us_per_call X". usage: path_loop FAMILY DIR N
   Families that create something undo it in the same round (two calls per round). */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc < 4) { fprintf(stderr, "usage: path_loop FAMILY DIR N\n"); return 2; }
    const char *f = argv[1];
    long n = atol(argv[3]);
    char file[300], other[300], link_[300], dir[300];
    snprintf(file, sizeof file, "%s/file", argv[2]); snprintf(other, sizeof other, "%s/other", argv[2]);
    snprintf(link_, sizeof link_, "%s/link", argv[2]); snprintf(dir, sizeof dir, "%s/d", argv[2]);
    struct stat st; char buf[256]; struct timespec ts[2] = {{1, 0}, {1, 0}}, t0, t1;
    int per_round = 1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (long i = 0; i < n; i++) {
        if (!strcmp(f, "stat")) stat(file, &st);
        else if (!strcmp(f, "access")) access(file, R_OK);
        else if (!strcmp(f, "readlink")) readlink(link_, buf, sizeof buf);
        else if (!strcmp(f, "getxattr")) getxattr(file, "user.k", buf, sizeof buf);
        else if (!strcmp(f, "chmod")) chmod(file, 0644);
        else if (!strcmp(f, "utimensat")) utimensat(AT_FDCWD, file, ts, 0);
        else if (!strcmp(f, "truncate")) truncate(file, 0);
        else if (!strcmp(f, "rename")) { rename(file, other); rename(other, file); per_round = 2; }
        else if (!strcmp(f, "mkdir")) { mkdir(dir, 0700); rmdir(dir); per_round = 2; }
        else if (!strcmp(f, "link")) { link(file, other); unlink(other); per_round = 2; }
        else if (!strcmp(f, "symlink")) { symlink("x", other); unlink(other); per_round = 2; }
        else { fprintf(stderr, "unknown family %s\n", f); return 2; }
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double us = ((t1.tv_sec - t0.tv_sec) * 1e9 + (t1.tv_nsec - t0.tv_nsec)) / 1e3;
    printf("us_per_call %.2f\n", us / (n * per_round));
    return 0;
}
