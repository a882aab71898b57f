/* Races the check of a call decided on a string that is not a path: a second thread
   flips the string between A-TAG (the name the policy permits) and D-TAG (one it does
   not). An escape is the call having acted on D-TAG:
     memfd_create   the memfd made is named memfd:D-TAG (its /proc/self/fd link)
     mq_open        a queue D-TAG was made (O_CREAT; the descriptor's link names it)
     mq_unlink      the queue D-TAG (made first, with A-TAG) is gone
     sethostname    uname's nodename is D-TAG (in a UTS namespace of its own)
     setdomainname  uname's domainname is D-TAG (likewise)
     add_key        the key made in the process keyring is described D-TAG
     request_key    the key found (both made first, in the process keyring) is D-TAG's
     symlink        the link /tmp/string-race-l-TAG made points at D-TAG
   Natively each escape is undone.
   usage: string_race CALL ROUNDS TAG [own]   (ROUNDS 0: the call once on A-TAG, no thread)
   own: first enter IPC and UTS namespaces of its own (as a user: with a user namespace,
   root in it mapped to the caller). sethostname and setdomainname always do.
   Prints "escapes N denied D total T" (denied: refused with EPERM/EACCES). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "own_userns.h"

static char a[64], d[64], shared[64], link_path[128];
static atomic_int stop;
static const char *call;
static long allowed_key, denied_key;

#define KEY_SPEC_PROCESS_KEYRING (-2)
#define KEYCTL_DESCRIBE 6

static void enter_own(void) {
    int flags = CLONE_NEWIPC | CLONE_NEWUTS;
    if (geteuid() != 0) enter_own_user_namespace_with(flags);
    else if (unshare(flags)) { perror("unshare"); exit(2); }
}

static void *flip(void *arg) {
    (void)arg;
    while (!atomic_load(&stop)) {
        strcpy(shared, d);
        __asm__ volatile("" ::: "memory");
        for (volatile int i = 0; i < 300; i++) {}
        strcpy(shared, a);
        __asm__ volatile("" ::: "memory");
        for (volatile int i = 0; i < 300; i++) {}
    }
    return NULL;
}

static long mq_open_(const char *name, int flags) {
    return syscall(SYS_mq_open, name, flags, 0600, NULL);
}

static long add_key_(const char *description) {
    return syscall(SYS_add_key, "user", description, "x", 1, KEY_SPEC_PROCESS_KEYRING);
}

static int names(int fd, const char *name) {
    char path[64], link[256];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(path, link, sizeof link - 1);
    if (n < 0) { perror("readlink"); exit(2); }
    link[n] = 0;
    return strstr(link, name) != NULL;
}

static int described(long key, const char *name) {
    char text[256];
    long n = syscall(SYS_keyctl, KEYCTL_DESCRIBE, key, text, sizeof text);
    if (n < 0) { perror("keyctl describe"); exit(2); }
    char *last = strrchr(text, ';');
    return last && !strcmp(last + 1, name);
}

static void setup(void) {
    if (!strcmp(call, "mq_unlink")) {
        long fd = mq_open_(d, O_CREAT | O_RDWR);
        if (fd < 0) { perror("mq_open D"); exit(2); }
        close(fd);
    } else if (!strcmp(call, "request_key")) {
        allowed_key = add_key_(a);
        denied_key = add_key_(d);
        if (allowed_key < 0 || denied_key < 0) { perror("add_key"); exit(2); }
    }
}

static void cleanup(void) {
    if (!strcmp(call, "symlink")) unlink(link_path);
    if (!strncmp(call, "mq_", 3)) {
        syscall(SYS_mq_unlink, a);
        syscall(SYS_mq_unlink, d);
    }
}

/* 1: an escape, 0: acted on A-TAG (or failed otherwise), -1: refused */
static int attempt(const char *p) {
    long r;
    int escaped = 0;
    if (!strcmp(call, "memfd_create")) {
        r = memfd_create(p, 0);
        if (r >= 0) { escaped = names(r, d); close(r); }
    } else if (!strcmp(call, "mq_open")) {
        r = mq_open_(p, O_CREAT | O_RDWR);
        if (r >= 0) {
            escaped = names(r, d);
            close(r);
            if (syscall(SYS_mq_unlink, escaped ? d : a)) { perror("mq_unlink"); exit(2); }
        }
    } else if (!strcmp(call, "mq_unlink")) {
        long fd = mq_open_(a, O_CREAT | O_RDWR);
        if (fd < 0) { perror("mq_open A"); exit(2); }
        close(fd);
        r = syscall(SYS_mq_unlink, p);
        fd = mq_open_(d, O_RDWR);
        if (fd < 0 && errno != ENOENT) { perror("mq_open D"); exit(2); }
        if (fd < 0) {
            escaped = 1;
            fd = mq_open_(d, O_CREAT | O_RDWR);
        }
        if (fd >= 0) close(fd);
    } else if (!strcmp(call, "sethostname") || !strcmp(call, "setdomainname")) {
        int host = !strcmp(call, "sethostname");
        r = host ? sethostname(p, strlen(a)) : setdomainname(p, strlen(a));
        if (r == 0) {
            struct utsname u;
            uname(&u);
            escaped = !strcmp(host ? u.nodename : u.domainname, d);
        }
    } else if (!strcmp(call, "add_key")) {
        r = add_key_(p);
        if (r >= 0) {
            escaped = described(r, d);  /* (made again: the same key updated, no quota used) */
        }
    } else if (!strcmp(call, "request_key")) {
        r = syscall(SYS_request_key, "user", p, NULL, 0);
        if (r >= 0) escaped = r == denied_key;
    } else if (!strcmp(call, "symlink")) {
        unlink(link_path);
        r = symlink(p, link_path);
        if (r == 0) {
            char target[64];
            ssize_t n = readlink(link_path, target, sizeof target - 1);
            if (n < 0) { perror("readlink"); exit(2); }
            target[n] = 0;
            escaped = !strcmp(target, d);
        }
    } else {
        fprintf(stderr, "unknown call %s\n", call);
        exit(2);
    }
    if (r < 0) {
        if (errno == EPERM || errno == EACCES) return -1;
        fprintf(stderr, "%s: %s\n", call, strerror(errno));
        exit(3);
    }
    return escaped;
}

int main(int argc, char **argv) {
    if (argc < 4) { fprintf(stderr, "usage: string_race CALL ROUNDS TAG [own]\n"); return 2; }
    call = argv[1];
    int rounds = atoi(argv[2]);
    snprintf(a, sizeof a, "a-%s", argv[3]);
    snprintf(d, sizeof d, "d-%s", argv[3]);
    snprintf(link_path, sizeof link_path, "/tmp/string-race-l-%s", argv[3]);
    if ((argc > 4 && !strcmp(argv[4], "own")) || !strcmp(call, "sethostname") || !strcmp(call, "setdomainname"))
        enter_own();
    setup();
    strcpy(shared, a);
    int escapes = 0, denied = 0;
    if (rounds == 0) {
        int r = attempt(shared);
        cleanup();
        printf("escapes %d denied %d total 1\n", r > 0, r < 0);
        return 0;
    }
    pthread_t thread;
    pthread_create(&thread, NULL, flip, NULL);
    for (int i = 0; i < rounds; i++) {
        int r = attempt(shared);
        escapes += r > 0;
        denied += r < 0;
    }
    atomic_store(&stop, 1);
    pthread_join(thread, NULL);
    cleanup();
    printf("escapes %d denied %d total %d\n", escapes, denied, rounds);
    return 0;
}
