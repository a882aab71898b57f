/* A reader thread opens FIFO (no writer yet) and waits in open(); once it is seen inside
 * openat (/proc/self/task/TID/syscall), the main thread makes CALLS more system calls.
 * "serve": then it opens the FIFO for writing, so the reader gets "hello".
 * "hang": it prints "waiting" and waits for the reader forever (no writer ever comes). */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *fifo;
static atomic_int reader_tid;
static char got[16];

static void *reader(void *arg) {
    (void)arg;
    atomic_store(&reader_tid, gettid());
    int fd = open(fifo, O_RDONLY);
    if (fd < 0) { perror("reader open"); return NULL; }
    ssize_t n = read(fd, got, sizeof got - 1);
    if (n > 0) got[n] = 0;
    close(fd);
    return NULL;
}

int main(int argc, char **argv) {
    if (argc != 4) { fprintf(stderr, "usage: fifo_wait FIFO serve|hang CALLS\n"); return 2; }
    fifo = argv[1];
    int calls = atoi(argv[3]);
    pthread_t thread;
    pthread_create(&thread, NULL, reader, NULL);
    while (atomic_load(&reader_tid) == 0) ;
    char path[64], line[64];
    snprintf(path, sizeof path, "/proc/self/task/%d/syscall", atomic_load(&reader_tid));
    int status = open(path, O_RDONLY);
    if (status < 0) { perror(path); return 1; }
    for (;;) {  /* until the reader is inside openat (257) */
        ssize_t n = pread(status, line, sizeof line - 1, 0);
        if (n > 0) { line[n] = 0; if (strncmp(line, "257 ", 4) == 0) break; }
    }
    int served = 0;
    struct stat st;
    for (int i = 0; i < calls; i++)
        if (stat("/etc/hostname", &st) == 0) served++;
    if (strcmp(argv[2], "hang") == 0) {
        printf("waiting\n");
        fflush(stdout);
        pthread_join(thread, NULL);
        return 0;
    }
    int fd = open(fifo, O_WRONLY);
    if (fd < 0) { perror("writer open"); return 1; }
    write(fd, "hello", 5);
    close(fd);
    pthread_join(thread, NULL);
    printf("served %d of %d calls while the reader waited; it read: %s\n", served, calls, got);
    return 0;
}
