/* vfork, then execve argv[1] in the child (which shares our memory until the exec).
   Prints "child exit N" (127 when the exec failed). */
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>
extern char **environ;
int main(int argc, char **argv) {
    char *args[] = {argv[1], NULL};
    pid_t pid = vfork();
    if (pid == 0) { execve(argv[1], args, environ); _exit(127); }
    int status;
    waitpid(pid, &status, 0);
    printf("child exit %d\n", WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
    return 0;
}
