/* Print where each open fd points, then do the same in a forked child. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>
static void list(const char *who) {
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    char path[64], target[256];
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        snprintf(path, sizeof path, "/proc/self/fd/%s", e->d_name);
        ssize_t n = readlink(path, target, sizeof target - 1);
        if (n < 0) continue;
        target[n] = 0;
        printf("%s %s -> %s\n", who, e->d_name, target);
    }
    closedir(d);
}
int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    list("parent");
    pid_t pid = fork();
    if (pid == 0) { list("child"); _exit(0); }
    waitpid(pid, NULL, 0);
    return 0;
}
