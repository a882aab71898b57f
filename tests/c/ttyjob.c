/* A foreground job that reads the terminal while another of its threads makes a call
 * systrace asks about: a thread blocks in read(0); once it is in the read (its
 * /proc/self/task/TID/syscall says read), the main thread opens /etc/hostname and prints
 * "opened ok" (or "opened ERRNO"); the reader prints "line:WHAT IT READ".
 * `ttyjob join-parent` first joins its parent's process group (the terminal's foreground
 * group: systrace's job; getpgid of systrace answers as for no process, SECURITY.md), `ttyjob join-session`
 * the session leader's (an interactive shell's), and makes it the terminal's foreground
 * group (SIGTTOU ignored, as a shell does); it prints "joined" (or "join ERRNO"). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static volatile pid_t reader_tid;

static void *reader(void *unused) {
    (void)unused;
    char line[256];
    reader_tid = (pid_t)syscall(SYS_gettid);
    ssize_t n = read(0, line, sizeof line - 1);
    if (n < 0) {
        printf("line error %d\n", errno);
    } else {
        line[n] = 0;
        line[strcspn(line, "\r\n")] = 0;
        printf("line:%s\n", line);
    }
    fflush(stdout);
    return NULL;
}

static int in_read(void) {
    char path[64], buf[64] = "";
    snprintf(path, sizeof path, "/proc/self/task/%d/syscall", (int)reader_tid);
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    return n > 1 && buf[0] == '0' && buf[1] == ' ';
}

int main(int argc, char **argv) {
    if (argc > 1) {
        pid_t group = !strcmp(argv[1], "join-parent") ? tcgetpgrp(0) : getsid(0);
        signal(SIGTTOU, SIG_IGN);
        if (setpgid(0, group) || tcsetpgrp(0, group)) {
            printf("join %d\n", errno);
            return 1;
        }
        printf("joined\n");
        fflush(stdout);
    }
    pthread_t thread;
    pthread_create(&thread, NULL, reader, NULL);
    while (!reader_tid || !in_read())
        ; /* until the reader waits in its read of the terminal */
    int fd = open("/etc/hostname", O_RDONLY);
    if (fd < 0)
        printf("opened %d\n", errno);
    else
        printf("opened ok\n");
    fflush(stdout);
    pthread_join(thread, NULL);
    return 0;
}
