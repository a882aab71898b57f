/* Vectors found auditing the system call table by class (tests/escape/test_audit_by_class.py).
   Each mode prints "MODE: RESULT" on one line.
     audit lease FILE ON        holds a read lease on FILE (ON=1; 0: the same calls without
                                it) while a child opens FILE for writing; once the child waits
                                in its open (the lease-break signal says so), makes a routed
                                call of its own (an open of FILE, read-only) and prints
                                "served" when that came back while the child was still
                                waiting, "stalled" when only after it had gone on.
     audit wlease-exec FILE ON  opens FILE (a script) for writing, takes a write lease on it
                                (ON=1), and a child execs it; if an open then waits for the
                                lease (its break signal), makes a routed call: "stalled" when
                                that came back only once the kernel had downgraded the lease
                                (lease-break-time), else "served"
     audit exec FILE            execve(FILE): its errno
     audit plain FILE           open(FILE) read-only, the path in ordinary memory
     audit setflags A B WHICH   opens A and B read-only and toggles FS_NODUMP_FL on WHICH's
                                descriptor (FS_IOC_GETFLAGS / FS_IOC_SETFLAGS), then restores it
     audit timer-tid TID        timer_create(SIGEV_THREAD_ID) delivering to TID ("self": ours)
     audit getprio PID          getpriority(PRIO_PROCESS, PID): reads another process's nice
                                value ("child": a child of ours)
     audit fanotify FILE ON     a FAN_OPEN_PERM mark on FILE (ON=1, 2; 0: none), then a child
                                opens FILE; the event is answered (allowed) at once (ON=2) or
                                only once our own routed call (a read-only open of FILE's
                                directory) has come back (ON=1): "served" when that call came
                                back while the child still waited (natively it always does)
     audit secret FILE          openat(FILE) with the path in memfd_secret memory (which no
                                other process can read)
     audit exitsig HOW          a child whose exit signal is SIGKILL: HOW=child (its parent, us,
                                gets it), parent (CLONE_PARENT: our parent would), orphan (we
                                exit first: it goes to whoever adopts it)
     audit key-add DESC VALUE   adds a "user" key DESC to the user keyring (@u)
     audit key-read DESC        finds the "user" key DESC in @u and reads it (KEYCTL_SEARCH,
                                KEYCTL_READ)
     audit key-drop DESC        unlinks the "user" key DESC from @u
     audit netlink WHICH        a netlink dump: WHICH=route (NETLINK_ROUTE, the links: what
                                getaddrinfo's AI_ADDRCONFIG asks) or diag (NETLINK_SOCK_DIAG:
                                every unix socket of the machine); "ok" when it listed some
     audit traceme HOW          ptrace(PTRACE_TRACEME) makes the caller's parent its tracer,
                                then a signal stops it until that tracer lets it go on:
                                HOW=child (natively: we are the tracer of a child that does
                                it: "we are its tracer"), self (our parent), orphan (after
                                our parent exits: whoever adopts us); "went on" once the
                                handler of the signal ran */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <linux/unix_diag.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/fanotify.h>
#include <sys/mman.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t broken;

static void on_break(int sig) {
    (void)sig;
    broken = 1;
}

static int report(const char *mode, const char *what) {
    printf("%s: %s\n", mode, what);
    return 0;
}

static int report_errno(const char *mode, long result) {
    return report(mode, result < 0 ? strerrorname_np(errno) : "ok");
}

/* Install `handler` for `sig` and block it (it is taken in sigsuspend); the old mask. */
static sigset_t catch_blocked(int sig, void (*handler)(int)) {
    struct sigaction action = {.sa_handler = handler};
    sigemptyset(&action.sa_mask);
    sigaction(sig, &action, NULL);
    sigset_t blocked, old;
    sigemptyset(&blocked);
    sigaddset(&blocked, sig);
    sigprocmask(SIG_BLOCK, &blocked, &old);
    return old;
}

