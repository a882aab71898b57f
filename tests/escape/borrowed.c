/* What a tracee that dropped its privileges may do with systrace's authority, if systrace
   lent it. usage: borrowed drop|keep FILE SOCKET PORT
   drop: become nobody (65534) first. Then: O_PATH FILE and reopen it through
   /proc/self/fd for reading; bind 127.0.0.1:PORT; connect to the unix SOCKET. Prints
   "reopen R bind B connect C", each OK or the errno's name. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static const char *outcome(int r) {
    if (r >= 0) return "OK";
    switch (errno) {
    case EACCES: return "EACCES"; case EPERM: return "EPERM"; case ENOENT: return "ENOENT";
    case EADDRINUSE: return "EADDRINUSE"; case ECONNREFUSED: return "ECONNREFUSED";
    default: return strerror(errno);
    }
}

int main(int argc, char **argv) {
    if (argc < 5) { fprintf(stderr, "usage: borrowed drop|keep FILE SOCKET PORT\n"); return 2; }
    if (!strcmp(argv[1], "drop") && (setgroups(0, NULL) || setgid(65534) || setuid(65534))) { perror("drop"); return 1; }
    int path = open(argv[2], O_PATH);
    char via[64];
    snprintf(via, sizeof via, "/proc/self/fd/%d", path);
    int fd = path < 0 ? -1 : open(via, O_RDONLY);
    const char *reopen = outcome(fd);
    struct sockaddr_in in = {.sin_family = AF_INET, .sin_port = htons(atoi(argv[4])), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int s = socket(AF_INET, SOCK_STREAM, 0);
    const char *bound = outcome(bind(s, (struct sockaddr *)&in, sizeof in));
    struct sockaddr_un un = {.sun_family = AF_UNIX};
    snprintf(un.sun_path, sizeof un.sun_path, "%s", argv[3]);
    int u = socket(AF_UNIX, SOCK_STREAM, 0);
    const char *connected = outcome(connect(u, (struct sockaddr *)&un, sizeof un));
    printf("reopen %s bind %s connect %s\n", reopen, bound, connected);
    return 0;
}
