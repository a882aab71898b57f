/* The file status flags an open leaves on its descriptor, for each of a few flag sets
   (F_GETFL, less the O_LARGEFILE the kernel adds): an emulated open must leave exactly the native ones, the
   O_NONBLOCK systrace adds for its own safety cleared, and everything else kept.
   Each set opens argv[1] twice, so the second open is a repeated one (the path cache).
   usage: openflags FILE [FIFO] */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

static void show(const char *what, const char *path, int flags) {
    for (int round = 0; round < 2; round++) {
        int fd = open(path, flags);
        if (fd < 0) {
            perror(what);
            continue;
        }
        printf("%s: %#o\n", what, fcntl(fd, F_GETFL) & ~0100000);
        close(fd);
    }
}

int main(int argc, char **argv) {
    show("rdonly", argv[1], O_RDONLY);
    show("wronly|append", argv[1], O_WRONLY | O_APPEND);
    show("rdwr|append|noatime", argv[1], O_RDWR | O_APPEND | O_NOATIME);
    show("rdonly|nonblock", argv[1], O_RDONLY | O_NONBLOCK);
    show("wronly|async", argv[1], O_WRONLY | O_ASYNC);
    show("rdwr|dsync", argv[1], O_RDWR | O_DSYNC);
    show("rdonly|cloexec", argv[1], O_RDONLY | O_CLOEXEC);
    if (argc > 2)
        show("fifo rdwr", argv[2], O_RDWR);
    return 0;
}
