/* chroot_swap DIR MODE ROUNDS: each round a CLONE_VM child chroot()s to the path in a
   buffer it shares with its parent, then reads "/f" below its new root. A thread of the
   parent rewrites that buffer all along: in "swap" mode between DIR/jail and DIR/s (a
   chroot that a check saw as DIR/jail may land in DIR/s once the kernel reads the path
   again), in "honest" mode with DIR/jail only (the same calls, nothing swapped). With
   "user", the child first makes a user namespace of its own (chroot as the user).
   Prints "leaked=L jailed=J failed=F killed=K": rounds that read DIR/s/f, that read
   DIR/jail/f, whose chroot or open failed, and whose child was killed by a signal. */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

static char path[4096], jail[4096], secret[4096];
static volatile int stop, swapping, own_user;
static char stack[1 << 16] __attribute__((aligned(16)));
static long leaked, jailed, failed;

static void *rewrite(void *unused) {
    (void)unused;
    while (!stop) {
        strcpy(path, swapping ? secret : jail);
        for (volatile int i = 0; i < 2000; i++) {}
        strcpy(path, jail);
        for (volatile int i = 0; i < 2000; i++) {}
    }
    return NULL;
}

static int child(void *unused) {
    (void)unused;
    char text[32] = {0};
    if (own_user && unshare(CLONE_NEWUSER)) return 3;
    if (chroot(path) || chdir("/")) return 3;
    int fd = open("/f", O_RDONLY);
    if (fd < 0 || read(fd, text, sizeof text - 1) < 0) return 3;
    return strncmp(text, "SECRET", 6) == 0 ? 1 : 2;
}

int main(int argc, char **argv) {
    if (argc != 4 && argc != 5) { fprintf(stderr, "usage: chroot_swap DIR swap|honest ROUNDS [user]\n"); return 2; }
    snprintf(jail, sizeof jail, "%s/jail", argv[1]);
    snprintf(secret, sizeof secret, "%s/s", argv[1]);
    strcpy(path, jail);
    swapping = strcmp(argv[2], "swap") == 0;
    own_user = argc == 5;
    long rounds = atol(argv[3]), killed = 0;
    pthread_t thread;
    pthread_create(&thread, NULL, rewrite, NULL);
    for (long i = 0; i < rounds; i++) {
        pid_t pid = clone(child, stack + sizeof stack, CLONE_VM | SIGCHLD, NULL);
        int status;
        if (pid < 0 || waitpid(pid, &status, 0) != pid) { perror("clone"); return 1; }
        if (WIFSIGNALED(status)) killed++;
        else if (WEXITSTATUS(status) == 1) leaked++;
        else if (WEXITSTATUS(status) == 2) jailed++;
        else failed++;
    }
    stop = 1;
    pthread_join(thread, NULL);
    printf("leaked=%ld jailed=%ld failed=%ld killed=%ld\n", leaked, jailed, failed, killed);
    return 0;
}
