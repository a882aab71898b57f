/* A pid named by a continued call, then freed, then handed out again (test_pid_reuse.py).
 *
 * pid_reuse FIFO ROUNDS: a thread names a child V with sched_setaffinity (checked only by
 * uid: systrace checks and continues it) and then waits in read() on a pipe, making no
 * further system call that reaches systrace, so for systrace the call may still be in
 * flight. V is killed and reaped; its pid is printed. Then, once per line on stdin, the
 * FIFO is opened for reading (with no writer yet, systrace does that open in a helper
 * process it forks) and closed; "opened" is printed. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static pid_t victim;
static int named[2], hold[2];

static void *name_victim(void *unused) {
    cpu_set_t set;
    (void)unused;
    CPU_ZERO(&set);
    sched_getaffinity(0, sizeof set, &set);
    int ok = sched_setaffinity(victim, sizeof set, &set) == 0;
    char c = ok ? 'y' : 'n';
    write(named[1], &c, 1);
    read(hold[0], &c, 1); /* never written: this thread makes no other call */
    return NULL;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: pid_reuse FIFO ROUNDS\n");
        return 2;
    }
    int rounds = atoi(argv[2]);
    if (pipe(named) || pipe(hold))
        return 1;
    victim = fork();
    if (victim == 0) {
        pause();
        _exit(0);
    }
    pthread_t thread;
    pthread_create(&thread, NULL, name_victim, NULL);
    char c;
    if (read(named[0], &c, 1) != 1 || c != 'y') {
        printf("setaffinity failed\n");
        return 1;
    }
    kill(victim, SIGKILL);
    waitpid(victim, NULL, 0);
    printf("freed %d\n", (int)victim);
    fflush(stdout);
    char line[64];
    for (int i = 0; i < rounds && fgets(line, sizeof line, stdin); i++) {
        int fd = open(argv[1], O_RDONLY);
        if (fd < 0) {
            printf("open failed\n");
            return 1;
        }
        close(fd);
        printf("opened\n");
        fflush(stdout);
    }
    return 0;
}
