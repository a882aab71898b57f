/* The launch both C floor supervisors of any program make (continue_floor.c,
   kind_floor.c): PROGRAM forked under a filter that routes the one system call `nr` to a
   listener, the listener taken from the child (pidfd_getfd) with SYNC_WAKE_UP set as
   systrace sets it, and only then the exec. Returns the listener (-1: it could not be
   taken); *child and *pidfd are the child's. */
#ifndef FLOOR_LAUNCH_H
#define FLOOR_LAUNCH_H
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#define IOCTL_NOTIF_SET_FLAGS _IOW(0x21, 4, __u64)

static int launch_routing(int nr, char **argv, pid_t *child, int *pidfd) {
    int report[2], go[2];
    if (pipe(report) || pipe(go)) return -1;
    *child = fork();
    if (*child == 0) {
        struct sock_filter f[] = {
            BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
            BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, nr, 0, 1),
            BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_USER_NOTIF),
            BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW)};
        struct sock_fprog program = {4, f};
        char byte;
        prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
        int fd = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER, &program);
        if (write(report[1], &fd, sizeof fd) != sizeof fd || read(go[0], &byte, 1) != 1) _exit(127);
        execv(argv[0], argv);
        _exit(127);
    }
    int theirs;
    if (read(report[0], &theirs, sizeof theirs) != sizeof theirs) return -1;
    *pidfd = syscall(SYS_pidfd_open, *child, 0);
    int listener = syscall(SYS_pidfd_getfd, *pidfd, theirs, 0);
    if (listener < 0) { perror("pidfd_getfd"); return -1; }
    ioctl(listener, IOCTL_NOTIF_SET_FLAGS, 1);  /* SYNC_WAKE_UP, as systrace */
    if (write(go[1], "x", 1) != 1) return -1;
    return listener;
}
#endif
