/* The group forms of getpriority, setpriority and ioprio_set from a PID namespace of the
   caller's own (unshare(CLONE_NEWPID), with CLONE_NEWUSER as the user): `who` 0 is the
   caller's process group, whose members the kernel walks whatever namespace they are in,
   systrace's among them (it shares the command's group).
   argv[1]: "root" or "user"; argv[2] "native": first fork a victim into the group, as
   systrace stands. Prints the victim's pid (native), then "ready", waits for a line, makes
   the three calls from pid 1 of the new namespace, prints their results, waits for a
   line again (the caller reads the victim's state meanwhile). The caller itself runs at
   nice 10, so a better nice read by group is another process's. */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static void result(const char *name, long value, int error) {
    if (value < 0) printf("%s=%s ", name, strerrorname_np(error));
    else printf("%s=%ld ", name, value);
}

int main(int argc, char **argv) {
    char line[16];
    pid_t victim = -1;
    if (argc > 2 && strcmp(argv[2], "native") == 0) {
        victim = fork();
        if (victim == 0) { pause(); return 0; }
        printf("%d\n", victim);
    }
    if (nice(10) < 0 && errno) return 1;
    int flags = CLONE_NEWPID | (strcmp(argv[1], "user") == 0 ? CLONE_NEWUSER : 0);
    if (unshare(flags) != 0) { printf("unshare %s\n", strerrorname_np(errno)); return 1; }
    printf("ready\n");
    fflush(stdout);
    if (!fgets(line, sizeof line, stdin)) return 1;
    pid_t child = fork();
    if (child == 0) {
        errno = 0;
        long get = syscall(SYS_getpriority, PRIO_PGRP, 0);
        result("get", get, errno);
        errno = 0;
        long set = syscall(SYS_setpriority, PRIO_PGRP, 0, 19);
        result("set", set, errno);
        errno = 0;
        long io = syscall(SYS_ioprio_set, 2 /* IOPRIO_WHO_PGRP */, 0, 3 << 13 /* the idle class */);
        result("io", io, errno);
        printf("pid=%d\n", getpid());
        return 0;
    }
    waitpid(child, NULL, 0);
    fflush(stdout);
    if (!fgets(line, sizeof line, stdin)) return 1;
    if (victim > 0) { kill(victim, SIGKILL); waitpid(victim, NULL, 0); }
    return 0;
}
