/* The C floor of one way systrace carries out a routed newfstatat (`--stats`' "carried
   out as"), for any program: a filter routing newfstatat, and a supervisor that makes,
   per call, the fewest system calls a supervisor of this design makes for that kind, with
   no logic at all. Run against bench/fstat_loop.c (emulate-fstat) or bench/path_loop.c's
   stat (emulate-path); the program times its own loop. bench/kind_floor.py is the same
   supervisor in Python.

   emulate-fstat (fstat(fd): newfstatat(fd, "", &st, AT_EMPTY_PATH)): wait, receive, the
     liveness check (pidfd signal 0), the path from the tracee's memory (it must be ""),
     the descriptor (pidfd_getfd), fstat, close, ID_VALID, the stat written back
     (process_vm_writev), the answer: 10 calls.
   emulate-path (stat(ABSOLUTE), or lstat: newfstatat(AT_FDCWD, PATH, &st, FLAGS)): wait,
     receive, liveness, the path from memory, the tracee's root (/proc/TID/root), ID_VALID,
     the parent opened O_PATH without symlinks (openat2), the check of what was opened
     (readlink /proc/self/fd/N), fstatat on it, close, the stat written back, the answer:
     12 calls. A relative or dirfd path adds a readlink (the cwd or the descriptor): left
     out, so that the floor stays a lower bound for every emulated path call.
   Left out of both (systrace makes them, a supervisor of this design need not): the
   FUSE checks (the backing-device directory's fstat, the mount table's poll), the second
   ID_VALID, the poll for more notifications, and the memory helper process.
   usage: kind_floor fstat|path PROGRAM [ARGS...]   (exit status: the program's) */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/filter.h>
#include <linux/openat2.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
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

#include "floor_launch.h"

static void answer(int listener, __u64 id, long val, int error, __u32 flags) {
    struct seccomp_notif_resp resp = {.id = id, .val = val, .error = error, .flags = flags};
    ioctl(listener, SECCOMP_IOCTL_NOTIF_SEND, &resp);
}

int main(int argc, char **argv) {
    if (argc < 3 || (strcmp(argv[1], "fstat") && strcmp(argv[1], "path"))) {
        fprintf(stderr, "usage: kind_floor fstat|path PROGRAM [ARGS...]\n");
        return 2;
    }
    int descriptor_form = !strcmp(argv[1], "fstat");
    pid_t child;
    int pidfd, listener = launch_routing(SYS_newfstatat, argv + 2, &child, &pidfd);
    if (listener < 0) return 2;
    struct pollfd pfd = {listener, POLLIN, 0};
    struct seccomp_notif req;
    char page[4096], buf[PATH_MAX], link[64];
    while (poll(&pfd, 1, -1) > 0 && (pfd.revents & POLLIN)) {
        memset(&req, 0, sizeof req);
        if (ioctl(listener, SECCOMP_IOCTL_NOTIF_RECV, &req) < 0) continue;
        syscall(SYS_pidfd_send_signal, pidfd, 0, NULL, 0);
        struct iovec local = {page, 4096 - (req.data.args[1] % 4096)};
        struct iovec remote = {(void *)req.data.args[1], local.iov_len};
        if (process_vm_readv(req.pid, &local, 1, &remote, 1, 0) < 0 || !memchr(page, 0, local.iov_len)) {
            answer(listener, req.id, 0, -EFAULT, 0);
            continue;
        }
        if ((page[0] == 0) != descriptor_form) {  /* the other form (the loader's fstat...): not measured */
            answer(listener, req.id, 0, 0, SECCOMP_USER_NOTIF_FLAG_CONTINUE);
            continue;
        }
        struct stat st;
        int result;
        if (descriptor_form) {
            int fd = syscall(SYS_pidfd_getfd, pidfd, (int)req.data.args[0], 0);
            result = fstat(fd, &st);
            close(fd);
            if (ioctl(listener, SECCOMP_IOCTL_NOTIF_ID_VALID, &req.id) < 0) continue;
        } else {
            snprintf(link, sizeof link, "/proc/%d/root", req.pid);
            readlink(link, buf, sizeof buf);
            if (ioctl(listener, SECCOMP_IOCTL_NOTIF_ID_VALID, &req.id) < 0) continue;
            char *slash = strrchr(page, '/');  /* (the loop's path is absolute) */
            if (!slash) { answer(listener, req.id, 0, -EINVAL, 0); continue; }
            *slash = 0;
            struct open_how how = {.flags = O_PATH | O_DIRECTORY | O_CLOEXEC,
                                   .resolve = RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS};
            int dir = syscall(SYS_openat2, AT_FDCWD, slash == page ? "/" : page, &how, sizeof how);
            snprintf(link, sizeof link, "/proc/self/fd/%d", dir);
            readlink(link, buf, sizeof buf);
            result = fstatat(dir, slash + 1, &st, AT_SYMLINK_NOFOLLOW);
            close(dir);
        }
        if (result < 0) { answer(listener, req.id, 0, -errno, 0); continue; }
        struct iovec out = {&st, sizeof st}, theirs_st = {(void *)req.data.args[2], sizeof st};
        process_vm_writev(req.pid, &out, 1, &theirs_st, 1, 0);
        answer(listener, req.id, 0, 0, 0);
    }
    int status;
    waitpid(child, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
