/* Races a path call's check: a second thread flips one path argument between DIR/a (the
   name the policy permits) and DIR/s (a name it does not). DIR/a is arranged so that the
   call fails there (missing, or already existing for calls that create), DIR/s so that it
   succeeds: a success is an escape, the call having acted on DIR/s.
   usage: path_race FAMILY DIR ROUNDS   (ROUNDS 0: each variant once on DIR/a, no thread)
   Prints "escapes N denied D total T" (denied: refused with EPERM/EACCES by a check).
   Natively each escape is undone (the secret restored) so that the next one can happen. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/xattr.h>
#include <unistd.h>
#include <utime.h>

static char a[300], s[300], src[300], dst[300], a2[300], s2[300];
static char shared[300];
static atomic_int stop, flips;
static const char *family;

static void *flip(void *arg) {
    const char *from = arg;  /* the allowed name, and its forbidden twin */
    const char *to = from == a ? s : s2;
    while (!atomic_load(&stop)) {
        strcpy(shared, to);
        __asm__ volatile("" ::: "memory");  /* no store may be dropped or merged */
        for (volatile int i = 0; i < 500; i++) {}
        strcpy(shared, from);
        __asm__ volatile("" ::: "memory");
        for (volatile int i = 0; i < 500; i++) {}
        atomic_fetch_add(&flips, 1);
    }
    return NULL;
}

/* one attempt, variant v; returns the call's result (0 or more: success) */
static long attempt(int v, const char *p) {
    struct stat st; char buf[64]; struct timeval tv[2] = {{1, 0}, {1, 0}};
    struct timespec ts[2] = {{1, 0}, {1, 0}};
    if (!strcmp(family, "stat")) {
        struct statx sx;
        switch (v % 4) {
        case 0: return stat(p, &st);
        case 1: return lstat(p, &st);
        case 2: return fstatat(AT_FDCWD, p, &st, 0);
        default: return statx(AT_FDCWD, p, 0, STATX_BASIC_STATS, &sx);
        }
    }
    if (!strcmp(family, "readlink"))
        return v % 2 ? readlinkat(AT_FDCWD, p, buf, sizeof buf) : readlink(p, buf, sizeof buf);
    if (!strcmp(family, "access")) {
        switch (v % 3) {
        case 0: return access(p, F_OK);
        case 1: return faccessat(AT_FDCWD, p, F_OK, 0);
        default: return syscall(SYS_faccessat2, AT_FDCWD, p, F_OK, AT_EACCESS);
        }
    }
    if (!strcmp(family, "xattr")) {
        struct { unsigned long long value; unsigned size, flags; } xa = {(unsigned long long)buf, sizeof buf, 0};
        struct { unsigned long long value; unsigned size, flags; } xs = {(unsigned long long)"x", 1, 0};
        switch (v % 9) {
        case 6: return syscall(464 /* getxattrat */, AT_FDCWD, p, 0, "user.k", &xa, sizeof xa);
        case 7: return syscall(465 /* listxattrat */, AT_FDCWD, p, 0, buf, sizeof buf);
        case 8: return syscall(463 /* setxattrat */, AT_FDCWD, p, 0, "user.k", &xs, sizeof xs);
        case 0: return getxattr(p, "user.k", buf, sizeof buf);
        case 1: return lgetxattr(p, "user.k", buf, sizeof buf);
        case 2: return listxattr(p, buf, sizeof buf);
        case 3: return llistxattr(p, buf, sizeof buf);
        case 4: return setxattr(p, "user.k", "x", 1, 0);
        default: return lsetxattr(p, "user.k", "x", 1, 0);
        }
    }
    if (!strcmp(family, "unlink")) return v % 2 ? unlinkat(AT_FDCWD, p, 0) : unlink(p);
    if (!strcmp(family, "rmdir")) return v % 2 ? unlinkat(AT_FDCWD, p, AT_REMOVEDIR) : rmdir(p);
    if (!strcmp(family, "mkdir")) return v % 2 ? mkdirat(AT_FDCWD, p, 0700) : mkdir(p, 0700);
    if (!strcmp(family, "mknod")) return v % 2 ? mknodat(AT_FDCWD, p, S_IFIFO | 0600, 0) : mknod(p, S_IFIFO | 0600, 0);
    if (!strcmp(family, "symlink")) return v % 2 ? symlinkat("x", AT_FDCWD, p) : symlink("x", p);
    if (!strcmp(family, "rename")) {  /* even: the old name flips; odd: the new name flips */
        const char *old = v % 2 ? src : p, *new = v % 2 ? p : dst;
        switch (v % 6 / 2) {
        case 0: return rename(old, new);
        case 1: return renameat(AT_FDCWD, old, AT_FDCWD, new);
        default: return syscall(SYS_renameat2, AT_FDCWD, old, AT_FDCWD, new, 1 /* RENAME_NOREPLACE */);
        }
    }
    if (!strcmp(family, "link")) {
        const char *old = v % 2 ? src : p, *new = v % 2 ? p : dst;
        return v % 4 / 2 ? linkat(AT_FDCWD, old, AT_FDCWD, new, 0) : link(old, new);
    }
    if (!strcmp(family, "chmod")) {
        switch (v % 3) {
        case 0: return chmod(p, 0644);
        case 1: return fchmodat(AT_FDCWD, p, 0644, 0);
        default: return syscall(452 /* fchmodat2 */, AT_FDCWD, p, 0644, 0);
        }
    }
    if (!strcmp(family, "chown")) {
        switch (v % 3) {
        case 0: return chown(p, -1, -1);
        case 1: return lchown(p, -1, -1);
        default: return fchownat(AT_FDCWD, p, -1, -1, 0);
        }
    }
    if (!strcmp(family, "truncate")) return truncate(p, 7);
    if (!strcmp(family, "utimes")) {
        struct utimbuf ub = {1, 1};
        switch (v % 4) {
        case 0: return utime(p, &ub);
        case 1: return utimes(p, tv);
        case 2: return utimensat(AT_FDCWD, p, ts, 0);
        default: return syscall(SYS_futimesat, AT_FDCWD, p, tv);
        }
    }
    fprintf(stderr, "unknown family %s\n", family);
    exit(2);
}

