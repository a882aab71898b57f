/* linger_close ATTEMPTS LINGER_S PORT fstat|send: TCP sockets with unsent data (a listener that never
   accepts) and SO_LINGER LINGER_S, each one's last descriptor closed by one thread while
   another fstat()s it (newfstatat AT_EMPTY_PATH) or sends 4 MiB to it with a destination
   (sendto MSG_DONTWAIT: EAGAIN, its buffer is full), 8 at once per attempt. A close that
   returns at once was not the last: another holder (systrace's copy, taken with
   pidfd_getfd) made the final close, which waits the linger time. After each such
   close, another routed call (an fstat of stdin) is timed: natively nothing holds it;
   a supervisor whose loop made that final close serves it only after the linger.
   Prints "other holders closed N, held the next call M". */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#define K 8
#define FD 100
static volatile int go;
static int linger_s, shorts, held;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec / 1e9; }
static int sending;
static struct sockaddr_in peer;
static char *big;
#define BIG (4 << 20)
static void *stat_loop(void *arg) {
    int fd = (int)(long)arg; struct stat st;
    while (go) {
        long r = sending ? sendto(fd, big, BIG, MSG_DONTWAIT, (void *)&peer, sizeof peer)
                         : syscall(SYS_newfstatat, fd, "", &st, AT_EMPTY_PATH);
        if (r < 0 && errno == EBADF) break;
    }
    return NULL;
}
static void *closer(void *arg) {
    int fd = (int)(long)arg;
    usleep(1000 + rand() % 4000);
    double s = now();
    close(fd);
    if (now() - s < linger_s / 2.0) {
        struct stat st;
        double s2 = now();
        syscall(SYS_newfstatat, 0, "", &st, AT_EMPTY_PATH);
        double waited = now() - s2;
        pthread_mutex_lock(&lock);
        shorts++;
        held += waited > linger_s / 2.0;
        pthread_mutex_unlock(&lock);
    }
    return NULL;
}
int main(int argc, char **argv) {
    if (argc != 5) return 2;
    sending = !strcmp(argv[4], "send");
    big = calloc(1, BIG);
    int attempts = atoi(argv[1]), port = atoi(argv[3]);
    linger_s = atoi(argv[2]);
    int l = socket(AF_INET, SOCK_STREAM, 0), one = 1, small = 4096;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK), .sin_port = htons(port)};
    setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    setsockopt(l, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    if (bind(l, (void *)&a, sizeof a) || listen(l, 4 * K)) { perror("listen"); return 1; }
    peer = a;
    fcntl(l, F_SETFL, O_NONBLOCK);
    for (int i = 0; i < attempts && !shorts; i++) {
        for (int k = 0; k < K; k++) {
            int c = socket(AF_INET, SOCK_STREAM, 0);
            setsockopt(c, SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
            if (connect(c, (void *)&a, sizeof a)) { perror("connect"); return 1; }
            fcntl(c, F_SETFL, O_NONBLOCK);
            char buf[65536] = {0};
            while (write(c, buf, sizeof buf) > 0) {}
            struct linger lg = {1, linger_s};
            setsockopt(c, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
            dup2(c, FD + k); close(c);
        }
        go = 1;
        pthread_t s[K], c[K];
        for (int k = 0; k < K; k++) pthread_create(&s[k], NULL, stat_loop, (void *)(long)(FD + k));
        for (int k = 0; k < K; k++) pthread_create(&c[k], NULL, closer, (void *)(long)(FD + k));
        for (int k = 0; k < K; k++) pthread_join(c[k], NULL);
        go = 0;
        for (int k = 0; k < K; k++) pthread_join(s[k], NULL);
        int accepted;  /* empty the accept queue: the next attempt's connects need room */
        while ((accepted = accept4(l, NULL, NULL, SOCK_NONBLOCK)) >= 0) close(accepted);
    }
    printf("other holders closed %d, held the next call %d\n", shorts, held);
    return 0;
}
