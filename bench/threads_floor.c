/* The floor of the 16-thread workload (threads_open.c) under an emulated-open supervisor:
   16 tracee threads open and close /etc/hostname N times each, under a filter that
   notifies openat; K C supervisor processes share the one listener (each polls it and
   receives what it can; a RECV that loses the race gets ENOENT) and make, per open, the
   same system calls as emulated_open_floor.c with no decision logic. Prints
   "16 threads, K supervisor(s): S s (U us per open)" for K = 1 and 2, best of 3 runs.
   What no supervisor design on this machine can beat: it bounds the systrace figure. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/openat2.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <pthread.h>
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
#define THREADS 16

static long n;
static int narrow = 1, emulate = 1, minimal = 0;

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static void *work(void *arg) {
    for (long i = 0; i < n; i++) {
        int fd = openat(AT_FDCWD, "/etc/hostname", O_RDONLY);
        if (fd < 0) _exit(1);
        close(fd);
    }
    return arg;
}

static void serve(int listener, pid_t child) {
    char path[64], buf[4096], page[4096];
    int pidfd = syscall(SYS_pidfd_open, child, 0);
    struct pollfd pfd = {listener, POLLIN, 0};
    struct seccomp_notif req;
    struct seccomp_notif_resp resp;
    while (poll(&pfd, 1, -1) > 0 && (pfd.revents & POLLIN)) {
        memset(&req, 0, sizeof req);
        if (ioctl(listener, SECCOMP_IOCTL_NOTIF_RECV, &req) < 0) {
            if (errno == ENOENT || errno == EINTR) continue;  /* another supervisor took it */
            break;
        }
        memset(&resp, 0, sizeof resp);
        resp.id = req.id;
        if (!emulate) {
            resp.flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
            ioctl(listener, SECCOMP_IOCTL_NOTIF_SEND, &resp);
            continue;
        }
        if (minimal) {
            int opened = open("/etc/hostname", O_RDONLY | O_CLOEXEC);
            struct seccomp_notif_addfd addfd = {.id = req.id, .srcfd = opened};
            int installed = ioctl(listener, SECCOMP_IOCTL_NOTIF_ADDFD, &addfd);
            close(opened);
            if (installed < 0) continue;
            resp.val = installed;
            ioctl(listener, SECCOMP_IOCTL_NOTIF_SEND, &resp);
            continue;
        }
        syscall(SYS_pidfd_send_signal, pidfd, 0, NULL, 0);
        snprintf(path, sizeof path, "/proc/%d/exe", req.pid);
        readlink(path, buf, sizeof buf);
        struct iovec local = {page, 4096 - (req.data.args[1] % 4096)};
        struct iovec remote = {(void *)req.data.args[1], local.iov_len};
        process_vm_readv(req.pid, &local, 1, &remote, 1, 0);
        snprintf(path, sizeof path, "/proc/%d/root", req.pid);
        readlink(path, buf, sizeof buf);
        struct open_how check = {.flags = O_PATH | O_CLOEXEC, .resolve = RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS};
        close(syscall(SYS_openat2, AT_FDCWD, "/etc/hostname", &check, sizeof check));
        ioctl(listener, SECCOMP_IOCTL_NOTIF_ID_VALID, &req.id);
        snprintf(path, sizeof path, "/proc/%d/status", req.pid);
        int status_fd = open(path, O_RDONLY | O_CLOEXEC);
        pread(status_fd, buf, sizeof buf, 0);
        close(status_fd);
        struct open_how how = {.flags = O_RDONLY | O_CLOEXEC, .resolve = RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS};
        int opened = syscall(SYS_openat2, AT_FDCWD, "/etc/hostname", &how, sizeof how);
        snprintf(path, sizeof path, "/proc/self/fd/%d", opened);
        readlink(path, buf, sizeof buf);
        cpu_set_t allowed, here;  /* the wake-up hint: ADDFD's round trip on this CPU */
        if (narrow) {
            sched_getaffinity(req.pid, sizeof allowed, &allowed);
            CPU_ZERO(&here);
            CPU_SET(sched_getcpu(), &here);
            sched_setaffinity(req.pid, sizeof here, &here);
        }
        struct seccomp_notif_addfd addfd = {.id = req.id, .srcfd = opened};
        int installed = ioctl(listener, SECCOMP_IOCTL_NOTIF_ADDFD, &addfd);
        close(opened);
        if (narrow) sched_setaffinity(req.pid, sizeof allowed, &allowed);
        if (installed < 0) continue;
        resp.val = installed;
        ioctl(listener, SECCOMP_IOCTL_NOTIF_SEND, &resp);
    }
}

static double run(int supervisors) {
    int pipefd[2];
    if (pipe(pipefd)) return -1;
    double start = now();
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
        write(pipefd[1], &fd, sizeof fd);  /* kept open: the parent takes it with pidfd_getfd */
        pthread_t t[THREADS];
        for (int i = 0; i < THREADS; i++) pthread_create(&t[i], NULL, work, NULL);
        for (int i = 0; i < THREADS; i++) pthread_join(t[i], NULL);
        _exit(0);
    }
    int theirs;
    if (read(pipefd[0], &theirs, sizeof theirs) != sizeof theirs) return -1;
    close(pipefd[0]);
    close(pipefd[1]);
    int pidfd = syscall(SYS_pidfd_open, child, 0);
    int listener = syscall(SYS_pidfd_getfd, pidfd, theirs, 0);
    close(pidfd);
    if (listener < 0) { perror("pidfd_getfd"); return -1; }
    ioctl(listener, IOCTL_NOTIF_SET_FLAGS, FD_SYNC_WAKE_UP);
    pid_t helpers[8];
    for (int i = 1; i < supervisors; i++) {
        helpers[i] = fork();
        if (helpers[i] == 0) { serve(listener, child); _exit(0); }
    }
    serve(listener, child);
    int status;
    waitpid(child, &status, 0);
    double elapsed = now() - start;
    close(listener);
    for (int i = 1; i < supervisors; i++) waitpid(helpers[i], NULL, 0);
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? elapsed : -1;
}

int main(int argc, char **argv) {
    n = argc > 1 ? atol(argv[1]) : 500;
    for (int i = 2; i < argc; i++) {  /* variants, to compare: "no-hint", "continue" */
        if (!strcmp(argv[i], "no-hint")) narrow = 0;
        if (!strcmp(argv[i], "continue")) emulate = 0;
        if (!strcmp(argv[i], "addfd-only")) minimal = 1;  /* open, ADDFD, SEND: nothing else */
    }
    for (int k = 1; k <= 2; k++) {
        double best = 1e9;
        for (int round = 0; round < 3; round++) {
            double s = run(k);
            if (s >= 0 && s < best) best = s;
        }
        printf("16 threads, %d supervisor%s: %.4f s (%.2f us per open)\n", k, k > 1 ? "s" : "", best,
               best / (THREADS * n) * 1e6);
    }
    return 0;
}