static int lease(const char *file, int on) {
    sigset_t old = catch_blocked(SIGIO, on_break);
    int fd = open(file, O_RDONLY);
    if (fd < 0 || (on && fcntl(fd, F_SETLEASE, F_RDLCK) < 0))
        return report_errno("lease setup", -1);
    fflush(stdout);
    pid_t child = fork();
    if (child == 0) {
        int w = open(file, O_WRONLY);
        _exit(w < 0 ? 1 : 0);
    }
    if (on)
        while (!broken)
            sigsuspend(&old); /* the child now waits in its open */
    int again = open(file, O_RDONLY); /* routed: systrace must answer it meanwhile */
    int waiting = waitpid(child, NULL, WNOHANG) == 0;
    if (on)
        fcntl(fd, F_SETLEASE, F_UNLCK);
    int status;
    waitpid(child, &status, 0);
    if (again < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
        return report("lease", "failed");
    return report("lease", on && !waiting ? "stalled" : "served");
}

static volatile sig_atomic_t child_done;

static void on_child(int sig) {
    (void)sig;
    child_done = 1;
}

/* Is the lease on this inode still being broken, by /proc/locks (opening it is a routed
   call)? Once lease-break-time has passed the kernel has downgraded it: no longer so. */
static int breaking(ino_t inode) {
    FILE *locks = fopen("/proc/locks", "r");
    char line[256], tail[64];
    snprintf(tail, sizeof tail, ":%lu ", (unsigned long)inode);
    int found = 0;
    while (locks && fgets(line, sizeof line, locks))
        found |= strstr(line, "BREAKING") && strstr(line, tail);
    if (locks)
        fclose(locks);
    return found;
}

static int wlease_exec(const char *file, int on) {
    sigset_t old = catch_blocked(SIGIO, on_break);
    catch_blocked(SIGCHLD, on_child);
    int fd = open(file, O_WRONLY);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0 || (on && fcntl(fd, F_SETLEASE, F_WRLCK) < 0))
        return report_errno("wlease-exec setup", -1);
    fflush(stdout);
    pid_t child = fork();
    if (child == 0) {
        char *argv[] = {(char *)file, NULL};
        sigprocmask(SIG_SETMASK, &old, NULL);
        execve(file, argv, environ);
        _exit(errno == ETXTBSY ? 3 : 4);
    }
    while (!broken && !child_done)
        sigsuspend(&old); /* the exec is done, or someone's open waits for our lease */
    /* a routed call: if it came back only once the lease break timed out, the kernel has
       downgraded the lease meanwhile */
    int still = breaking(st.st_ino);
    int status;
    if (on)
        fcntl(fd, F_SETLEASE, F_UNLCK);
    waitpid(child, &status, 0);
    if (!on)
        return report("wlease-exec", "served");
    return report("wlease-exec", broken && !still ? "stalled" : "served");
}

static int exec_path(const char *file) {
    char *argv[] = {(char *)file, NULL};
    fflush(stdout);
    execve(file, argv, environ);
    return report_errno("exec", -1);
}

static int plain(const char *file) {
    return report_errno("plain", open(file, O_RDONLY));
}

static int setflags(const char *a, const char *b, const char *which) {
    int fa = open(a, O_RDONLY), fb = open(b, O_RDONLY);
    if (fa < 0 || fb < 0)
        return report_errno("setflags setup", -1);
    int fd = strcmp(which, "A") == 0 ? fa : fb, flags;
    if (ioctl(fd, FS_IOC_GETFLAGS, &flags) < 0)
        return report_errno("setflags", -1);
    int changed = flags ^ FS_NODUMP_FL;
    long r = ioctl(fd, FS_IOC_SETFLAGS, &changed);
    if (r == 0)
        ioctl(fd, FS_IOC_SETFLAGS, &flags);
    return report_errno("setflags", r);
}

static int timer_tid(const char *text) {
    pid_t tid = strcmp(text, "self") == 0 ? gettid() : (pid_t)atoi(text);
    struct sigevent event = {.sigev_notify = SIGEV_THREAD_ID, .sigev_signo = SIGCONT};
    event._sigev_un._tid = tid;
    timer_t timer;
    return report_errno("timer-tid", syscall(SYS_timer_create, CLOCK_MONOTONIC, &event, &timer));
}

static int getprio(const char *text) {
    pid_t pid = (pid_t)atoi(text), child = 0;
    if (strcmp(text, "child") == 0) {
        child = fork();
        if (child == 0) {
            pause();
            _exit(0);
        }
        pid = child;
    }
    errno = 0;
    long r = getpriority(PRIO_PROCESS, pid);
    int status = report_errno("getprio", r == -1 && errno ? -1 : 0);
    if (child > 0) {
        kill(child, SIGKILL);
        waitpid(child, NULL, 0);
    }
    return status;
}

static void answer(int group, struct fanotify_event_metadata *event) {
    struct fanotify_response allow = {.fd = event->fd, .response = FAN_ALLOW};
    if (write(group, &allow, sizeof allow) < 0)
        perror("fanotify answer");
    close(event->fd);
}

