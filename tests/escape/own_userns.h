/* Enter a user + mount namespace of one's own, root in it mapped to the caller
   (unshare -Urm); enter_own_user_namespace_with: a user namespace and those of `flags`.
   Exits with 2 on failure. */
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void write_file(const char *path, const char *text) {
    int fd = open(path, O_WRONLY);
    if (fd < 0 || write(fd, text, strlen(text)) < 0) { perror(path); exit(2); }
    close(fd);
}

static void enter_own_user_namespace_with(int flags) {
    char map[64];
    uid_t uid = getuid();
    gid_t gid = getgid();
    if (unshare(CLONE_NEWUSER | flags)) { perror("unshare"); exit(2); }
    write_file("/proc/self/setgroups", "deny");
    snprintf(map, sizeof map, "0 %u 1", uid);
    write_file("/proc/self/uid_map", map);
    snprintf(map, sizeof map, "0 %u 1", gid);
    write_file("/proc/self/gid_map", map);
}

static void enter_own_namespaces(void) {
    enter_own_user_namespace_with(CLONE_NEWNS);
}
