/* The C floor of a CONTINUE for any program: a filter routing one system call (by
   number), and a supervisor that receives each notification and continues it, with no
   logic at all. The same program runs under systrace and under bench/continue_floor.py
   (the same loop in Python), so the three differ only in the supervisor.
   usage: continue_floor NR PROGRAM [ARGS...]   (exit status: the program's) */
#define _GNU_SOURCE
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define IOCTL_NOTIF_SET_FLAGS _IOW(0x21, 4, __u64)

int main(int argc, char **argv) {
    if (argc < 3) { fprintf(stderr, "usage: continue_floor NR PROGRAM [ARGS...]\n"); return 2; }
    int nr = atoi(argv[1]), report[2], go[2];
    if (pipe(report) || pipe(go)) return 2;
    pid_t child = fork();
    if (child == 0) {
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
        execv(argv[2], argv + 2);
        _exit(127);
    }
    int theirs;
    if (read(report[0], &theirs, sizeof theirs) != sizeof theirs) return 2;
    int pidfd = syscall(SYS_pidfd_open, child, 0);
    int listener = syscall(SYS_pidfd_getfd, pidfd, theirs, 0);
    if (listener < 0) { perror("pidfd_getfd"); return 2; }
    ioctl(listener, IOCTL_NOTIF_SET_FLAGS, 1);  /* SYNC_WAKE_UP, as systrace */
    if (write(go[1], "x", 1) != 1) return 2;
    struct pollfd pfd = {listener, POLLIN, 0};
    struct seccomp_notif req;
    struct seccomp_notif_resp resp;
    while (poll(&pfd, 1, -1) > 0 && (pfd.revents & POLLIN)) {
        memset(&req, 0, sizeof req);
        if (ioctl(listener, SECCOMP_IOCTL_NOTIF_RECV, &req) < 0) continue;
        memset(&resp, 0, sizeof resp);
        resp.id = req.id;
        resp.flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
        ioctl(listener, SECCOMP_IOCTL_NOTIF_SEND, &resp);
    }
    int status;
    waitpid(child, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
