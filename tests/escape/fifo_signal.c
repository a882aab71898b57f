/* fifo_signal FIFO restart|interrupt: opens FIFO for reading (no writer yet) with a
   SIGUSR1 handler installed with or without SA_RESTART; prints "waiting" first, then how
   the open ended: "open ok handlers=N" or "open ERRNO handlers=N". */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t handled;
static void on_usr1(int number) { (void)number; handled++; }

int main(int argc, char **argv) {
    if (argc != 3) { fprintf(stderr, "usage: fifo_signal FIFO restart|interrupt\n"); return 2; }
    setvbuf(stdout, NULL, _IONBF, 0);
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = on_usr1;
    action.sa_flags = strcmp(argv[2], "restart") == 0 ? SA_RESTART : 0;
    sigaction(SIGUSR1, &action, NULL);
    printf("waiting\n");
    int fd = open(argv[1], O_RDONLY);
    if (fd < 0) printf("open %s handlers=%d\n", strerrorname_np(errno), (int)handled);
    else printf("open ok handlers=%d\n", (int)handled);
    return 0;
}
