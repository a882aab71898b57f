/* What is left of a supervised tree once systrace is killed: tree MAP [connect HOST PORT].

   Three generations of processes (the first is systrace's child), each with two more
   threads; every thread takes a slot in the shared MAP (a 4096-byte file, written
   through mmap so that reporting needs no system call). Each thread marks its slot
   ready and spins (sched_yield, decided in the kernel) until the test sets byte 0 of
   MAP: systrace is dead. Then it makes a routed call (openat) and records its errno,
   and tries to install a seccomp listener of its own and records the result.
   With "connect", the third generation instead makes one blocking connect to HOST:PORT
   (which never completes: its listen queue is full) and records that connect's errno:
   it is in flight, in systrace's helper, when systrace dies.
   Slot i (16 bytes from 64 + 16 i): 'R' ready, then 'D' done, errno of the routed call
   (int), result of the listener attempt (int: 0 ok, else errno). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile char *map;
static const char *host;
static int port;

struct slot { char state; char pad[3]; int routed_errno; int listener; int spare; };

static struct slot *slot(int i) { return (struct slot *)(map + 64 + 16 * i); }

static int own_listener(void) {
    struct sock_filter allow = BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
    struct sock_fprog prog = {1, &allow};
    syscall(SYS_prctl, PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);  /* what an unprivileged filter needs */
    long fd = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER, &prog);
    return fd >= 0 ? 0 : errno;
}

static void after_death(int i) {
    struct slot *s = slot(i);
    s->state = 'R';
    while (!map[0]) sched_yield();
    long fd = syscall(SYS_openat, AT_FDCWD, "/etc/hostname", O_RDONLY);
    s->routed_errno = fd >= 0 ? 0 : errno;
    s->listener = own_listener();
    atomic_thread_fence(memory_order_seq_cst);
    s->state = 'D';
}

static void blocked_connect(int i) {
    struct slot *s = slot(i);
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(port)};
    inet_pton(AF_INET, host, &to.sin_addr);
    int sock = socket(AF_INET, SOCK_STREAM, 0);
    s->state = 'R';
    int r = connect(sock, (struct sockaddr *)&to, sizeof to);
    s->routed_errno = r == 0 ? 0 : errno;
    s->listener = own_listener();
    atomic_thread_fence(memory_order_seq_cst);
    s->state = 'D';
}

static void *thread_main(void *arg) {
    after_death((int)(long)arg);
    return NULL;
}

static void generation(int level) {
    int base = 3 * level;
    if (level == 2 && host) {  /* the connect runs in this process's only thread */
        blocked_connect(base);
        _exit(0);
    }
    if (level < 2 && fork() == 0) generation(level + 1);
    pthread_t t[2];
    for (int k = 0; k < 2; k++) pthread_create(&t[k], NULL, thread_main, (void *)(long)(base + 1 + k));
    after_death(base);
    /* not pthread_join: its futex is a routed call, which fails now */
    for (int k = 0; k < 2; k++) while (slot(base + 1 + k)->state != 'D') sched_yield();
    _exit(0);
}

int main(int argc, char **argv) {
    if (argc != 2 && argc != 5) return 2;
    int fd = open(argv[1], O_RDWR);
    map = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (map == MAP_FAILED) return 2;
    if (argc == 5) {
        host = argv[3];
        port = atoi(argv[4]);
    }
    generation(0);
}
