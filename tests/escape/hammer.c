/* THREADS threads each open /etc/hostname ROUNDS times; then FORKS children are started
   at once, each opening it once. Prints "opened N failed M". */
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>
static long rounds;
static atomic_long opened, failed;
static void *work(void *arg) {
    for (long i = 0; i < rounds; i++) {
        int fd = open("/etc/hostname", O_RDONLY);
        if (fd < 0) atomic_fetch_add(&failed, 1); else { atomic_fetch_add(&opened, 1); close(fd); }
    }
    return arg;
}
int main(int argc, char **argv) {
    int threads = argc > 1 ? atoi(argv[1]) : 64;
    rounds = argc > 2 ? atol(argv[2]) : 100;
    int forks = argc > 3 ? atoi(argv[3]) : 0;
    pthread_t *t = calloc(threads, sizeof *t);
    for (int i = 0; i < threads; i++)
        if (pthread_create(&t[i], NULL, work, NULL)) { perror("pthread_create"); return 1; }
    for (int i = 0; i < threads; i++) pthread_join(t[i], NULL);
    for (int i = 0; i < forks; i++) {
        pid_t pid = fork();
        if (pid == 0) { int fd = open("/etc/hostname", O_RDONLY); _exit(fd < 0); }
        if (pid < 0) { perror("fork"); break; }
    }
    int status;
    while (wait(&status) > 0) { if (WEXITSTATUS(status)) failed++; else opened++; }
    printf("opened %ld failed %ld\n", (long)opened, (long)failed);
    return 0;
}
