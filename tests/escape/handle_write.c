/* handle_write PATH VALUE: write VALUE to PATH through a file handle: name_to_handle_at
   of PATH, then open_by_handle_at(O_WRONLY) on its mount (the cgroup2 mount, argv[3]), so
   that no path is ever opened for writing. VALUE "PPID" is the caller's parent's pid
   (under systrace: systrace). Prints "write ok" or where it failed, then waits for a line
   on stdin (the caller looks at the cgroups meanwhile). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc < 4) return 2;
    struct file_handle *handle = malloc(sizeof *handle + MAX_HANDLE_SZ);
    handle->handle_bytes = MAX_HANDLE_SZ;
    int mount_id;
    if (name_to_handle_at(AT_FDCWD, argv[1], handle, &mount_id, 0) != 0) {
        printf("name_to_handle_at %s\n", strerrorname_np(errno));
        fflush(stdout);
        getchar();
        return 0;
    }
    int mount_fd = open(argv[3], O_RDONLY | O_DIRECTORY);
    int fd = open_by_handle_at(mount_fd, handle, O_WRONLY);
    if (fd < 0) {
        printf("open_by_handle_at %s\n", strerrorname_np(errno));
        fflush(stdout);
        getchar();
        return 0;
    }
    char value[32];
    snprintf(value, sizeof value, "%s", argv[2]);
    if (strcmp(argv[2], "PPID") == 0) snprintf(value, sizeof value, "%d", getppid());
    ssize_t n = write(fd, value, strlen(value));
    printf("write %s\n", n < 0 ? strerrorname_np(errno) : "ok");
    fflush(stdout);
    getchar();
    return 0;
}
