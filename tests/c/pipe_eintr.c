/* pipe() while children exit, with a SIGCHLD handler without SA_RESTART (as dash has):
 * natively pipe() is never interrupted. Prints how many calls failed with EINTR. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void on_child(int sig) { (void)sig; }

int main(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_child; /* no SA_RESTART */
    sigaction(SIGCHLD, &sa, NULL);
    int interrupted = 0;
    for (int i = 0; i < 300; i++) {
        if (i % 3 == 0 && fork() == 0)
            _exit(0);
        int fds[2];
        if (pipe(fds) != 0) {
            if (errno == EINTR)
                interrupted++;
            continue;
        }
        close(fds[0]);
        close(fds[1]);
    }
    while (wait(NULL) > 0 || errno == EINTR)
        ;
    printf("%d\n", interrupted);
    return 0;
}
