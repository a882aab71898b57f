/* ROUNDS connects to 127.0.0.1:GOOD while a second thread flips the port in the address
   structure to BAD. Prints "bad N good G failed F" from getpeername: BAD > 0 is an escape.
   Mode "plain" connects to GOOD once (for learning). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
static struct sockaddr_in address;
static int good, bad;
static atomic_int stop;
static void *flip(void *arg) {
    volatile unsigned short *port = &address.sin_port;  /* volatile: no store may be dropped */
    while (!atomic_load(&stop)) {  /* dwell on each value: both get read by checks */
        *port = htons(bad);
        for (volatile int i = 0; i < 2000; i++) {}
        *port = htons(good);
        for (volatile int i = 0; i < 2000; i++) {}
    }
    return arg;
}
int main(int argc, char **argv) {
    int race = !strcmp(argv[1], "race");
    good = atoi(argv[2]); bad = atoi(argv[3]);
    int rounds = race ? atoi(argv[4]) : 1;
    address.sin_family = AF_INET;
    address.sin_port = htons(good);
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    pthread_t t;
    if (race) pthread_create(&t, NULL, flip, NULL);
    long counts[3] = {0};
    for (int i = 0; i < rounds; i++) {
        int s = socket(AF_INET, SOCK_STREAM, 0);
        if (connect(s, (struct sockaddr *)&address, sizeof address) < 0) { counts[2]++; close(s); continue; }
        struct sockaddr_in peer; socklen_t len = sizeof peer;
        getpeername(s, (struct sockaddr *)&peer, &len);
        counts[ntohs(peer.sin_port) == bad ? 0 : 1]++;
        close(s);
    }
    if (race) { atomic_store(&stop, 1); pthread_join(t, NULL); }
    printf("bad %ld good %ld failed %ld\n", counts[0], counts[1], counts[2]);
    return 0;
}
