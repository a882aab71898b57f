/* N children each execve a path that a second thread flips between /usr/bin/true (the
   policy permits executing it) and /usr/bin/false. Prints how the children ended:
   "true T false F killed K refused R". false ending normally would be an escape. */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
extern char **environ;
static volatile char path[32] = "/usr/bin/true";
static atomic_int stop;
static void put(const char *text) {  /* byte by byte through volatile: no store is dropped */
    for (int i = 0; i < 15; i++) path[i] = text[i];
}
static void *flip(void *arg) {
    while (!atomic_load(&stop)) {
        put("/usr/bin/false");
        for (volatile int i = 0; i < 500; i++) {}
        put("/usr/bin/true\0");
        for (volatile int i = 0; i < 500; i++) {}
    }
    return arg;
}
int main(int argc, char **argv) {
    int n = argc > 2 ? atoi(argv[2]) : 100;
    int race = argc > 1 && !strcmp(argv[1], "race");
    int counts[4] = {0};
    for (int i = 0; i < n; i++) {
        pid_t pid = fork();
        if (pid == 0) {
            pthread_t t;
            if (race) pthread_create(&t, NULL, flip, NULL);
            char *args[] = {"true", NULL};
            execve((const char *)path, args, environ);
            _exit(2);  /* refused */
        }
        int status;
        waitpid(pid, &status, 0);
        if (WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) counts[2]++;
        else if (WIFEXITED(status) && WEXITSTATUS(status) <= 2) counts[WEXITSTATUS(status) == 2 ? 3 : WEXITSTATUS(status)]++;
    }
    printf("true %d false %d killed %d refused %d\n", counts[0], counts[1], counts[2], counts[3]);
    return 0;
}
