/* Write a /proc/sys entry of a namespace of the caller's own: ns_sysctl KIND VALUE, KIND
   "net" (net/ipv4/tcp_fin_timeout, after unshare(CLONE_NEWNET)) or "ipc" (kernel/msgmax,
   after unshare(CLONE_NEWIPC)); as a user, a user namespace of its own first. Natively
   the value lands in the new namespace only, never the host's. Prints "wrote VALUE" and
   what the entry reads back in the new namespace, or "STEP ERRNONAME". ns_sysctl
   sysvipc: after unshare(CLONE_NEWIPC), count the lines of /proc/sysvipc/shm (natively
   1, the header: the new namespace has no segment) and print "lines N". */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc == 2 && !strcmp(argv[1], "sysvipc")) {
        if (unshare(CLONE_NEWIPC | (geteuid() != 0 ? CLONE_NEWUSER : 0)) < 0) { printf("unshare %s\n", strerrorname_np(errno)); return 1; }
        int fd = open("/proc/sysvipc/shm", O_RDONLY);
        if (fd < 0) { printf("open %s\n", strerrorname_np(errno)); return 1; }
        char all[65536];
        ssize_t got = read(fd, all, sizeof all);
        int lines = 0;
        for (ssize_t i = 0; i < got; i++) lines += all[i] == '\n';
        printf("lines %d\n", lines);
        return 0;
    }
    if (argc != 3) return 2;
    int net = !strcmp(argv[1], "net");
    const char *path = net ? "/proc/sys/net/ipv4/tcp_fin_timeout" : "/proc/sys/kernel/msgmax";
    int flags = net ? CLONE_NEWNET : CLONE_NEWIPC;
    if (geteuid() != 0) flags |= CLONE_NEWUSER;
    if (unshare(flags) < 0) { printf("unshare %s\n", strerrorname_np(errno)); return 1; }
    int fd = open(path, O_WRONLY);
    if (fd < 0) { printf("open %s\n", strerrorname_np(errno)); return 1; }
    if (write(fd, argv[2], strlen(argv[2])) < 0) { printf("write %s\n", strerrorname_np(errno)); return 1; }
    close(fd);
    char back[32] = {0};
    fd = open(path, O_RDONLY);
    if (fd < 0 || read(fd, back, sizeof back - 1) < 0) { printf("read %s\n", strerrorname_np(errno)); return 1; }
    back[strcspn(back, "\n")] = 0;
    printf("wrote %s, reads %s\n", argv[2], back);
    return 0;
}
