/* openat2 with every RESOLVE_* flag from a chrooted process: one line per case with what
   it opened (the file's first line: "jailed" inside the jail, anything else is the real
   root's), "created", or the error. usage: resolve_chroot JAIL [userns]
   userns: first a user (and mount) namespace of its own (as the unprivileged user: root there), then
   chroot(JAIL), chdir("/"). In JAIL: etc/hostname ("jailed"), dir/, link ->
   /etc/hostname, up -> ../../../../etc/hostname. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "../escape/own_userns.h"

struct how { uint64_t flags, mode, resolve; };

int main(int argc, char **argv) {
    if (argc < 2) { fprintf(stderr, "usage: resolve_chroot JAIL [userns]\n"); return 2; }
    if (argc > 2 && !strcmp(argv[2], "userns"))
        enter_own_namespaces();
    if (chroot(argv[1]) || chdir("/")) { perror("chroot"); return 1; }
    int dir = open("/dir", O_PATH | O_DIRECTORY);
    static const struct { const char *name; uint64_t bits; } flags[] = {
        {"none", 0}, {"no_xdev", 1}, {"no_magiclinks", 2}, {"no_symlinks", 4}, {"beneath", 8}, {"in_root", 0x10},
        {"cached", 0x20}};
    static const char *paths[] = {"/etc/hostname", "etc/hostname", "link", "up", "../etc/hostname",
                                  "/../../etc/hostname", "missing/x", "new"};
    for (size_t f = 0; f < sizeof flags / sizeof flags[0]; f++)
        for (size_t p = 0; p < sizeof paths / sizeof paths[0]; p++)
            for (int from = 0; from < 2; from++) {
                int creating = !strcmp(paths[p], "new");
                struct how how = {(creating ? O_WRONLY | O_CREAT : O_RDONLY) | O_CLOEXEC, creating ? 0644 : 0,
                                  flags[f].bits};
                errno = 0;
                int fd = (int)syscall(SYS_openat2, from ? dir : AT_FDCWD, paths[p], &how, sizeof how);
                printf("%s %s from %s: ", flags[f].name, paths[p], from ? "dir" : "cwd");
                if (fd < 0) { printf("%s\n", strerrorname_np(errno)); continue; }
                if (creating) {
                    printf("created\n");
                    unlinkat(from ? dir : AT_FDCWD, "new", 0);
                } else {
                    char line[64] = {0};
                    ssize_t got = read(fd, line, sizeof line - 1);
                    if (got > 0) line[strcspn(line, "\n")] = 0;
                    printf("%s\n", got > 0 ? line : "read failed");
                }
                close(fd);
            }
    return 0;
}
