/* The C floor of a whole workload: PROGRAM run under systrace's own filter for it (the
   BPF program `systrace -a` installs for this command and policy directory, dumped by
   bench/workload_floors.py), served by a C supervisor with no logic that carries each
   routed call out the way systrace must, with fewer system calls than systrace makes:

   open, openat (emulate-open): wait, receive, liveness (pidfd signal 0), the path from
     the tracee's memory, the tracee's root (readlink /proc/TID/root), ID_VALID, the open
     (a relative path through /proc/TID/cwd or /proc/TID/fd/DIRFD: one call), the check
     of what was opened (readlink /proc/self/fd/N), ADDFD with SECCOMP_ADDFD_FLAG_SEND
     (installed and answered in one call), close: 10 calls;
   newfstatat, statx on a descriptor ("" and AT_EMPTY_PATH: emulate-fstat): wait, receive,
     liveness, the path (""), the descriptor (pidfd_getfd), the stat, close, ID_VALID, the
     result written back, the answer: 10 calls;
   stat, lstat, newfstatat, statx, access, faccessat, faccessat2, readlink, readlinkat on a
     path (emulate-path): wait, receive, liveness, the path, the root, ID_VALID, the call
     (one, through /proc/TID/cwd or /proc/TID/fd/DIRFD when relative), the result written
     back, the answer: 9 calls;
   any other routed call: continued (wait, receive, the answer), the cheapest of all.

   No policy is read, nothing is decided, checked against mounts or logged: a lower bound
   for any supervisor of this design on this workload, with the workload's own cache and
   scheduling effects (which the per-kind loop floors leave out).
   At exit it prints to stderr "workload floor: N routed (open A, fstat B, path C,
   continue D)" and exits with PROGRAM's status.
   usage: workload_floor FILTER_FILE PROGRAM [ARGS...]   (PROGRAM: an absolute path) */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#define IOCTL_NOTIF_SET_FLAGS _IOW(0x21, 4, __u64)
#ifndef SECCOMP_ADDFD_FLAG_SEND
#define SECCOMP_ADDFD_FLAG_SEND (1UL << 1)
#endif

static int listener;
static long routed, opens, fstats, paths, continued;

static void answer(__u64 id, long val, int error, __u32 flags) {
    struct seccomp_notif_resp resp = {.id = id, .val = val, .error = error, .flags = flags};
    ioctl(listener, SECCOMP_IOCTL_NOTIF_SEND, &resp);
}

/* pidfds of the tracee processes, by pid (a dead one's is replaced when its signal fails) */
#define SLOTS 4096
static int pidfds[SLOTS];
static pid_t pidfd_pids[SLOTS];

static int pidfd_of(pid_t pid) {
    int slot = pid % SLOTS;
    if (pidfd_pids[slot] == pid && syscall(SYS_pidfd_send_signal, pidfds[slot], 0, NULL, 0) == 0)
        return pidfds[slot];
    if (pidfd_pids[slot]) close(pidfds[slot]);
    pidfd_pids[slot] = 0;
    int fd = syscall(SYS_pidfd_open, pid, 0);  /* (a thread other than the leader: -1) */
    if (fd < 0) return -1;
    pidfds[slot] = fd;
    pidfd_pids[slot] = pid;
    return fd;
}

/* The tracee's path as one the supervisor can use: absolute as is, relative through its
   cwd or its directory descriptor's magic link. */
static void place(char *out, size_t size, pid_t pid, int dirfd, const char *path) {
    if (path[0] == '/')
        snprintf(out, size, "%s", path);
    else if (dirfd == AT_FDCWD)
        snprintf(out, size, "/proc/%d/cwd/%s", pid, path);
    else
        snprintf(out, size, "/proc/%d/fd/%d/%s", pid, dirfd, path);
}

static int read_path(pid_t pid, unsigned long address, char *page) {
    struct iovec local = {page, 4096 - address % 4096}, remote = {(void *)address, local.iov_len};
    ssize_t got = process_vm_readv(pid, &local, 1, &remote, 1, 0);
    if (got <= 0 || !memchr(page, 0, got)) {  /* (a path across a page boundary: a second read) */
        struct iovec rest = {page, PATH_MAX}, theirs = {(void *)address, PATH_MAX};
        got = process_vm_readv(pid, &rest, 1, &theirs, 1, 0);
        if (got <= 0 || !memchr(page, 0, got)) return -EFAULT;
    }
    return 0;
}

