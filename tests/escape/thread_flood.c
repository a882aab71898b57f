/* thread_flood N: N threads, each makes one open (routed under a learned policy) and then
   waits until all are made; then the first thread opens once more and prints "threads N,
   open after: OK" (or "failed"). Under systrace every live thread it has seen is in its
   process table. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static pthread_barrier_t barrier;

static void *run(void *arg) {
    (void)arg;
    int fd = open("/etc/hostname", O_RDONLY);
    if (fd >= 0) close(fd);
    pthread_barrier_wait(&barrier);  /* all alive at once */
    pthread_barrier_wait(&barrier);  /* until the last open is made */
    return NULL;
}

int main(int argc, char **argv) {
    if (argc != 2) return 2;
    int n = atoi(argv[1]);
    pthread_t *threads = calloc(n, sizeof *threads);
    pthread_barrier_init(&barrier, NULL, n + 1);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 65536);
    for (int i = 0; i < n; i++)
        if (pthread_create(&threads[i], &attr, run, NULL)) { printf("create %d failed\n", i); return 1; }
    pthread_barrier_wait(&barrier);
    int fd = open("/etc/hostname", O_RDONLY);
    printf("threads %d, open after: %s\n", n, fd >= 0 ? "OK" : "failed");
    pthread_barrier_wait(&barrier);
    for (int i = 0; i < n; i++) pthread_join(threads[i], NULL);
    return 0;
}
