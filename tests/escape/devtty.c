#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <unistd.h>
/* devtty [setsid [mountns]]: with "setsid", a child leaves the session (no controlling
   terminal) and opens /dev/tty: natively ENXIO. With "mountns" it first enters a mount
   namespace of its own (as a user, with a user namespace of its own). */
int main(int argc, char **argv) {
    if (argc > 1) {
        pid_t child = fork();
        if (child > 0) { int st; waitpid(child, &st, 0); return 0; }
        if (setsid() < 0) { printf("setsid %s\n", strerrorname_np(errno)); return 1; }
        if (argc > 2 && unshare(CLONE_NEWNS | (geteuid() ? CLONE_NEWUSER : 0)) < 0) {
            printf("unshare %s\n", strerrorname_np(errno));
            return 1;
        }
    }
    int fd = open("/dev/tty", O_RDWR);
    if (fd < 0) { printf("open %s\n", strerrorname_np(errno)); fflush(stdout); return 0; }
    pid_t sid = -1;
    ioctl(fd, TIOCGSID, &sid);
    printf("open ok: the terminal of session %d (mine: %d)\n", sid, getsid(0));
    fflush(stdout);
    return 0;
}
