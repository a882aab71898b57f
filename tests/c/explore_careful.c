/* The same work as explore_bugs.c, with every call checked: --explore must find nothing
 * crashed, hung or ignored (tests/test_explore_campaign.py). Usage: explore_careful INPUT CONFIG. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static void die(const char *what) {
    char message[160];
    int n = snprintf(message, sizeof message, "explore_careful: %s: %s\n", what, strerror(errno));
    if (write(2, message, n) < 0) { /* nothing left to tell */
    }
    _exit(1);
}

static void write_all(int fd, const char *data, size_t size) {
    while (size > 0) {
        ssize_t n = write(fd, data, size);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            die("write");
        data += n;
        size -= (size_t)n;
    }
}

int main(int argc, char **argv) {
    if (argc != 3)
        return 2;
    char line[64];
    FILE *in = fopen(argv[1], "r");
    if (!in)
        die(argv[1]);
    if (!fgets(line, sizeof line, in)) {
        if (ferror(in))
            die("read");
        strcpy(line, "(empty)\n");
    }
    fclose(in);

    char *buffer = mmap(NULL, 1 << 16, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (buffer == MAP_FAILED)
        die("mmap");
    memset(buffer, 'x', 1 << 16);

    int fd;
    do
        fd = open(argv[2], O_RDONLY);
    while (fd < 0 && errno == EINTR);
    if (fd < 0)
        die(argv[2]);
    close(fd);

    for (int i = 0; i < 4; i++) {
        char out[128];
        int n = snprintf(out, sizeof out, "%d: %.1s %s", i, buffer, line);
        write_all(1, out, (size_t)n);
    }
    return 0;
}