static void write_back(pid_t pid, unsigned long address, const void *data, size_t size, __u64 id, long val) {
    struct iovec out = {(void *)data, size}, theirs = {(void *)address, size};
    if (process_vm_writev(pid, &out, 1, &theirs, 1, 0) != (ssize_t)size) answer(id, 0, -EFAULT, 0);
    else answer(id, val, 0, 0);
}

static void serve(struct seccomp_notif *req) {
    int nr = req->data.nr;
    unsigned long *a = (unsigned long *)req->data.args;
    pid_t pid = req->pid;
    char page[PATH_MAX + 1], where[PATH_MAX + 64], buf[PATH_MAX], link[64];
    int dirfd = AT_FDCWD;
    unsigned long path = 0;
    switch (nr) {
    case SYS_open: case SYS_stat: case SYS_lstat: case SYS_access: case SYS_readlink:
        path = a[0]; break;
    case SYS_openat: case SYS_newfstatat: case SYS_statx: case SYS_faccessat: case SYS_faccessat2:
    case SYS_readlinkat:
        dirfd = (int)a[0]; path = a[1]; break;
    default:
        continued++;
        answer(req->id, 0, 0, SECCOMP_USER_NOTIF_FLAG_CONTINUE);
        return;
    }
    int pidfd = pidfd_of(pid);  /* with the liveness check */
    int error = read_path(pid, path, page);
    if (error) { answer(req->id, 0, error, 0); return; }
    int empty = page[0] == 0;
    unsigned flags = nr == SYS_newfstatat ? (unsigned)a[3] : nr == SYS_statx ? (unsigned)a[2] : 0;
    if (empty && (flags & AT_EMPTY_PATH) && (nr == SYS_newfstatat || nr == SYS_statx)) {
        fstats++;
        char result[256];
        long r;
        int fd = pidfd >= 0 && dirfd >= 0 ? syscall(SYS_pidfd_getfd, pidfd, dirfd, 0) : -1;
        if (fd >= 0) {
            r = nr == SYS_newfstatat ? syscall(SYS_newfstatat, fd, "", result, AT_EMPTY_PATH | (flags & 0x6000))
                                     : syscall(SYS_statx, fd, "", AT_EMPTY_PATH | (flags & 0x6000), (unsigned)a[3], result);
            if (r < 0) r = -errno;
            close(fd);
        } else {  /* a thread other than the leader, or the cwd: through the magic link */
            if (dirfd == AT_FDCWD) snprintf(where, sizeof where, "/proc/%d/cwd", pid);
            else snprintf(where, sizeof where, "/proc/%d/fd/%d", pid, dirfd);
            r = nr == SYS_newfstatat ? syscall(SYS_newfstatat, AT_FDCWD, where, result, 0)
                                     : syscall(SYS_statx, AT_FDCWD, where, 0, (unsigned)a[3], result);
            if (r < 0) r = errno == ENOENT ? -EBADF : -errno;
        }
        if (ioctl(listener, SECCOMP_IOCTL_NOTIF_ID_VALID, &req->id) < 0) return;
        if (r < 0) { answer(req->id, 0, (int)r, 0); return; }
        write_back(pid, nr == SYS_newfstatat ? a[2] : a[4], result, nr == SYS_newfstatat ? 144 : 256, req->id, 0);
        return;
    }
    snprintf(link, sizeof link, "/proc/%d/root", pid);
    readlink(link, buf, sizeof buf);
    if (ioctl(listener, SECCOMP_IOCTL_NOTIF_ID_VALID, &req->id) < 0) return;
    if (empty) { answer(req->id, 0, -ENOENT, 0); return; }
    place(where, sizeof where, pid, dirfd, page);
    if (nr == SYS_open || nr == SYS_openat) {
        opens++;
        int oflags = nr == SYS_open ? (int)a[1] : (int)a[2];
        int mode = nr == SYS_open ? (int)a[2] : (int)a[3];
        int opened = open(where, oflags | O_CLOEXEC, mode);
        if (opened < 0) { answer(req->id, 0, -errno, 0); return; }
        snprintf(link, sizeof link, "/proc/self/fd/%d", opened);
        readlink(link, buf, sizeof buf);
        struct seccomp_notif_addfd addfd = {.id = req->id, .srcfd = opened, .flags = SECCOMP_ADDFD_FLAG_SEND,
                                            .newfd_flags = oflags & O_CLOEXEC};
        if (ioctl(listener, SECCOMP_IOCTL_NOTIF_ADDFD, &addfd) < 0 && errno != ENOENT) answer(req->id, 0, -errno, 0);
        close(opened);
        return;
    }
    paths++;
    long r;
    if (nr == SYS_stat || nr == SYS_lstat || nr == SYS_newfstatat) {
        struct stat st;
        int at = nr == SYS_lstat ? AT_SYMLINK_NOFOLLOW : nr == SYS_newfstatat ? (int)(flags & ~AT_EMPTY_PATH) : 0;
        r = fstatat(AT_FDCWD, where, &st, at) < 0 ? -errno : 0;
        if (r < 0) answer(req->id, 0, (int)r, 0);
        else write_back(pid, nr == SYS_newfstatat ? a[2] : a[1], &st, sizeof st, req->id, 0);
    } else if (nr == SYS_statx) {
        char result[256];
        r = syscall(SYS_statx, AT_FDCWD, where, flags & ~AT_EMPTY_PATH, (unsigned)a[3], result) < 0 ? -errno : 0;
        if (r < 0) answer(req->id, 0, (int)r, 0);
        else write_back(pid, a[4], result, sizeof result, req->id, 0);
    } else if (nr == SYS_access || nr == SYS_faccessat || nr == SYS_faccessat2) {
        int mode = nr == SYS_access ? (int)a[1] : (int)a[2];
        int at = nr == SYS_faccessat2 ? (int)a[3] : 0;
        r = syscall(SYS_faccessat2, AT_FDCWD, where, mode, at);
        answer(req->id, 0, r < 0 ? -errno : 0, 0);
    } else {  /* readlink, readlinkat */
        unsigned long out = nr == SYS_readlink ? a[1] : a[2];
        size_t size = nr == SYS_readlink ? a[2] : a[3];
        ssize_t got = readlink(where, buf, size < sizeof buf ? size : sizeof buf);
        if (got < 0) answer(req->id, 0, -errno, 0);
        else write_back(pid, out, buf, got, req->id, got);
    }
}

