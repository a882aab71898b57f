/* Forks a grandchild that outlives its parent. The grandchild maps argv[1] (shared,
   no syscall needed to write it), says "ready <child pid> <grandchild pid>" on stdout,
   then opens a file in a loop until an open fails; it records that errno in the map
   and exits. Used to show what happens to the tree when the supervisor is killed. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>
int main(int argc, char **argv) {
    int fd = open(argv[1], O_RDWR);
    char *map = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (map == MAP_FAILED) { perror("mmap"); return 1; }
    pid_t child = getpid();
    pid_t pid = fork();
    if (pid == 0) {
        char line[64];
        int len = snprintf(line, sizeof line, "ready %d %d\n", (int)child, (int)getpid());
        write(1, line, len);
        for (;;) {
            long r = syscall(SYS_openat, AT_FDCWD, "/etc/hostname", O_RDONLY);
            if (r < 0) { snprintf(map, 64, "errno %d\n", errno); _exit(0); }
            syscall(SYS_close, r);
        }
    }
    for (;;) pause();
}
