/* pty_ctty [setsid]: open a new pseudo-terminal pair (/dev/ptmx, then its slave without
   O_NOCTTY), then ask the master to send SIGINT to the slave's foreground process group
   (TIOCSIG: a signal the kernel sends, which Landlock does not check). The slave becomes
   the controlling terminal of whoever opens it as a session leader without one. With
   "setsid" the caller first becomes one, in a child. Prints "foreground PGRP" (0: the
   slave is nobody's controlling terminal) before the signal, "survived" after. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc > 1) {
        pid_t child = fork();
        if (child > 0) { int status; waitpid(child, &status, 0); return WIFSIGNALED(status) ? 128 + WTERMSIG(status) : 0; }
        setsid();
    }
    int master = open("/dev/ptmx", O_RDWR | O_NOCTTY);
    if (master < 0 || grantpt(master) < 0 || unlockpt(master) < 0) { printf("ptmx %s\n", strerrorname_np(errno)); return 1; }
    int slave = open(ptsname(master), O_RDWR);  /* no O_NOCTTY: a session leader without one acquires it */
    if (slave < 0) { printf("slave %s\n", strerrorname_np(errno)); return 1; }
    pid_t foreground = 0;
    if (ioctl(master, TIOCGPGRP, &foreground) < 0) foreground = 0;
    printf("foreground %d\n", foreground);
    fflush(stdout);
    ioctl(master, TIOCSIG, SIGINT);
    printf("survived\n");
    return 0;
}
