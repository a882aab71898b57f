/* A fork bomb that ends: every process forks at each of DEPTH levels (2^DEPTH processes
   if nothing stops it), counts the forks that failed, and waits for its children.
   The first process prints "forkbomb done". */
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>
int main(int argc, char **argv) {
    int depth = argc > 1 ? atoi(argv[1]) : 12;
    pid_t first = getpid();
    int children = 0;
    for (int level = 0; level < depth; level++) {
        pid_t pid = fork();
        if (pid == 0) { children = 0; continue; }
        if (pid > 0) children++;
    }
    while (children > 0 && wait(NULL) > 0) children--;
    if (getpid() == first) printf("forkbomb done\n");
    return 0;
}