/* Natively, put the secret back the way the harness made it. */
static void undo(int v) {
    if (!strcmp(family, "unlink") || !strcmp(family, "truncate")) { close(open(s, O_CREAT | O_WRONLY, 0644)); }
    else if (!strcmp(family, "rmdir")) mkdir(s, 0755);
    else if (!strcmp(family, "mkdir")) rmdir(s);
    else if (!strcmp(family, "mknod") || !strcmp(family, "symlink")) unlink(s);
    else if (!strcmp(family, "rename")) { if (v % 2) rename(s2, src); else rename(dst, s); }
    else if (!strcmp(family, "link")) unlink(v % 2 ? s2 : dst);
}

static int variants(void) {
    if (!strcmp(family, "stat") || !strcmp(family, "utimes")) return 4;
    if (!strcmp(family, "access") || !strcmp(family, "chmod") || !strcmp(family, "chown")) return 3;
    if (!strcmp(family, "rename")) return 6;
    if (!strcmp(family, "xattr")) return 9;
    if (!strcmp(family, "link")) return 4;
    return 2;
}

int main(int argc, char **argv) {
    if (argc < 4) { fprintf(stderr, "usage: path_race FAMILY DIR ROUNDS\n"); return 2; }
    family = argv[1];
    long rounds = atol(argv[3]);
    snprintf(a, sizeof a, "%s/a", argv[2]); snprintf(s, sizeof s, "%s/s", argv[2]);
    snprintf(src, sizeof src, "%s/src", argv[2]); snprintf(dst, sizeof dst, "%s/dst", argv[2]);
    snprintf(a2, sizeof a2, "%s/a2", argv[2]); snprintf(s2, sizeof s2, "%s/s2", argv[2]);
    long escapes = 0, denied = 0, total = 0;
    int n = variants();
    int two = !strcmp(family, "rename") || !strcmp(family, "link");
    if (rounds == 0) {  /* learning: every variant once on the allowed names */
        for (int v = 0; v < n; v++) attempt(v, two && v % 2 ? a2 : a);
        printf("escapes 0 denied 0 total 0\n");
        return 0;
    }
    for (int side = 0; side < (two ? 2 : 1); side++) {
        pthread_t t;
        const char *from = side ? a2 : a;
        strcpy(shared, from);
        atomic_store(&stop, 0);
        atomic_store(&flips, 0);
        pthread_create(&t, NULL, flip, (void *)from);
        while (atomic_load(&flips) < 10) {}  /* the swapping has begun */
        for (long i = 0; i < rounds / (two ? 2 : 1); i++) {
            int v = (int)(i % (n / (two ? 2 : 1))) * (two ? 2 : 1) + side;
            errno = 0;
            long r = attempt(v, shared);
            total++;
            if (r >= 0) { escapes++; undo(v); }
            else if (errno == EPERM || errno == EACCES) denied++;
        }
        atomic_store(&stop, 1);
        pthread_join(t, NULL);
    }
    printf("escapes %ld denied %ld total %ld\n", escapes, denied, total);
    return 0;
}
