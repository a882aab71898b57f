/* fork, vfork, posix_spawn, 8 threads and an execve from a non-main thread. Output is
   deterministic so it can be compared byte for byte with a native run. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static int count_bytes(const char *path) {
    int fd = open(path, O_RDONLY);
    if (fd < 0) return -1;
    char buf[4096];
    int total = 0, n;
    while ((n = read(fd, buf, sizeof buf)) > 0) total += n;
    close(fd);
    return total;
}

static void *worker(void *arg) {
    long id = (long)arg;
    long sum = 0;
    for (int i = 0; i < 50; i++) sum += count_bytes("/etc/passwd") > 0;
    return (void *)(sum + id * 1000);
}

static void *exec_from_thread(void *arg) {
    char *argv[] = {"/bin/echo", "exec from thread", NULL};
    fflush(stdout);
    execve(argv[0], argv, environ);
    perror("execve");
    _exit(99);
    return arg;
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IONBF, 0);
    pid_t pid = fork();
    if (pid == 0) { printf("fork child ok %d\n", count_bytes("/etc/hostname") > 0); _exit(3); }
    int status;
    waitpid(pid, &status, 0);
    printf("fork exit %d\n", WEXITSTATUS(status));

    pid = vfork();
    if (pid == 0) { char *a[] = {"/bin/true", NULL}; execve(a[0], a, environ); _exit(98); }
    waitpid(pid, &status, 0);
    printf("vfork exit %d\n", WEXITSTATUS(status));

    char *sargv[] = {"/bin/sh", "-c", "echo spawned; exit 4", NULL};
    if (posix_spawn(&pid, sargv[0], NULL, NULL, sargv, environ) != 0) return 1;
    waitpid(pid, &status, 0);
    printf("spawn exit %d\n", WEXITSTATUS(status));

    pthread_t threads[8];
    for (long i = 0; i < 8; i++) pthread_create(&threads[i], NULL, worker, (void *)i);
    long total = 0;
    for (int i = 0; i < 8; i++) { void *r; pthread_join(threads[i], &r); total += (long)r; }
    printf("threads total %ld\n", total);

    pthread_t t;
    pthread_create(&t, NULL, exec_from_thread, NULL);
    pthread_join(t, NULL);
    return 1;  /* not reached: the thread execs */
}
