/* One attack on another process (the target), by a route other than naming it in a
   policy: reach VECTOR PID PGID. PID 0 means the parent (systrace, when run under it),
   PGID 0 the caller's own process group. "helper VECTOR HOST PORT" first starts a
   blocking connect to HOST:PORT in a thread (systrace then runs it in a helper process);
   "fifohelper VECTOR FIFO" an open of a FIFO with no writer instead; "replica VECTOR" starts
   nothing (under --supervisors the replicas are there from the start). It then finds that helper (a child of our parent other than us) and attacks it.
   Prints "VECTOR ok" when the call(s) succeeded, "VECTOR ERRNONAME" otherwise; signal
   vectors only say whether the call was accepted: the caller checks the target died. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/perf_event.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef F_SETOWN_EX
#define F_SETOWN_EX 15
#endif
#define KCMP_VM 1

static pid_t target, group;

static int result(const char *name, long value) {
    if (value < 0) printf("%s %s\n", name, strerrorname_np(errno));
    else printf("%s ok\n", name);
    return 0;
}

/* O_ASYNC on a pipe whose owner was set by `own`, then make it readable: SIGIO. */
static long sigio_via(int how) {
    int p[2];
    if (pipe(p) < 0) return -1;
    long r;
    pid_t who = target;
    if (how == 0) r = fcntl(p[0], F_SETOWN, who);
    else if (how == 1) r = fcntl(p[0], F_SETOWN, -group);
    else if (how == 2) {
        struct f_owner_ex owner = {F_OWNER_PID, who};
        r = fcntl(p[0], F_SETOWN_EX, &owner);
    } else return -1;
    if (r < 0) return r;
    if (fcntl(p[0], F_SETFL, O_ASYNC | O_NONBLOCK) < 0) return -1;
    return write(p[1], "x", 1) == 1 ? 0 : -1;
}

/* FIOSETOWN and SIOCSPGRP take the owner in memory (no filter can read it) */
static long sigio_socket(unsigned long request) {
    int s[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, s) < 0) return -1;
    pid_t who = target;
    if (ioctl(s[0], request, &who) < 0) return -1;
    if (fcntl(s[0], F_SETFL, O_ASYNC | O_NONBLOCK) < 0) return -1;
    return write(s[1], "x", 1) == 1 ? 0 : -1;
}

static long getfd_any(void) {
    int pidfd = syscall(SYS_pidfd_open, target, 0);
    if (pidfd < 0) return -1;
    for (int fd = 0; fd < 256; fd++) {
        int got = syscall(SYS_pidfd_getfd, pidfd, fd, 0);
        if (got >= 0) return got;
        if (errno != EBADF) return -1;
    }
    errno = EBADF;
    return -1;
}

