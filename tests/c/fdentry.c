/* The calls that act on a path without following its last component, each made with a
 * raw system call on the caller's own /proc/self/fd/N of a pipe (N shifted by argv[1]
 * dup()s first): one line "name=result" per call, the result 0/OK or the errno's name. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

static void show(const char *name, long result) {
    if (result < 0)
        printf("%s=%s\n", name, strerrorname_np(errno));
    else
        printf("%s=ok\n", name);
}

int main(int argc, char **argv) {
    for (int i = argc > 1 ? atoi(argv[1]) : 0; i > 0; i--)
        dup(0);
    int fds[2];
    if (pipe(fds) != 0)
        return 1;
    char path[64], buf[256];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fds[0]);
    struct stat st;
    char statx_buf[256];
    struct { unsigned int bytes; int type; unsigned char handle[128]; } handle = {128, 0, {0}};
    int mount_id;
    struct timespec times[2] = {{0, 0}, {0, 0}};
    show("lstat", syscall(SYS_lstat, path, &st));
    show("readlink", syscall(SYS_readlink, path, buf, sizeof buf));
    show("readlinkat", syscall(SYS_readlinkat, AT_FDCWD, path, buf, sizeof buf));
    show("newfstatat", syscall(SYS_newfstatat, AT_FDCWD, path, &st, AT_SYMLINK_NOFOLLOW));
    show("statx", syscall(SYS_statx, AT_FDCWD, path, AT_SYMLINK_NOFOLLOW, 0x7ff, statx_buf));
    show("faccessat2", syscall(SYS_faccessat2, AT_FDCWD, path, R_OK, AT_SYMLINK_NOFOLLOW));
    show("lchown", syscall(SYS_lchown, path, -1, -1));
    show("fchownat", syscall(SYS_fchownat, AT_FDCWD, path, -1, -1, AT_SYMLINK_NOFOLLOW));
    show("utimensat", syscall(SYS_utimensat, AT_FDCWD, path, times, AT_SYMLINK_NOFOLLOW));
    show("lgetxattr", syscall(SYS_lgetxattr, path, "user.x", buf, sizeof buf));
    show("llistxattr", syscall(SYS_llistxattr, path, buf, sizeof buf));
    show("name_to_handle_at", syscall(SYS_name_to_handle_at, AT_FDCWD, path, &handle, &mount_id, 0));
    show("unlink", syscall(SYS_unlink, path));
    show("rmdir", syscall(SYS_rmdir, path));
    show("rename", syscall(SYS_rename, path, path));
    show("open_nofollow", syscall(SYS_openat, AT_FDCWD, path, O_RDONLY | O_NOFOLLOW));
    return 0;
}