static int fanotify(const char *file, int on) {
    int group = -1;
    if (on) {
        group = fanotify_init(FAN_CLASS_CONTENT | FAN_CLOEXEC, O_RDONLY);
        if (group < 0 || fanotify_mark(group, FAN_MARK_ADD, FAN_OPEN_PERM, AT_FDCWD, file) < 0)
            return report_errno("fanotify setup", -1);
    }
    int ready[2];
    if (pipe(ready) < 0)
        return report_errno("fanotify setup", -1);
    pid_t child = fork();
    if (child == 0) {
        close(ready[0]);
        int fd = open(file, O_RDONLY);
        _exit(fd < 0 ? 1 : 0);
    }
    close(ready[1]);
    struct fanotify_event_metadata event;
    if (on) { /* the child (or whoever opens for it) now waits for our answer */
        if (read(group, &event, sizeof event) < (long)sizeof event)
            return report_errno("fanotify read", -1);
        if (on == 2) /* the harmless variant: answered at once */
            answer(group, &event);
    }
    char directory[4096];
    snprintf(directory, sizeof directory, "%s", file);
    *strrchr(directory, '/') = 0;
    int again = open(directory, O_RDONLY | O_DIRECTORY); /* routed: must be answered meanwhile */
    int waiting = waitpid(child, NULL, WNOHANG) == 0;
    if (on == 1)
        answer(group, &event);
    int status;
    waitpid(child, &status, 0);
    if (again < 0 || !WIFEXITED(status))
        return report("fanotify", "failed");
    return report("fanotify", on == 1 && !waiting ? "stalled" : "served");
}

static int secret(const char *file) {
    long fd = syscall(SYS_memfd_secret, 0);
    if (fd < 0 || ftruncate(fd, 4096) < 0)
        return report_errno("secret setup", -1);
    char *page = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (page == MAP_FAILED)
        return report_errno("secret setup", -1);
    snprintf(page, 4096, "%s", file);
    return report_errno("secret", openat(AT_FDCWD, page, O_RDONLY));
}

static int exitsig(const char *how) {
    int parent = strcmp(how, "parent") == 0, orphan = strcmp(how, "orphan") == 0;
    fflush(stdout);
    if (orphan && fork() != 0) { /* the middle process: gone before its child exits */
        int status;
        wait(&status);
        return report("exitsig", "survived");
    }
    int go[2];
    if (pipe(go) < 0)
        return report_errno("exitsig setup", -1);
    long child = syscall(SYS_clone, (parent ? CLONE_PARENT : 0) | SIGKILL, NULL, NULL, NULL, NULL);
    if (child == 0) {
        char byte;
        close(go[1]);
        read(go[0], &byte, 1); /* until the one that made us is gone (orphan) */
        _exit(0);
    }
    if (child < 0)
        return report_errno("exitsig", -1);
    close(go[0]);
    if (orphan)
        _exit(0); /* our end of the pipe closes: the child, now adopted, exits */
    close(go[1]);
    if (!parent) /* our own child: its exit signal is for us */
        pause();
    return report("exitsig", "survived");
}

#define KEYCTL_READ 11
#define KEYCTL_SEARCH 10
#define KEYCTL_UNLINK 9
#define KEY_SPEC_USER_KEYRING -4

static int key_add(const char *description, const char *value) {
    return report_errno("key-add", syscall(SYS_add_key, "user", description, value, strlen(value),
                                           KEY_SPEC_USER_KEYRING));
}

static int key_drop(const char *description) {
    long key = syscall(SYS_keyctl, KEYCTL_SEARCH, KEY_SPEC_USER_KEYRING, "user", description, 0);
    return report_errno("key-drop", key < 0 ? key : syscall(SYS_keyctl, KEYCTL_UNLINK, key, KEY_SPEC_USER_KEYRING));
}

static int key_read(const char *description) {
    long key = syscall(SYS_keyctl, KEYCTL_SEARCH, KEY_SPEC_USER_KEYRING, "user", description, 0);
    char value[256];
    if (key < 0)
        return report_errno("key-read search", -1);
    return report_errno("key-read", syscall(SYS_keyctl, KEYCTL_READ, key, value, sizeof value));
}

