/* Races the check of a mount-family call: a second thread flips its path argument
   between DIR/a (the name the policy permits) and DIR/s (a name it does not). DIR/a is
   arranged so that the call fails there, DIR/s so that it succeeds: a success is an
   escape, the call having acted on DIR/s. Natively each escape is undone.
     mount       DIR/a a plain file (ENOTDIR); DIR/s a directory: tmpfs mounted on it
     umount2     DIR/a a plain directory (EINVAL); DIR/s a mount point the harness made
     pivot_root  pivot_root(P, P) in a private mount namespace (made here): DIR/a a plain
                 directory (EINVAL), DIR/s a tmpfs mounted here (a forked child per try:
                 a success moves its root)
     swapon      DIR/a a plain file (EINVAL); DIR/s a swap file (mkswap)
     swapoff     DIR/a a plain file (EINVAL); DIR/s a swap file in use (the harness's)
     acct        DIR/a a directory (EISDIR); DIR/s a regular file
     mount_setattr  (MOUNT_ATTR_RDONLY) DIR/a a plain directory (EINVAL); DIR/s a mount
                 point the harness made (under systrace refused: not carried out)
   usage: mount_race CALL DIR ROUNDS [userns]   (ROUNDS 0: the call once on DIR/a, no thread)
   userns: first enter a user + mount namespace of its own (root mapped to the caller;
   for umount2, DIR/s is then mounted here).
   Prints "escapes N denied D total T" (denied: refused with EPERM/EACCES by a check). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/swap.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "own_userns.h"

static char a[300], s[300], shared[300];
static atomic_int stop;
static const char *call;

static void *flip(void *arg) {
    (void)arg;
    while (!atomic_load(&stop)) {
        strcpy(shared, s);
        __asm__ volatile("" ::: "memory");
        for (volatile int i = 0; i < 500; i++) {}
        strcpy(shared, a);
        __asm__ volatile("" ::: "memory");
        for (volatile int i = 0; i < 500; i++) {}
    }
    return NULL;
}

static long attempt(const char *p) {
    if (!strcmp(call, "mount")) return mount("none", p, "tmpfs", 0, NULL);
    if (!strcmp(call, "umount2")) return umount2(p, 0);
    if (!strcmp(call, "pivot_root")) return syscall(SYS_pivot_root, p, p);
    if (!strcmp(call, "swapon")) return swapon(p, 0);
    if (!strcmp(call, "swapoff")) return swapoff(p);
    if (!strcmp(call, "acct")) return acct(p);
    if (!strcmp(call, "mount_setattr")) {
        struct { unsigned long long set, clr, propagation, userns; } attr = {1 /* MOUNT_ATTR_RDONLY */, 0, 0, 0};
        return syscall(442 /* mount_setattr */, AT_FDCWD, p, 0, &attr, sizeof attr);
    }
    fprintf(stderr, "unknown call %s\n", call);
    exit(2);
}

static void undo(void) {
    if (!strcmp(call, "mount")) umount2(s, MNT_DETACH);
    else if (!strcmp(call, "umount2")) mount("none", s, "tmpfs", 0, NULL);
    else if (!strcmp(call, "swapon")) swapoff(s);
    else if (!strcmp(call, "swapoff")) swapon(s, 0);
    else if (!strcmp(call, "acct")) acct(NULL);
    else if (!strcmp(call, "mount_setattr")) {
        struct { unsigned long long set, clr, propagation, userns; } attr = {0, 1, 0, 0};
        syscall(442, AT_FDCWD, s, 0, &attr, sizeof attr);
    }
}

/* rounds attempts with the flipping thread; counts escapes and denials */
static void race(long rounds, long *escapes, long *denied) {
    pthread_t thread;
    strcpy(shared, a);
    atomic_store(&stop, 0);
    if (rounds) pthread_create(&thread, NULL, flip, NULL);
    for (long i = 0; i < (rounds ? rounds : 1); i++) {
        long r = attempt(shared);
        if (r >= 0) {
            ++*escapes;
            if (!strcmp(call, "pivot_root")) _exit(255);  /* its root moved: nothing more to try */
            undo();
        } else if (errno == EPERM || errno == EACCES) {
            ++*denied;
        }
    }
    atomic_store(&stop, 1);
    if (rounds) pthread_join(thread, NULL);
}

static void own_namespaces(void) {
    enter_own_namespaces();
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL)) { perror("private"); exit(2); }
    if (!strcmp(call, "umount2") && mount("none", s, "tmpfs", 0, NULL)) { perror("setup"); exit(2); }
}

int main(int argc, char **argv) {
    if (argc < 4) { fprintf(stderr, "usage: mount_race CALL DIR ROUNDS\n"); return 2; }
    call = argv[1];
    long rounds = atol(argv[3]), escapes = 0, denied = 0;
    snprintf(a, sizeof a, "%s/a", argv[2]);
    snprintf(s, sizeof s, "%s/s", argv[2]);
    if (argc > 4 && !strcmp(argv[4], "userns")) own_namespaces();
    if (strcmp(call, "pivot_root")) {
        race(rounds, &escapes, &denied);
    } else {  /* children of 100 tries each, each in a mount namespace of its own */
        long per = 100, done = 0;
        do {
            long now = rounds ? (rounds - done < per ? rounds - done : per) : 0;
            pid_t pid = fork();
            if (pid == 0) {
                long e = 0, d = 0;
                if (unshare(CLONE_NEWNS) || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL)
                    || mount("none", s, "tmpfs", 0, NULL)) { perror("setup"); _exit(254); }
                race(now, &e, &d);
                _exit(d > 250 ? 250 : (int)d);
            }
            int status;
            waitpid(pid, &status, 0);
            if (WIFEXITED(status) && WEXITSTATUS(status) == 255 && now) escapes++;
            else if (WIFEXITED(status) && WEXITSTATUS(status) == 254) return 2;
            else if (WIFEXITED(status)) denied += WEXITSTATUS(status);
            done += now ? now : 1;
        } while (done < (rounds ? rounds : 1));
    }
    printf("escapes %ld denied %ld total %ld\n", escapes, denied, rounds);
    return 0;
}
