/* N sends with a destination; prints "us_per_call X". usage: send_loop FAMILY DIR N
   FAMILY: sendto-inet (UDP to 127.0.0.1:9, nobody listening), sendto-unix, sendmsg-unix
   (to DIR/r.sock, bound here and read after each send: recv is decided in the kernel). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc < 4) { fprintf(stderr, "usage: send_loop FAMILY DIR N\n"); return 2; }
    const char *f = argv[1];
    long n = atol(argv[3]);
    int inet = !strcmp(f, "sendto-inet"), use_sendmsg = !strcmp(f, "sendmsg-unix");
    struct sockaddr_in in = {.sin_family = AF_INET, .sin_port = htons(9), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    struct sockaddr_un un = {.sun_family = AF_UNIX};
    snprintf(un.sun_path, sizeof un.sun_path, "%s/r.sock", argv[2]);
    struct sockaddr *to = inet ? (struct sockaddr *)&in : (struct sockaddr *)&un;
    socklen_t length = inet ? sizeof in : sizeof un;
    int receiver = -1;
    if (!inet) {
        unlink(un.sun_path);
        receiver = socket(AF_UNIX, SOCK_DGRAM, 0);
        if (bind(receiver, to, length) < 0) { perror("bind"); return 1; }
    }
    int s = socket(inet ? AF_INET : AF_UNIX, SOCK_DGRAM, 0);
    char data[64] = "x", back[64];
    struct iovec iov = {data, sizeof data};
    struct msghdr msg = {.msg_name = to, .msg_namelen = length, .msg_iov = &iov, .msg_iovlen = 1};
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (long i = 0; i < n; i++) {
        long sent = use_sendmsg ? sendmsg(s, &msg, 0) : sendto(s, data, sizeof data, 0, to, length);
        if (sent != sizeof data) { perror("send"); return 1; }
        if (receiver >= 0) recv(receiver, back, sizeof back, 0);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double us = ((t1.tv_sec - t0.tv_sec) * 1e9 + (t1.tv_nsec - t0.tv_nsec)) / 1e3;
    printf("us_per_call %.2f\n", us / n);
    if (!inet) unlink(un.sun_path);
    return 0;
}
