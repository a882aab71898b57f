/* A command whose background child reads the terminal while its parent makes a call
   systrace asks about. The child reads lines from stdin (the terminal) and prints
   "child got: LINE" until it reads "end"; the parent, once the child is about to read,
   opens argv[1] (the asked call), prints what it read, says "parent waits" on stderr
   and waits for the child. */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv) {
    int ready[2];
    if (argc < 2 || pipe(ready) < 0) return 2;
    pid_t child = fork();
    if (child == 0) {
        char line[256];
        close(ready[0]);
        write(ready[1], "r", 1);
        close(ready[1]);
        for (;;) {
            ssize_t n = read(0, line, sizeof line - 1);
            if (n <= 0) return 1;
            line[n] = 0;
            printf("child got: %s", line);
            fflush(stdout);
            if (strcmp(line, "end\n") == 0) return 0;
        }
    }
    char byte;
    close(ready[1]);
    read(ready[0], &byte, 1);  /* the child is about to read the terminal */
    int fd = open(argv[1], O_RDONLY);
    if (fd < 0) { perror(argv[1]); return 1; }
    char buffer[4096];
    ssize_t n = read(fd, buffer, sizeof buffer);
    if (n > 0) fwrite(buffer, 1, n, stdout);
    fflush(stdout);
    fprintf(stderr, "parent waits\n");
    int status;
    waitpid(child, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 3;
}
