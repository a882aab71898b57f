/* Two getcwd calls and a read of a file: used to show that a failing decider denies
   the call (fail closed) while the program and the supervisor go on. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
int main(void) {
    char buf[256];
    for (int i = 0; i < 2; i++) {
        long r = syscall(SYS_getcwd, buf, sizeof buf);
        printf("getcwd %d: %s\n", i, r < 0 ? strerror(errno) : "ok");
    }
    int fd = open("/etc/hostname", O_RDONLY);
    printf("open: %s\n", fd < 0 ? strerror(errno) : "ok");
    return 0;
}