static int netlink(const char *which) {
    int diag = strcmp(which, "diag") == 0;
    int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, diag ? NETLINK_SOCK_DIAG : NETLINK_ROUTE);
    if (fd < 0)
        return report_errno("netlink", -1);
    struct {
        struct nlmsghdr header;
        union {
            struct rtgenmsg route;
            struct unix_diag_req unix_sockets;
        } body;
    } request;
    memset(&request, 0, sizeof request);
    request.header.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
    if (diag) {
        request.header.nlmsg_type = SOCK_DIAG_BY_FAMILY;
        request.header.nlmsg_len = NLMSG_LENGTH(sizeof request.body.unix_sockets);
        request.body.unix_sockets.sdiag_family = AF_UNIX;
        request.body.unix_sockets.udiag_states = -1;
        request.body.unix_sockets.udiag_show = UDIAG_SHOW_NAME;
    } else {
        request.header.nlmsg_type = RTM_GETLINK;
        request.header.nlmsg_len = NLMSG_LENGTH(sizeof request.body.route);
        request.body.route.rtgen_family = AF_UNSPEC;
    }
    struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};
    if (sendto(fd, &request, request.header.nlmsg_len, 0, (struct sockaddr *)&kernel, sizeof kernel) < 0)
        return report_errno("netlink", -1);
    static char buffer[65536];
    long got = recv(fd, buffer, sizeof buffer, 0);
    int entries = 0;
    for (struct nlmsghdr *h = (struct nlmsghdr *)buffer; got > 0 && NLMSG_OK(h, got); h = NLMSG_NEXT(h, got))
        entries += h->nlmsg_type != NLMSG_DONE && h->nlmsg_type != NLMSG_ERROR;
    return report("netlink", entries > 0 ? "ok" : "nothing");
}

static volatile sig_atomic_t usr1, adopted;

static void on_usr1(int sig) {
    (void)sig;
    usr1 = 1;
}

static void on_adopted(int sig) {
    (void)sig;
    adopted = 1;
}

/* PTRACE_TRACEME, then a signal: a tracee stops at every signal until its tracer lets it
   go on. Prints "went on" once the handler ran. */
static int traced_then_signalled(void) {
    struct sigaction action = {.sa_handler = on_usr1};
    sigemptyset(&action.sa_mask);
    sigaction(SIGUSR1, &action, NULL);
    if (ptrace(PTRACE_TRACEME, 0, 0, 0) < 0)
        return report_errno("traceme", -1);
    raise(SIGUSR1);
    return report("traceme", usr1 ? "went on" : "lost its signal");
}

static int traceme(const char *how) {
    fflush(stdout);
    if (strcmp(how, "child") == 0) { /* natively: we become our child's tracer */
        pid_t child = fork();
        if (child == 0)
            _exit(traced_then_signalled());
        int status;
        waitpid(child, &status, 0);
        report("traceme", WIFSTOPPED(status) ? "we are its tracer" : "not traced");
        kill(child, SIGKILL);
        waitpid(child, &status, 0);
        return 0;
    }
    if (strcmp(how, "orphan") == 0) { /* adopted first (by the subreaper), then traced */
        sigset_t old = catch_blocked(SIGUSR2, on_adopted);
        pid_t parent = getpid();
        if (fork() != 0)
            _exit(0);
        prctl(PR_SET_PDEATHSIG, SIGUSR2); /* sent once we have been given to our adopter */
        if (getppid() == parent)
            while (!adopted)
                sigsuspend(&old);
    }
    return traced_then_signalled();
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc == 4 && strcmp(argv[1], "lease") == 0)
        return lease(argv[2], atoi(argv[3]));
    if (argc == 4 && strcmp(argv[1], "wlease-exec") == 0)
        return wlease_exec(argv[2], atoi(argv[3]));
    if (argc == 5 && strcmp(argv[1], "setflags") == 0)
        return setflags(argv[2], argv[3], argv[4]);
    if (argc == 3 && strcmp(argv[1], "timer-tid") == 0)
        return timer_tid(argv[2]);
    if (argc == 3 && strcmp(argv[1], "getprio") == 0)
        return getprio(argv[2]);
    if (argc == 4 && strcmp(argv[1], "fanotify") == 0)
        return fanotify(argv[2], atoi(argv[3]));
    if (argc == 3 && strcmp(argv[1], "secret") == 0)
        return secret(argv[2]);
    if (argc == 3 && strcmp(argv[1], "exitsig") == 0)
        return exitsig(argv[2]);
    if (argc == 4 && strcmp(argv[1], "key-add") == 0)
        return key_add(argv[2], argv[3]);
    if (argc == 3 && strcmp(argv[1], "traceme") == 0)
        return traceme(argv[2]);
    if (argc == 3 && strcmp(argv[1], "netlink") == 0)
        return netlink(argv[2]);
    if (argc == 3 && strcmp(argv[1], "key-drop") == 0)
        return key_drop(argv[2]);
    if (argc == 3 && strcmp(argv[1], "exec") == 0)
        return exec_path(argv[2]);
    if (argc == 3 && strcmp(argv[1], "plain") == 0)
        return plain(argv[2]);
    if (argc == 3 && strcmp(argv[1], "key-read") == 0)
        return key_read(argv[2]);
    return 2;
}
