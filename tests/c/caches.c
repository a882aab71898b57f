/* What the supervisor caches per thread changes only through calls the thread makes
   (README "Caches"); each mode changes it, then opens FILE, printing "open N: ok" or
   "open N: ERRNO" around the change.
     caches setuid UID FILE        open, setresuid(UID) (raw: this thread only), open
     caches thread-setuid UID FILE a thread does setresuid(UID) and opens; then main opens
     caches thread-exec FILE PROG ARG...
                                   open, then a second thread execs PROG (a non-leader
                                   exec) while the leader keeps opening FILE
     caches unshare mnt|user FILE  open, unshare(CLONE_NEWNS or CLONE_NEWUSER), open
     caches capset FILE            open, drop CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH from
                                   the effective set (capset), open
     caches setfsuid UID FILE      open, setfsuid(UID), open */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <linux/capability.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static const char *file;
static uid_t target;
static char **exec_argv;

static void try_open(int n) {
    int fd = open(file, O_RDONLY);
    if (fd < 0) printf("open %d: %s\n", n, strerrorname_np(errno));
    else { printf("open %d: ok\n", n); close(fd); }
    fflush(stdout);
}

static void *setuid_thread(void *unused) {
    (void)unused;
    if (syscall(SYS_setresuid, target, target, target) != 0) { perror("setresuid"); exit(2); }
    try_open(2);
    return NULL;
}

static void *exec_thread(void *unused) {
    (void)unused;
    execv(exec_argv[0], exec_argv);
    perror("execv");
    exit(2);
}

int main(int argc, char **argv) {
    if (argc < 3) { fprintf(stderr, "usage: caches MODE ARG... FILE\n"); return 2; }
    const char *mode = argv[1];
    if (!strcmp(mode, "setuid") || !strcmp(mode, "thread-setuid")) {
        target = (uid_t)atoi(argv[2]);
        file = argv[3];
        try_open(1);
        if (!strcmp(mode, "setuid")) {
            if (syscall(SYS_setresuid, target, target, target) != 0) { perror("setresuid"); return 2; }
            try_open(2);
        } else {
            pthread_t thread;
            pthread_create(&thread, NULL, setuid_thread, NULL);
            pthread_join(thread, NULL);
            try_open(3);  /* the main thread kept its credentials */
        }
        return 0;
    }
    if (!strcmp(mode, "capset")) {
        file = argv[2];
        try_open(1);
        struct __user_cap_header_struct header = {_LINUX_CAPABILITY_VERSION_3, 0};
        struct __user_cap_data_struct data[2];
        if (syscall(SYS_capget, &header, data) != 0) { perror("capget"); return 2; }
        data[0].effective &= ~((1u << CAP_DAC_OVERRIDE) | (1u << CAP_DAC_READ_SEARCH));
        if (syscall(SYS_capset, &header, data) != 0) { perror("capset"); return 2; }
        try_open(2);
        return 0;
    }
    if (!strcmp(mode, "setfsuid")) {
        file = argv[3];
        try_open(1);
        syscall(SYS_setfsuid, (unsigned)atoi(argv[2]));  /* returns the old fsuid */
        try_open(2);
        return 0;
    }
    if (!strcmp(mode, "unshare")) {
        file = argv[3];
        try_open(1);
        if (unshare(!strcmp(argv[2], "mnt") ? CLONE_NEWNS : CLONE_NEWUSER) != 0) { perror("unshare"); return 3; }
        try_open(2);
        return 0;
    }
    if (!strcmp(mode, "thread-exec")) {
        file = argv[2];
        exec_argv = argv + 3;
        try_open(1);
        pthread_t thread;
        pthread_create(&thread, NULL, exec_thread, NULL);
        for (;;) {  /* until the exec kills this thread */
            int fd = open(file, O_RDONLY);
            if (fd >= 0) close(fd);
        }
    }
    fprintf(stderr, "unknown mode %s\n", mode);
    return 2;
}