int main(int argc, char **argv) {
    if (argc < 3 || argv[2][0] != '/') {
        fprintf(stderr, "usage: workload_floor FILTER_FILE /PROGRAM [ARGS...]\n");
        return 2;
    }
    static struct sock_filter program[4096];
    FILE *file = fopen(argv[1], "rb");
    if (!file) { perror(argv[1]); return 2; }
    size_t count = fread(program, sizeof program[0], 4096, file);
    fclose(file);
    if (count == 0) { fprintf(stderr, "%s: no BPF program\n", argv[1]); return 2; }
    int report[2], go[2];
    if (pipe(report) || pipe(go)) return 2;
    pid_t child = fork();
    if (child == 0) {
        struct sock_fprog fprog = {(unsigned short)count, program};
        char byte;
        prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
        int fd = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER, &fprog);
        if (fd < 0) { perror("seccomp"); _exit(127); }
        if (write(report[1], &fd, sizeof fd) != sizeof fd || read(go[0], &byte, 1) != 1) _exit(127);
        close(fd);
        execv(argv[2], argv + 2);
        _exit(127);
    }
    int theirs;
    if (read(report[0], &theirs, sizeof theirs) != sizeof theirs) return 2;
    int pidfd = syscall(SYS_pidfd_open, child, 0);
    listener = syscall(SYS_pidfd_getfd, pidfd, theirs, 0);
    if (listener < 0) { perror("pidfd_getfd"); return 2; }
    ioctl(listener, IOCTL_NOTIF_SET_FLAGS, 1);  /* SYNC_WAKE_UP, as systrace */
    if (write(go[1], "x", 1) != 1) return 2;
    close(go[1]);
    struct pollfd pfd = {listener, POLLIN, 0};
    struct seccomp_notif req;
    while (poll(&pfd, 1, -1) > 0 && (pfd.revents & POLLIN)) {
        memset(&req, 0, sizeof req);
        if (ioctl(listener, SECCOMP_IOCTL_NOTIF_RECV, &req) < 0) continue;
        routed++;
        serve(&req);
    }
    int status;
    waitpid(child, &status, 0);
    fprintf(stderr, "workload floor: %ld routed (open %ld, fstat %ld, path %ld, continue %ld)\n",
            routed, opens, fstats, paths, continued);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
