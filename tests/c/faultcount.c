/* Open argv[2] (default /etc/hostname) argv[1] times; print each result: "3 ok" or
   "4 EACCES". Then call the never-failing calls 10,000 times and count failures. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 10;
    const char *path = argc > 2 ? argv[2] : "/etc/hostname";
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (int i = 1; i <= n; i++) {
        int fd = open(path, O_RDONLY);
        if (fd < 0) printf("%d %s\n", i, strerrorname_np(errno));
        else { printf("%d ok\n", i); close(fd); }
    }
    long failed = 0;
    for (int i = 0; i < 2500; i++) {
        failed += syscall(SYS_getpid) < 0;
        failed += syscall(SYS_gettid) < 0;
        failed += syscall(SYS_umask, 022) < 0;
        failed += syscall(SYS_getuid) < 0;
    }
    printf("never-fail failures: %ld\n", failed);
    return 0;
}
