/* unix_to VERB PATH: connect (stream), sendto (datagram) or bind a unix socket at PATH;
   print "VERB RESULT ERRNO". */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

int main(int argc, char **argv) {
    if (argc != 3) { fprintf(stderr, "usage: unix_to connect|sendto|bind PATH\n"); return 2; }
    struct sockaddr_un to = { .sun_family = AF_UNIX };
    snprintf(to.sun_path, sizeof to.sun_path, "%s", argv[2]);
    int datagram = !strcmp(argv[1], "sendto");
    int s = socket(AF_UNIX, datagram ? SOCK_DGRAM : SOCK_STREAM, 0);
    long result;
    errno = 0;
    if (!strcmp(argv[1], "connect")) result = connect(s, (struct sockaddr *)&to, sizeof to);
    else if (datagram) result = sendto(s, "x", 1, 0, (struct sockaddr *)&to, sizeof to);
    else result = bind(s, (struct sockaddr *)&to, sizeof to);
    printf("%s %ld %s\n", argv[1], result, result < 0 ? strerrorname_np(errno) : "0");
    return 0;
}
