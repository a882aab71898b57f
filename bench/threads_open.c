/* 16 threads, each opening and closing files N times (contention on the supervisor). */
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
static long n;
static void *work(void *arg) {
    for (long i = 0; i < n; i++) {
        int fd = open("/etc/hostname", O_RDONLY);
        if (fd < 0) { perror("open"); exit(1); }
        close(fd);
    }
    return arg;
}
int main(int argc, char **argv) {
    n = argc > 1 ? atol(argv[1]) : 500;
    pthread_t t[16];
    for (int i = 0; i < 16; i++) pthread_create(&t[i], NULL, work, NULL);
    for (int i = 0; i < 16; i++) pthread_join(t[i], NULL);
    return 0;
}
