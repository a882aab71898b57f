/* fuse_mapped VECTOR FILE: map FILE (one page, never read by this program) and make a
   system call whose argument points into the mapping, so that whoever reads it (the
   kernel natively, systrace under it) faults the page in through FILE's file system.
   Prints "VECTOR RESULT ERRNO" once the call returns. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc != 3) { fprintf(stderr, "usage: fuse_mapped VECTOR FILE\n"); return 2; }
    int fd = open(argv[2], O_RDONLY);
    if (fd < 0) { perror(argv[2]); return 3; }
    char *page = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 0);
    if (page == MAP_FAILED) { perror("mmap"); return 3; }
    const char *vector = argv[1];
    long result = -1;
    errno = 0;
    if (!strcmp(vector, "open")) {
        result = openat(AT_FDCWD, page, O_RDONLY);
    } else if (!strcmp(vector, "stat")) {
        struct stat st;
        result = stat(page, &st);
    } else if (!strcmp(vector, "execve")) {
        char *args[] = { "x", NULL };
        result = execve(page, args, args + 1);
    } else if (!strcmp(vector, "openat2")) {
        result = syscall(SYS_openat2, AT_FDCWD, "/etc/hostname", page, 24);
    } else if (!strcmp(vector, "connect")) {
        int s = socket(AF_UNIX, SOCK_STREAM, 0);
        result = connect(s, (struct sockaddr *)page, 110);
    } else if (!strcmp(vector, "sendto")) {
        int s = socket(AF_INET, SOCK_DGRAM, 0);
        result = sendto(s, "x", 1, 0, (struct sockaddr *)page, sizeof(struct sockaddr_in));
    } else if (!strcmp(vector, "sendmsg")) {
        int s = socket(AF_INET, SOCK_DGRAM, 0);
        struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons(9), .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        struct iovec iov = { page, 16 };
        struct msghdr msg = { .msg_name = &to, .msg_namelen = sizeof to, .msg_iov = &iov, .msg_iovlen = 1 };
        result = sendmsg(s, &msg, 0);
    } else {
        fprintf(stderr, "unknown vector %s\n", vector);
        return 2;
    }
    printf("%s %ld %s\n", vector, result, result < 0 ? strerrorname_np(errno) : "0");
    return 0;
}
