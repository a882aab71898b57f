/* Opens /proc/PID/FILE for each FILE and reads from it, where PID is another process:
   the harmless variant names one of the run, the attack a process outside it; a learned
   rule that kept no relation (or a pattern on the number) would let the attack through.
     procread child FILE...     a child of ours (forked, waiting on a pipe)
     procread @PIDFILE FILE...  the pid written in PIDFILE (e.g. by a supervised shell)
     procread PID FILE...       that pid
   Prints "procread: N of M" (the files opened and read), then each failure's errno. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: procread child|@PIDFILE|PID FILE...\n");
        return 2;
    }
    int hold[2] = {-1, -1};
    pid_t pid, child = -1;
    if (strcmp(argv[1], "child") == 0) {
        if (pipe(hold) < 0)
            return 2;
        child = fork();
        if (child == 0) {
            char byte;
            close(hold[1]);
            _exit(read(hold[0], &byte, 1) < 0);
        }
        close(hold[0]);
        pid = child;
    } else if (argv[1][0] == '@') {
        FILE *file = fopen(argv[1] + 1, "r");
        if (file == NULL || fscanf(file, "%d", &pid) != 1)
            return 2;
        fclose(file);
    } else {
        pid = atoi(argv[1]);
    }
    int opened = 0;
    char failures[4096] = "";
    for (int i = 2; i < argc; i++) {
        char path[64], buffer[64];
        snprintf(path, sizeof path, "/proc/%d/%s", (int)pid, argv[i]);
        int fd = open(path, O_RDONLY);
        /* mem reads nothing at offset 0 (no mapping there): its open is the reach */
        if (fd >= 0 && (strcmp(argv[i], "mem") == 0 || read(fd, buffer, sizeof buffer) > 0)) {
            opened++;
        } else {
            size_t used = strlen(failures);
            snprintf(failures + used, sizeof failures - used, " %s:%s", argv[i], strerrorname_np(errno));
        }
        if (fd >= 0)
            close(fd);
    }
    printf("procread: %d of %d\n", opened, argc - 2);
    if (failures[0])
        printf("failed:%s\n", failures);
    if (child > 0) {
        close(hold[1]);
        waitpid(child, NULL, 0);
    }
    return 0;
}
