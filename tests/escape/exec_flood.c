/* exec_flood N PROGRAM: N children each exec PROGRAM (one that pauses, making no call, so
   whatever systrace keeps for a permitted exec stays until it is killed). Each child holds
   the write end of one shared close-on-exec pipe: an exec that works closes it, one that
   fails writes a byte first. Prints "children N, execs failed F", then kills them. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc != 3) return 2;
    int n = atoi(argv[1]), ends[2];
    pid_t *children = calloc(n, sizeof *children);
    if (pipe2(ends, O_CLOEXEC)) return 1;
    for (int i = 0; i < n; i++) {
        children[i] = fork();
        if (children[i] == 0) {
            close(ends[0]);
            execl(argv[2], argv[2], (char *)0);
            (void)!write(ends[1], "x", 1);
            _exit(127);
        }
    }
    close(ends[1]);
    int failed = 0;
    char byte;
    while (read(ends[0], &byte, 1) == 1) failed++;  /* EOF: every child exec'd or failed */
    printf("children %d, execs failed %d\n", n, failed);
    fflush(stdout);
    for (int i = 0; i < n; i++) kill(children[i], SIGKILL);
    for (int i = 0; i < n; i++) waitpid(children[i], NULL, 0);
    return 0;
}
