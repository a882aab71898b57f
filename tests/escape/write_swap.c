/* A second thread flips the path of a write open between ALLOWED and FORBIDDEN while the
 * main thread opens it O_WRONLY (and writes nothing) ROUNDS times. An open that returns
 * a descriptor of FORBIDDEN is an escape. Prints "escapes N refused R rounds T".
 * With a fourth argument "opath" the open is O_PATH|O_WRONLY (the kernel ignores
 * O_WRONLY): an escape is then a descriptor of FORBIDDEN that writes (write(2)), or
 * whose reopen through /proc/self/fd/N for writing gives FORBIDDEN. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char shared[300], allowed[300], forbidden[300];
static atomic_int stop, flips;

static void *flip(void *unused) {
    (void)unused;
    while (!atomic_load(&stop)) {
        strcpy(shared, forbidden);
        __asm__ volatile("" ::: "memory");
        for (volatile int i = 0; i < 500; i++) {}
        strcpy(shared, allowed);
        __asm__ volatile("" ::: "memory");
        for (volatile int i = 0; i < 500; i++) {}
        atomic_fetch_add(&flips, 1);
    }
    return NULL;
}

int main(int argc, char **argv) {
    if (argc != 4 && !(argc == 5 && !strcmp(argv[4], "opath"))) {
        fprintf(stderr, "usage: write_swap ALLOWED FORBIDDEN ROUNDS [opath]\n");
        return 2;
    }
    snprintf(allowed, sizeof allowed, "%s", argv[1]);
    snprintf(forbidden, sizeof forbidden, "%s", argv[2]);
    strcpy(shared, allowed);
    struct stat target;
    if (stat(forbidden, &target))
        return 1;
    int rounds = atoi(argv[3]), escapes = 0, refused = 0, opath = argc == 5;
    pthread_t thread;
    pthread_create(&thread, NULL, flip, NULL);
    while (atomic_load(&flips) == 0)
        ; /* the flipper runs */
    int start = atomic_load(&flips), done = 0;
    /* at least ROUNDS opens, and on a loaded machine on until the flipper has flipped
       during them (bounded) */
    for (int i = 0; i < rounds || (atomic_load(&flips) - start < 100 && i < 50 * rounds); i++, done++) {
        int fd = open(shared, opath ? O_PATH | O_WRONLY : O_WRONLY);
        struct stat st;
        if (fd < 0) {
            refused += errno == EACCES || errno == EPERM;
            continue;
        }
        if (fstat(fd, &st) == 0 && st.st_ino == target.st_ino && st.st_dev == target.st_dev) {
            if (!opath) {
                escapes++;
            } else {
                char again[64];
                snprintf(again, sizeof again, "/proc/self/fd/%d", fd);
                int reopened = open(again, O_WRONLY), why = errno;
                if (write(fd, "", 0) == 0 || reopened >= 0)
                    escapes++;
                else
                    refused += why == EACCES || why == EPERM;
                if (reopened >= 0)
                    close(reopened);
            }
        }
        close(fd);
    }
    atomic_store(&stop, 1);
    pthread_join(thread, NULL);
    printf("escapes %d refused %d rounds %d\n", escapes, refused, done);
    return 0;
}
