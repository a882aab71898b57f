/* Write a /proc/sys entry of a namespace of the caller's own: ns_sysctl KIND VALUE, KIND
   "net" (net/ipv4/tcp_fin_timeout, after unshare(CLONE_NEWNET)) or "ipc" (kernel/msgmax,
   after unshare(CLONE_NEWIPC)); as a user, a user namespace of its own first. Natively
   the value lands in the new namespace only, never the host's. Prints "wrote VALUE" and
   what the entry reads back in the new namespace, or "STEP ERRNONAME". */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv) {
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
