/* Routes by which the kernel sends a descriptor owner's signal other than SIGIO on
   readable data: sigio_routes VECTOR PGID (0: the caller's own group, which under
   systrace is systrace's). The owner is the process group PGID and the signal SIGKILL
   (F_SETSIG), so a delivery kills the whole group:
   dnotify  F_NOTIFY on a directory, then a file created in it;
   lease    F_SETLEASE on a file, then a child's open for writing breaks the lease.
   Both signals are sent by the call that makes the event, before it returns. Prints
   "VECTOR ok" once the event was made (the caller looks at who died), or "VECTOR ERRNONAME". */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static int fail(const char *v) { printf("%s %s\n", v, strerrorname_np(errno)); return 0; }

int main(int argc, char **argv) {
    if (argc != 3) return 2;
    const char *v = argv[1];
    pid_t group = atoi(argv[2]) ? atoi(argv[2]) : getpgrp();
    signal(SIGKILL, SIG_DFL);
    char dir[] = "/tmp/sigio-routes-XXXXXX";
    if (!mkdtemp(dir)) return fail(v);
    char file[64];
    snprintf(file, sizeof file, "%s/f", dir);
    int rc = -1;
    if (!strcmp(v, "dnotify")) {
        int fd = open(dir, O_RDONLY | O_DIRECTORY);
        if (fd < 0 || fcntl(fd, F_SETSIG, SIGKILL) < 0 || fcntl(fd, F_SETOWN, -group) < 0
            || fcntl(fd, F_NOTIFY, DN_CREATE | DN_MULTISHOT) < 0) { fail(v); goto out; }
        int made = open(file, O_CREAT | O_WRONLY, 0600);
        if (made < 0) { fail(v); goto out; }
        close(made);
        rc = 0;
    } else if (!strcmp(v, "lease")) {
        int made = open(file, O_CREAT | O_WRONLY, 0600);
        if (made >= 0) close(made);
        int fd = open(file, O_RDONLY);
        if (fd < 0 || fcntl(fd, F_SETSIG, SIGKILL) < 0 || fcntl(fd, F_SETOWN, -group) < 0
            || fcntl(fd, F_SETLEASE, F_RDLCK) < 0) { fail(v); goto out; }
        pid_t child = fork();
        if (child == 0) { int w = open(file, O_WRONLY | O_NONBLOCK); _exit(w < 0 && errno == EWOULDBLOCK ? 0 : 1); }
        int status;
        waitpid(child, &status, 0);  /* its O_NONBLOCK open broke the lease: the signal is sent */
        rc = 0;
    }
    if (rc == 0) printf("%s ok\n", v);
    fflush(stdout);
out:
    unlink(file);
    rmdir(dir);
    return 0;
}