static long attack(const char *v) {
    siginfo_t info;
    memset(&info, 0, sizeof info);
    info.si_code = SI_QUEUE;
    info.si_pid = getpid();
    info.si_uid = getuid();
    char path[64], byte = 0;
    struct iovec local = {&byte, 1}, remote = {(void *)0x10000, 1};
    if (!strcmp(v, "kill")) return kill(target, SIGKILL);
    if (!strcmp(v, "tkill")) return syscall(SYS_tkill, target, SIGKILL);
    if (!strcmp(v, "tgkill")) return syscall(SYS_tgkill, target, target, SIGKILL);
    if (!strcmp(v, "sigqueue")) return syscall(SYS_rt_sigqueueinfo, target, SIGKILL, &info);
    if (!strcmp(v, "tgsigqueue")) return syscall(SYS_rt_tgsigqueueinfo, target, target, SIGKILL, &info);
    if (!strcmp(v, "killpg")) return killpg(group, SIGKILL);
    if (!strcmp(v, "kill0")) return kill(0, SIGKILL);
    if (!strcmp(v, "kill_all")) return kill(-1, SIGKILL);
    if (!strcmp(v, "pidfd_signal")) {
        int fd = syscall(SYS_pidfd_open, target, 0);
        return fd < 0 ? -1 : syscall(SYS_pidfd_send_signal, fd, SIGKILL, NULL, 0);
    }
    if (!strcmp(v, "procfd_signal")) {
        snprintf(path, sizeof path, "/proc/%d", target);
        int fd = open(path, O_RDONLY | O_DIRECTORY);
        return fd < 0 ? -1 : syscall(SYS_pidfd_send_signal, fd, SIGKILL, NULL, 0);
    }
    if (!strcmp(v, "setown")) return sigio_via(0);
    if (!strcmp(v, "setown_pgrp")) return sigio_via(1);
    if (!strcmp(v, "setown_ex")) return sigio_via(2);
    if (!strcmp(v, "fiosetown")) return sigio_socket(FIOSETOWN);
    if (!strcmp(v, "siocspgrp")) return sigio_socket(SIOCSPGRP);
    /* calls whose success is the attack */
    if (!strcmp(v, "ptrace_attach")) return ptrace(PTRACE_ATTACH, target, 0, 0);
    if (!strcmp(v, "ptrace_seize")) return ptrace(PTRACE_SEIZE, target, 0, 0);
    /* EFAULT means the access check passed (the address is arbitrary) */
    if (!strcmp(v, "vm_readv")) { long r = process_vm_readv(target, &local, 1, &remote, 1, 0); return r < 0 && errno == EFAULT ? 0 : r; }
    if (!strcmp(v, "vm_writev")) { long r = process_vm_writev(target, &local, 1, &remote, 1, 0); return r < 0 && errno == EFAULT ? 0 : r; }
    if (!strcmp(v, "proc_mem")) { snprintf(path, sizeof path, "/proc/%d/mem", target); return open(path, O_RDWR); }
    if (!strcmp(v, "pidfd_getfd")) return getfd_any();
    if (!strcmp(v, "prlimit_cpu")) { struct rlimit r = {1, 2}; return prlimit(target, RLIMIT_CPU, &r, NULL); }
    if (!strcmp(v, "setpriority")) return setpriority(PRIO_PROCESS, target, 19);
    if (!strcmp(v, "setpriority_pgrp")) return setpriority(PRIO_PGRP, group, 19);
    if (!strcmp(v, "setpriority_user")) return setpriority(PRIO_USER, getuid(), 19);
    if (!strcmp(v, "affinity")) { cpu_set_t set; CPU_ZERO(&set); CPU_SET(0, &set); return sched_setaffinity(target, sizeof set, &set); }
    if (!strcmp(v, "setscheduler")) { struct sched_param p = {0}; return sched_setscheduler(target, SCHED_BATCH, &p); }
    if (!strcmp(v, "ioprio")) return syscall(SYS_ioprio_set, 1, target, (3 << 13)); /* WHO_PROCESS, CLASS_IDLE */
    if (!strcmp(v, "ioprio_pgrp")) return syscall(SYS_ioprio_set, 2, group, (3 << 13));
    if (!strcmp(v, "kcmp")) return syscall(SYS_kcmp, target, getpid(), KCMP_VM, 0, 0);
    if (!strcmp(v, "perf")) {
        struct perf_event_attr a;
        memset(&a, 0, sizeof a);
        a.size = sizeof a;
        a.type = PERF_TYPE_SOFTWARE;
        a.config = PERF_COUNT_SW_TASK_CLOCK;
        a.exclude_kernel = 1;
        return syscall(SYS_perf_event_open, &a, target, -1, -1, 0);
    }
    if (!strcmp(v, "migrate_pages")) { unsigned long mask = 1; return syscall(SYS_migrate_pages, target, 2, &mask, &mask); }
    if (!strcmp(v, "setparam")) { struct sched_param p = {0}; return sched_setparam(target, &p); }
    if (!strcmp(v, "setattr")) {
        unsigned int attr[14] = {56, 3 /* SCHED_BATCH */};  /* struct sched_attr, size 56 */
        return syscall(SYS_sched_setattr, target, attr, 0);
    }
    if (!strcmp(v, "move_pages")) return syscall(SYS_move_pages, target, 0, NULL, NULL, NULL, 0);
    if (!strcmp(v, "pidfd_open")) return syscall(SYS_pidfd_open, target, 0);
    if (!strcmp(v, "madvise")) {  /* MADV_COLD, no range: the access check is the attack */
        int fd = syscall(SYS_pidfd_open, target, 0);
        struct iovec none = {NULL, 0};
        return fd < 0 ? -1 : syscall(SYS_process_madvise, fd, &none, 1, 20, 0);
    }
    if (!strcmp(v, "robust_list")) { void *head; size_t len; return syscall(SYS_get_robust_list, target, &head, &len); }
    /* calls that only read the target's state: that they answer is the attack (they say
       it exists, and what it runs with) */
    if (!strcmp(v, "getpriority")) { errno = 0; int r = getpriority(PRIO_PROCESS, target); return r == -1 && errno ? -1 : 0; }
    if (!strcmp(v, "ioprio_get")) return syscall(SYS_ioprio_get, 1, target);
    if (!strcmp(v, "getparam")) { struct sched_param p; return sched_getparam(target, &p); }
    if (!strcmp(v, "getscheduler")) return sched_getscheduler(target);
    if (!strcmp(v, "getaffinity")) { cpu_set_t set; return sched_getaffinity(target, sizeof set, &set); }
    if (!strcmp(v, "getattr")) { unsigned int attr[14]; return syscall(SYS_sched_getattr, target, attr, sizeof attr, 0); }
    if (!strcmp(v, "rr_interval")) { struct timespec t; return sched_rr_get_interval(target, &t); }
    if (!strcmp(v, "getpgid")) return getpgid(target);
    if (!strcmp(v, "getsid")) return getsid(target);
    if (!strcmp(v, "capget")) {  /* its capability sets */
        struct { unsigned int version; int pid; } header = {0x20080522, target};
        unsigned int data[6];
        return syscall(SYS_capget, &header, data);
    }
    /* the target's CPU-time clock: read, its resolution, a timer on it */
    clockid_t clock = ((~(clockid_t)target) << 3) | 2;  /* CPUCLOCK_SCHED of the process */
    if (!strcmp(v, "cpuclock")) { struct timespec t; return syscall(SYS_clock_gettime, clock, &t); }
    if (!strcmp(v, "cpuclock_res")) { struct timespec t; return syscall(SYS_clock_getres, clock, &t); }
    if (!strcmp(v, "cpuclock_timer")) {
        struct sigevent event = {.sigev_notify = SIGEV_NONE};
        timer_t timer;
        return syscall(SYS_timer_create, clock, &event, &timer);
    }
    fprintf(stderr, "unknown vector %s\n", v);
    exit(2);
}

