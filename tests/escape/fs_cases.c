/* The new mount API's strings: fsopen's file system type and fsconfig's key and value,
   which the kernel reads again from memory when the call is continued. One line per call
   with its result and errno. usage: fs_cases [userns]  (userns: in a user and mount
   namespace of its own first, as the unprivileged user may) */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "own_userns.h"

#define FSOPEN_CLOEXEC 1
#define FSCONFIG_SET_FLAG 0
#define FSCONFIG_SET_STRING 1
#define FSCONFIG_SET_PATH 3
#define FSCONFIG_CMD_CREATE 6

static void report(const char *name, long r) {
    if (r < 0) printf("%s: -1 %s\n", name, strerrorname_np(errno));
    else printf("%s: ok\n", name);
}

int main(int argc, char **argv) {
    if (argc > 1 && !strcmp(argv[1], "userns"))
        enter_own_namespaces();
    errno = 0;
    long fd = syscall(SYS_fsopen, "tmpfs", FSOPEN_CLOEXEC);
    report("fsopen", fd);
    if (fd < 0) return 0;
    report("fsconfig string", syscall(SYS_fsconfig, (int)fd, FSCONFIG_SET_STRING, "mode", "0700", 0));
    report("fsconfig flag", syscall(SYS_fsconfig, (int)fd, FSCONFIG_SET_FLAG, "noswap", NULL, 0));
    report("fsconfig bad key", syscall(SYS_fsconfig, (int)fd, FSCONFIG_SET_STRING, "nokey", "1", 0));
    report("fsconfig flag with a value", syscall(SYS_fsconfig, (int)fd, FSCONFIG_SET_FLAG, "noswap", "x", 0));
    report("fsconfig bad descriptor", syscall(SYS_fsconfig, 999, FSCONFIG_SET_STRING, "mode", "0700", 0));
    report("fsconfig path", syscall(SYS_fsconfig, (int)fd, FSCONFIG_SET_PATH, "source", "/", -100));
    report("fsconfig create", syscall(SYS_fsconfig, (int)fd, FSCONFIG_CMD_CREATE, NULL, NULL, 0));
    return 0;
}
