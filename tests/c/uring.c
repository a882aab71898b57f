/* io_uring_setup: an io_uring could open files with no system call seccomp sees. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
int main(void) {
    unsigned char params[120] = {0};
    long fd = syscall(425 /* io_uring_setup */, 8, params);
    if (fd < 0) { printf("io_uring_setup: %s\n", strerror(errno)); return 1; }
    printf("io_uring_setup: fd %ld\n", fd);
    return 0;
}
