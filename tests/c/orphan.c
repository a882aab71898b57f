/* A grandchild that outlives its parent: it opens /orphan-before (a routed, logged call)
 * while its parent lives, waits until it has been reparented (getppid() changes), opens
 * /orphan-after, and prints "PARENT NEWPARENT". The first process waits for it through a
 * pipe only the grandchild keeps open. */
#include <fcntl.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

int main(void) {
    int done[2], ready[2];
    if (pipe(done) || pipe(ready))
        return 1;
    pid_t parent = fork();
    if (parent == 0) {
        close(done[0]);
        if (fork() == 0) {
            pid_t first = getppid();
            open("/orphan-before", O_RDONLY);
            write(ready[1], "x", 1);
            while (getppid() == first)
                ; /* until the parent exited and we were reparented */
            open("/orphan-after", O_RDONLY);
            printf("%d %d\n", (int)first, (int)getppid());
            fflush(stdout);
            _exit(0);
        }
        char c;
        read(ready[0], &c, 1);
        _exit(0);
    }
    close(done[1]);
    waitpid(parent, NULL, 0);
    char c;
    while (read(done[0], &c, 1) > 0)
        ;
    return 0;
}
