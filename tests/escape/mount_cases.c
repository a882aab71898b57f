/* Honest uses of the mount-family calls, one line each: "case result errno" (and a
   fact checked after it), to compare natively and under systrace.
   usage: mount_cases DIR [userns]
   DIR holds m/ (a mount point to be), b/marker (a bind source), f (a plain file), sw (a
   swap file, root only), acct (a file), nr/old/ (a new root for pivot_root).
   userns: first enter a user + mount namespace of its own (root mapped to the caller). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/swap.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "own_userns.h"

static char dir[300];

static char *at(const char *name) {
    static char paths[8][400];
    static int next;
    char *p = paths[next++ % 8];
    snprintf(p, 400, "%s/%s", dir, name);
    return p;
}

static void show(const char *name, long r) {
    printf("%s %ld %s\n", name, r < 0 ? -1L : r, r < 0 ? strerrorname_np(errno) : "-");
    fflush(stdout);
}

static void own_namespaces(void) {
    enter_own_namespaces();
    show("private", mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL));
}

static void child_pivot(void) {
    pid_t pid = fork();
    if (pid == 0) {
        if (unshare(CLONE_NEWNS) || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL)) _exit(2);
        show("pivot-not-a-mount", syscall(SYS_pivot_root, at("m"), at("m")));
        show("pivot-bind", mount(at("nr"), at("nr"), NULL, MS_BIND, NULL));  /* nr/old: the harness's */
        show("pivot", syscall(SYS_pivot_root, at("nr"), at("nr/old")));
        _exit(0);
    }
    waitpid(pid, NULL, 0);
}

static void without_sys_admin(void) {
    pid_t pid = fork();
    if (pid == 0) {
        struct { unsigned version; int pid; } header = {0x20080522, 0};
        struct { unsigned effective, permitted, inheritable; } data[2];
        syscall(SYS_capget, &header, data);
        data[0].effective &= ~(1u << 21);  /* CAP_SYS_ADMIN */
        if (syscall(SYS_capset, &header, data)) _exit(2);
        show("mount-without-cap", mount("none", at("m"), "tmpfs", 0, NULL));
        _exit(0);
    }
    waitpid(pid, NULL, 0);
}

int main(int argc, char **argv) {
    struct statvfs vfs;
    struct stat st;
    if (argc < 2) { fprintf(stderr, "usage: mount_cases DIR [userns]\n"); return 2; }
    snprintf(dir, sizeof dir, "%s", argv[1]);
    int userns = argc > 2 && !strcmp(argv[2], "userns");
    if (userns) own_namespaces();

    show("mount-tmpfs-sized", mount("none", at("m"), "tmpfs", 0, "size=1m"));
    if (!userns) show("size", statvfs(at("m"), &vfs) ? -1 : (long)(vfs.f_blocks * vfs.f_frsize));
    show("mount-missing", mount("none", at("missing"), "tmpfs", 0, NULL));
    show("mount-on-a-file", mount("none", at("f"), "tmpfs", 0, NULL));
    show("mount-unknown-type", mount("none", at("b"), "nosuchfs", 0, NULL));
    show("remount-ro", mount(NULL, at("m"), NULL, MS_REMOUNT | MS_RDONLY, NULL));
    if (!userns) show("create-on-ro", open(at("m/x"), O_CREAT | O_WRONLY, 0644));
    show("umount", umount2(at("m"), 0));
    show("umount-not-mounted", umount2(at("m"), 0));
    show("umount-missing", umount2(at("missing"), 0));
    show("umount-bad-flags", umount2(at("m"), 0x100));
    show("bind", mount(at("b"), at("m"), NULL, MS_BIND, NULL));
    if (!userns) {  /* (systrace resolves a path-decided open in its own mount namespace: README) */
        show("bound", stat(at("m/marker"), &st));
        int busy = open(at("m/marker"), O_RDONLY);
        show("umount-busy", umount2(at("m"), 0));
        close(busy);
    }
    show("umount-bind", umount2(at("m"), 0));
    if (chdir(dir)) return 2;
    show("bind-relative", mount("b", "m", NULL, MS_BIND, NULL));
    show("umount-relative", umount2("m", 0));
    show("umount-detach", mount("none", at("m"), "tmpfs", 0, NULL) ? -1 : umount2(at("m"), MNT_DETACH));
    struct { unsigned long long set, clr, propagation, userns; } ro = {1 /* MOUNT_ATTR_RDONLY */, 0, 0, 0};
    show("setattr-mount", mount("none", at("m"), "tmpfs", 0, NULL));
    show("setattr-ro", syscall(442 /* mount_setattr */, AT_FDCWD, at("m"), 0, &ro, sizeof ro));
    if (!userns) show("setattr-created-on-ro", mkdir(at("m/x"), 0755));
    show("setattr-small", syscall(442, AT_FDCWD, at("m"), 0, &ro, 8));
    show("setattr-bad-flags", syscall(442, AT_FDCWD, at("m"), 0x2, &ro, sizeof ro));
    show("setattr-missing", syscall(442, AT_FDCWD, at("missing"), 0, &ro, sizeof ro));
    show("setattr-not-a-mount", syscall(442, AT_FDCWD, at("b"), 0, &ro, sizeof ro));
    show("setattr-umount", umount2(at("m"), 0));
    child_pivot();
    show("swapon-not-swap", swapon(at("f"), 0));
    if (!userns) {
        show("swapon", swapon(at("sw"), 0));
        show("swapon-again", swapon(at("sw"), 0));
        show("swapoff", swapoff(at("sw")));
    }
    show("swapoff-not-on", swapoff(at("sw")));
    show("acct", acct(at("acct")));
    show("acct-off", acct(NULL));
    show("acct-dir", acct(at("m")));
    show("acct-missing", acct(at("missing")));
    show("uselib", syscall(SYS_uselib, at("f")));  /* ENOSYS where the kernel lacks CONFIG_USELIB */
    if (!userns) without_sys_admin();
    return 0;
}
