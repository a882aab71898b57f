/* Tries to read DIR/secret (which the policy denies) while DIR/allowed is permitted.
   Prints "escapes N" (how many times the secret's content was read) and exits 0.
   Modes:
     path-swap     a second thread flips the path string between allowed and secret
     symlink-swap  a second thread swaps DIR/link between allowed and secret
     dotdot        DIR/sub/../secret and /proc/self/root/DIR/secret
     dirfd         openat() relative to an O_PATH fd of DIR
     opath-reopen  O_PATH on the secret, then reopen through /proc/self/fd
     rename        rename the secret over the allowed name, then open it
     hardlink      hard link to the secret under an allowed name
     userns-bind   unshare a user and mount namespace, bind-mount the secret on allowed
     userns-chroot the same, then bind / on DIR/sub and chroot there (the view of another
                   mount namespace seen through the new root)
     chroot        chroot into DIR, then open the secret by its new name and with ..
     openat2       openat2 on the secret, and RESOLVE_IN_ROOT below an O_PATH fd of DIR
     plain         just open allowed, for learning the policy */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <unistd.h>

static char dir[256], allowed[300], secret[300], link_path[300];
static char shared_path[300];
static atomic_int stop;
static long escapes, denied, total;

static void try_open_at(int dirfd, const char *path, int flags) {
    int fd = openat(dirfd, path, flags);
    total++;
    if (fd < 0) { denied++; return; }
    char buf[16] = {0};
    if (pread(fd, buf, sizeof buf - 1, 0) > 0 && strncmp(buf, "SECRET", 6) == 0) escapes++;
    close(fd);
}

static void try_open(const char *path) { try_open_at(AT_FDCWD, path, O_RDONLY); }

static void *flip_path(void *arg) {
    while (!atomic_load(&stop)) { strcpy(shared_path, secret); strcpy(shared_path, allowed); }
    return arg;
}

static void *flip_link(void *arg) {
    char tmp[320];
    snprintf(tmp, sizeof tmp, "%s/link.tmp", dir);
    while (!atomic_load(&stop)) {
        unlink(tmp); symlink(secret, tmp); rename(tmp, link_path);
        unlink(tmp); symlink(allowed, tmp); rename(tmp, link_path);
    }
    return arg;
}

int main(int argc, char **argv) {
    if (argc < 3) { fprintf(stderr, "usage: escape MODE DIR [ROUNDS]\n"); return 2; }
    const char *mode = argv[1];
    long rounds = argc > 3 ? atol(argv[3]) : 20000;
    snprintf(dir, sizeof dir, "%s", argv[2]);
    snprintf(allowed, sizeof allowed, "%s/allowed", dir);
    snprintf(secret, sizeof secret, "%s/secret", dir);
    snprintf(link_path, sizeof link_path, "%s/link", dir);
    strcpy(shared_path, allowed);
    pthread_t t;
    if (!strcmp(mode, "plain")) {
        try_open(allowed);
    } else if (!strcmp(mode, "path-swap")) {
        pthread_create(&t, NULL, flip_path, NULL);
        for (long i = 0; i < rounds; i++) try_open(shared_path);
        atomic_store(&stop, 1); pthread_join(t, NULL);
    } else if (!strcmp(mode, "symlink-swap")) {
        pthread_create(&t, NULL, flip_link, NULL);
        for (long i = 0; i < rounds; i++) try_open(link_path);
        atomic_store(&stop, 1); pthread_join(t, NULL);
    } else if (!strcmp(mode, "dotdot")) {
        char p[400];
        snprintf(p, sizeof p, "%s/sub/../secret", dir); try_open(p);
        snprintf(p, sizeof p, "/proc/self/root%s/secret", dir); try_open(p);
        snprintf(p, sizeof p, "/proc/thread-self/root%s", secret); try_open(p);
    } else if (!strcmp(mode, "dirfd")) {
        int d = open(dir, O_PATH | O_DIRECTORY);
        try_open_at(d, "secret", O_RDONLY);
        try_open_at(d, "./sub/../secret", O_RDONLY);
    } else if (!strcmp(mode, "opath-reopen")) {
        int p = open(secret, O_PATH);
        char via[64];
        snprintf(via, sizeof via, "/proc/self/fd/%d", p < 0 ? 999 : p);
        try_open(via);
        int a = open(allowed, O_RDONLY);  /* an allowed fd: replace it with the secret */
        snprintf(via, sizeof via, "/dev/fd/%d", a);
        try_open(via);
    } else if (!strcmp(mode, "rename")) {
        rename(secret, allowed);
        try_open(allowed);
    } else if (!strcmp(mode, "userns-bind")) {
        /* a mount namespace of its own, where the secret is bind-mounted on the allowed name */
        if (unshare(CLONE_NEWUSER | CLONE_NEWNS) < 0) perror("unshare");
        if (mount(secret, allowed, NULL, MS_BIND, NULL) < 0) perror("mount");
        try_open(allowed);
    } else if (!strcmp(mode, "userns-chroot")) {
        char sub[320];
        snprintf(sub, sizeof sub, "%s/sub", dir);
        if (unshare(CLONE_NEWUSER | CLONE_NEWNS) < 0) perror("unshare");
        if (mount(secret, allowed, NULL, MS_BIND, NULL) < 0) perror("mount");
        if (mount("/", sub, NULL, MS_BIND | MS_REC, NULL) < 0) perror("mount");
        if (chroot(sub) < 0 || chdir("/") < 0) perror("chroot");
        try_open(allowed);
    } else if (!strcmp(mode, "openat2")) {
        /* openat2 keeps its flags in a struct; RESOLVE_IN_ROOT relative to DIR */
        struct { unsigned long long flags, mode, resolve; } how = {O_RDONLY, 0, 0};
        int fd = syscall(437, AT_FDCWD, secret, &how, sizeof how);
        total++;
        if (fd < 0) denied++; else { char b[8] = {0}; if (pread(fd, b, 6, 0) > 0 && !strncmp(b, "SECRET", 6)) escapes++; close(fd); }
        int d = open(dir, O_PATH | O_DIRECTORY);
        how.resolve = 0x10;  /* RESOLVE_IN_ROOT */
        fd = syscall(437, d, "/secret", &how, sizeof how);
        total++;
        if (fd < 0) denied++; else { char b[8] = {0}; if (pread(fd, b, 6, 0) > 0 && !strncmp(b, "SECRET", 6)) escapes++; close(fd); }
    } else if (!strcmp(mode, "chroot")) {
        /* a new root: the secret under its new name, and .. out of it */
        if (chroot(dir) < 0 || chdir("/") < 0) perror("chroot");
        try_open("/secret");
        try_open("../../../secret");
        try_open("/sub/../secret");
    } else if (!strcmp(mode, "hardlink")) {
        char hl[320];
        snprintf(hl, sizeof hl, "%s/hl", dir);
        link(secret, hl);
        try_open(hl);
    } else {
        fprintf(stderr, "unknown mode %s\n", mode); return 2;
    }
    printf("escapes %ld denied %ld total %ld\n", escapes, denied, total);
    return 0;
}