static struct sockaddr_in server;
static void *blocking_connect(void *unused) {
    (void)unused;
    int s = socket(AF_INET, SOCK_STREAM, 0);
    connect(s, (struct sockaddr *)&server, sizeof server);
    return NULL;
}

static const char *fifo_path;
static void *blocking_open(void *unused) {
    (void)unused;
    open(fifo_path, O_RDONLY);  /* no writer: systrace's helper waits in it */
    return NULL;
}

/* /proc, opened once before any attack (each scan rewinds it: no open that systrace
   decides, which could fail under load, between the attack and the verdict) */
static DIR *proc_scan, *proc_check;

/* Is `pid` listed in /proc (a process, a zombie not yet reaped included)? */
static int listed(pid_t pid) {
    struct dirent *e;
    int found = 0;
    rewinddir(proc_check);
    while (!found && (e = readdir(proc_check))) found = atoi(e->d_name) == pid;
    return found;
}

/* Hidden: listed in /proc, but getpgid answers ESRCH (systrace answers so for itself and
   its helpers; a process of the machine that exited meanwhile is not listed again). */
static int hidden(pid_t pid) {
    return getpgid(pid) < 0 && errno == ESRCH && listed(pid);
}

/* A helper is found without opening its /proc entry (systrace refuses that whatever the
   policy says): a pid, neither us nor systrace, hidden now and still 100 ms later (not a
   child forked with a reserved pid, which exits at once, nor a memory reader systrace
   gave up on, on its way out). */
static pid_t find_helper(void) {
    pid_t parent = getppid(), me = getpid();
    for (int round = 0; round < 200000; round++) {
        struct dirent *e;
        rewinddir(proc_scan);
        while ((e = readdir(proc_scan))) {
            pid_t pid = atoi(e->d_name);
            if (pid <= 0 || pid == me || pid == parent) continue;
            if (!hidden(pid)) continue;
            usleep(100000);
            if (hidden(pid)) return pid;
        }
        sched_yield();
    }
    return 0;
}

/* Alive: a signal 0 finds it (EPERM: Landlock refuses signals to processes outside the
   run, which exist), or, when it says ESRCH (the filter's answer for a replica's pid),
   /proc still lists it. A helper systrace has not reaped yet counts as alive until it is
   reaped: systrace reaps a killed helper at once. */
static int alive(pid_t pid) {
    return kill(pid, 0) == 0 || errno == EPERM || (errno == ESRCH && listed(pid));
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IONBF, 0);
    signal(SIGIO, SIG_IGN);  /* a group-owned SIGIO reaches us too */
    int replica = argc == 3 && !strcmp(argv[1], "replica");  /* --supervisors: one of systrace's replicas */
    if (replica || (argc == 5 && !strcmp(argv[1], "helper")) || (argc == 4 && !strcmp(argv[1], "fifohelper"))) {
        pthread_t t;
        proc_scan = opendir("/proc");
        proc_check = opendir("/proc");
        if (!proc_scan || !proc_check) { printf("cannot open /proc\n"); return 3; }
        if (replica) {
        } else if (argc == 4) {
            fifo_path = argv[3];
            pthread_create(&t, NULL, blocking_open, NULL);
        } else {
            server.sin_family = AF_INET;
            server.sin_port = htons(atoi(argv[4]));
            inet_pton(AF_INET, argv[3], &server.sin_addr);
            pthread_create(&t, NULL, blocking_connect, NULL);
        }
        target = find_helper();
        if (!target) { printf("no helper found\n"); return 3; }
        group = getpgrp();  /* the helper is in our group (systrace's), which getpgid does not say */
        attack(argv[2]) < 0 ? result(argv[2], -1) : result(argv[2], 0);
        /* the signal vectors work, if at all, by killing it */
        for (int i = 0; i < 1000 && alive(target); i++) usleep(1000);
        printf("helper %s\n", alive(target) ? "alive" : "dead");
        fflush(stdout);
        _exit(0);  /* the connect thread is still waiting */
    }
    if (argc != 4) { fprintf(stderr, "usage: reach VECTOR PID PGID | reach helper VECTOR HOST PORT\n"); return 2; }
    target = atoi(argv[2]) ? atoi(argv[2]) : getppid();
    group = atoi(argv[3]) ? atoi(argv[3]) : getpgrp();
    result(argv[1], attack(argv[1]));
    return 0;
}
