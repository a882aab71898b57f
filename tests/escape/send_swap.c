/* ROUNDS datagrams sent to GOOD while a second thread flips the destination in memory to
   BAD (the same length). usage: send_swap sendto|sendmsg inet|unix GOOD BAD ROUNDS
   inet: GOOD and BAD are ports of 127.0.0.1; unix: paths of datagram sockets.
   ROUNDS 0: one datagram to GOOD, no thread (for learning).
   Prints "denied D sent S failed F": the receivers count where the datagrams went. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static struct sockaddr_in in_address;
static struct sockaddr_un un_address;
static int good_port, bad_port, unix_family;
static const char *good_path, *bad_path;
static atomic_int stop;

static void *flip(void *arg) {
    volatile unsigned short *port = &in_address.sin_port;  /* volatile: no store may be dropped */
    while (!atomic_load(&stop)) {  /* dwell on each value: both get read by checks */
        if (unix_family) strcpy(un_address.sun_path, bad_path); else *port = htons(bad_port);
        __asm__ volatile("" ::: "memory");
        for (volatile int i = 0; i < 2000; i++) {}
        if (unix_family) strcpy(un_address.sun_path, good_path); else *port = htons(good_port);
        __asm__ volatile("" ::: "memory");
        for (volatile int i = 0; i < 2000; i++) {}
    }
    return arg;
}

int main(int argc, char **argv) {
    if (argc != 6) { fprintf(stderr, "usage: send_swap sendto|sendmsg inet|unix GOOD BAD ROUNDS\n"); return 2; }
    int use_sendmsg = !strcmp(argv[1], "sendmsg");
    unix_family = !strcmp(argv[2], "unix");
    int rounds = atoi(argv[5]);
    struct sockaddr *address;
    socklen_t length;
    if (unix_family) {
        good_path = argv[3]; bad_path = argv[4];
        un_address.sun_family = AF_UNIX;
        strcpy(un_address.sun_path, good_path);
        address = (struct sockaddr *)&un_address; length = sizeof un_address;
    } else {
        good_port = atoi(argv[3]); bad_port = atoi(argv[4]);
        in_address.sin_family = AF_INET;
        in_address.sin_port = htons(good_port);
        in_address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        address = (struct sockaddr *)&in_address; length = sizeof in_address;
    }
    int s = socket(unix_family ? AF_UNIX : AF_INET, SOCK_DGRAM, 0);
    pthread_t t;
    if (rounds) pthread_create(&t, NULL, flip, NULL);
    long denied = 0, sent = 0, failed = 0;
    for (int i = 0; i < (rounds ? rounds : 1); i++) {
        char data[4] = "msg";
        long n;
        if (use_sendmsg) {
            struct iovec iov = {data, sizeof data};
            struct msghdr msg = {.msg_name = address, .msg_namelen = length, .msg_iov = &iov, .msg_iovlen = 1};
            n = sendmsg(s, &msg, 0);
        } else {
            n = sendto(s, data, sizeof data, 0, address, length);
        }
        if (n == sizeof data) sent++;
        else if (n < 0 && (errno == EPERM || errno == EACCES)) denied++;
        else failed++;
    }
    if (rounds) { atomic_store(&stop, 1); pthread_join(t, NULL); }
    printf("denied %ld sent %ld failed %ld\n", denied, sent, failed);
    return 0;
}
