/* The floor of an emulated open on this machine: a C supervisor that makes the same
   system calls systrace makes for one open decided on its path (receive, liveness,
   /proc/TID/exe, the path from the tracee's memory, its root, the one-call symlink
   check, ID_VALID, /proc/TID/status, openat2, the check of what was opened, ADDFD, the
   answer), with no decision logic at all, against a child looping on openat. Prints
   "emulated open floor: N us" per open (and the loop without any of that: "CONTINUE
   floor: N us"). The emulated open includes the ADDFD wake-up hint systrace makes
   (affinity narrowed and restored: 3 calls); "emulate-nohint" leaves it out.
   "emulate-fewest" makes only the calls no supervisor of this design can do without
   (bench/bench.py's floor model: a lower bound): not the poll for more, the
   /proc/TID/exe and /proc/TID/status reads (systrace caches them) or the separate
   symlink check (the open itself resolves without symlinks): receive, liveness, the path,
   the root, ID_VALID, openat2, the check of what was opened, the hint, ADDFD, close, the
   answer.
   usage: emulated_open_floor [N [continue|emulate|emulate-nohint|emulate-fewest]] */
#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/openat2.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <sched.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define IOCTL_NOTIF_SET_FLAGS _IOW(0x21, 4, __u64)
#define FD_SYNC_WAKE_UP 1

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static double run(int n, int emulate, int hint, int fewest) {
    int report[2], pipefd[2];
    if (pipe(report) || pipe(pipefd)) return -1;
    pid_t child = fork();
    if (child == 0) {
        struct sock_filter f[] = {
            BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
            BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_openat, 0, 1),
            BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_USER_NOTIF),
            BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW)};
        struct sock_fprog program = {4, f};
        prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
        int fd = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER, &program);
        write(pipefd[1], &fd, sizeof fd);
        double start = now();
        for (int i = 0; i < n; i++) {
            int x = openat(AT_FDCWD, "/etc/hostname", O_RDONLY);
            if (x < 0) _exit(1);
            close(x);
        }
        double per_call = (now() - start) / n * 1e6;
        write(report[1], &per_call, sizeof per_call);
        _exit(0);
    }
    int theirs;
    if (read(pipefd[0], &theirs, sizeof theirs) != sizeof theirs) return -1;
    int pidfd = syscall(SYS_pidfd_open, child, 0);
    int listener = syscall(SYS_pidfd_getfd, pidfd, theirs, 0);
    if (listener < 0) { perror("pidfd_getfd"); return -1; }
    ioctl(listener, IOCTL_NOTIF_SET_FLAGS, FD_SYNC_WAKE_UP);
    char path[64], buf[4096], page[4096];
    snprintf(path, sizeof path, "/proc/%d/status", child);
    int status_fd = open(path, O_RDONLY | O_CLOEXEC);
    struct pollfd pfd = {listener, POLLIN, 0};
    struct seccomp_notif req;
    struct seccomp_notif_resp resp;
    while (poll(&pfd, 1, -1) > 0 && (pfd.revents & POLLIN)) {
        memset(&req, 0, sizeof req);
        if (ioctl(listener, SECCOMP_IOCTL_NOTIF_RECV, &req) < 0) break;
        memset(&resp, 0, sizeof resp);
        resp.id = req.id;
        if (!emulate) {
            resp.flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
            ioctl(listener, SECCOMP_IOCTL_NOTIF_SEND, &resp);
            continue;
        }
        struct pollfd more = {listener, POLLIN, 0};
        if (!fewest) poll(&more, 1, 0);
        syscall(SYS_pidfd_send_signal, pidfd, 0, NULL, 0);
        snprintf(path, sizeof path, "/proc/%d/exe", req.pid);
        if (!fewest) readlink(path, buf, sizeof buf);
        struct iovec local = {page, 4096 - (req.data.args[1] % 4096)};
        struct iovec remote = {(void *)req.data.args[1], local.iov_len};
        process_vm_readv(req.pid, &local, 1, &remote, 1, 0);
        snprintf(path, sizeof path, "/proc/%d/root", req.pid);
        readlink(path, buf, sizeof buf);
        struct open_how check = {.flags = O_PATH | O_CLOEXEC, .resolve = RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS};
        if (!fewest) close(syscall(SYS_openat2, AT_FDCWD, "/etc/hostname", &check, sizeof check));
        ioctl(listener, SECCOMP_IOCTL_NOTIF_ID_VALID, &req.id);
        if (!fewest) pread(status_fd, buf, sizeof buf, 0);
        struct open_how how = {.flags = O_RDONLY | O_CLOEXEC, .resolve = RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS};
        int opened = syscall(SYS_openat2, AT_FDCWD, "/etc/hostname", &how, sizeof how);
        snprintf(path, sizeof path, "/proc/self/fd/%d", opened);
        readlink(path, buf, sizeof buf);
        cpu_set_t allowed, here;
        if (hint) {
            sched_getaffinity(req.pid, sizeof allowed, &allowed);
            CPU_ZERO(&here);
            CPU_SET(sched_getcpu(), &here);
            sched_setaffinity(req.pid, sizeof here, &here);
        }
        struct seccomp_notif_addfd addfd = {.id = req.id, .srcfd = opened};
        int installed = ioctl(listener, SECCOMP_IOCTL_NOTIF_ADDFD, &addfd);
        close(opened);
        if (hint) sched_setaffinity(req.pid, sizeof allowed, &allowed);
        resp.val = installed;
        ioctl(listener, SECCOMP_IOCTL_NOTIF_SEND, &resp);
    }
    double per_call = -1;
    read(report[0], &per_call, sizeof per_call);
    waitpid(child, NULL, 0);
    return per_call;
}

int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 20000;
    const char *only = argc > 2 ? argv[2] : "";  /* "continue" or "emulate": one loop (CPU time per call) */
    int hint = strcmp(only, "emulate-nohint") != 0;
    if (!strcmp(only, "emulate-fewest")) {
        printf("emulated open floor, fewest calls: %.2f us\n", run(n, 1, 1, 1));
        return 0;
    }
    if (strcmp(only, "emulate") && hint) printf("CONTINUE floor: %.2f us\n", run(n, 0, 0, 0));
    if (strcmp(only, "continue")) printf("emulated open floor%s: %.2f us\n", hint ? "" : " (no hint)", run(n, 1, hint, 0));
    return 0;
}
