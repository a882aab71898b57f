/* Calls on a held descriptor (lseek), decided by the policy's name-only rule, around
   what changes which rule applies (README "Caches": decided by name only). Each batch of
   COUNT lseeks prints "seek N: ok COUNT" or "seek N: ERRNO COUNT" (its first failure).
     byname seek COUNT                 one batch
     byname setuid UID COUNT           a batch, setresuid(UID) (raw: this thread), a batch
     byname exec PROGRAM COUNT         a batch, then exec PROGRAM seek COUNT */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static int fd;

static void batch(int n, long count) {
    long ok = 0;
    int failure = 0;
    for (long i = 0; i < count; i++) {
        if (lseek(fd, 0, SEEK_SET) == 0) ok++;
        else if (!failure) failure = errno;
    }
    if (failure) printf("seek %d: %s %ld\n", n, strerrorname_np(failure), count - ok);
    else printf("seek %d: ok %ld\n", n, ok);
    fflush(stdout);
}

int main(int argc, char **argv) {
    if (argc < 3) { fprintf(stderr, "usage: byname MODE [ARG] COUNT\n"); return 2; }
    fd = open("/etc/hostname", O_RDONLY);
    if (fd < 0) { perror("open"); return 2; }
    const char *mode = argv[1];
    long count = atol(argv[argc - 1]);
    batch(1, count);
    if (!strcmp(mode, "setuid")) {
        uid_t target = (uid_t)atoi(argv[2]);
        if (syscall(SYS_setresuid, target, target, target) != 0) { perror("setresuid"); return 2; }
        batch(2, count);
    } else if (!strcmp(mode, "exec")) {
        char *args[] = {argv[2], "seek", argv[3], NULL};
        execv(argv[2], args);
        perror("execv");
        return 2;
    }
    return 0;
}
