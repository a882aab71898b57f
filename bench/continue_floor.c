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

#include "floor_launch.h"

int main(int argc, char **argv) {
    if (argc < 3) { fprintf(stderr, "usage: continue_floor NR PROGRAM [ARGS...]\n"); return 2; }
    int nr = atoi(argv[1]);
    pid_t child;
    int pidfd, listener = launch_routing(nr, argv + 2, &child, &pidfd);
    if (listener < 0) return 2;
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
