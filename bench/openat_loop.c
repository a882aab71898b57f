/* N iterations of openat+close on one file: one notified call per iteration when
   openat is routed to the supervisor. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 100000;
    const char *path = argc > 2 ? argv[2] : "/etc/hostname";
    for (long i = 0; i < n; i++) {
        int fd = openat(AT_FDCWD, path, O_RDONLY);
        if (fd < 0) { perror("openat"); return 1; }
        close(fd);
    }
    return 0;
}
