/* Sends with a destination, each case printing what the call returned and what the
   receiver got: compared natively and under systrace (the policy learned from the same
   run). usage: send_cases DIR PORT [drop]  (DIR/recv.sock is bound here; PORT a UDP port
   of 127.0.0.1 nobody reads, for inet cases; drop: become nobody first) */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

static int receiver, sender;
static struct sockaddr_un to;
static struct sockaddr_in inet_to;
static char *unmapped;
static volatile int pipes_signalled;

static void on_sigpipe(int number) { (void)number; pipes_signalled++; }

static void result(const char *name, long n) {
    if (n < 0) printf("%s: %s\n", name, strerrorname_np(errno));
    else printf("%s: %ld\n", name, n);
}

/* what arrived: the bytes, descriptors, credentials */
static void received(const char *name) {
    char data[256], control[512];
    struct iovec iov = {data, sizeof data};
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control, .msg_controllen = sizeof control};
    long n = recvmsg(receiver, &msg, MSG_DONTWAIT);
    if (n < 0) { printf("  %s got: %s\n", name, strerrorname_np(errno)); return; }
    printf("  %s got %ld bytes '%.*s'", name, n, (int)n, data);
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_type == SCM_RIGHTS) {
            int fd;
            memcpy(&fd, CMSG_DATA(c), sizeof fd);
            struct stat st, own;
            fstat(fd, &st);
            fstat(1, &own);
            printf(" rights %s", st.st_ino == own.st_ino && st.st_dev == own.st_dev ? "stdout" : "other");
            close(fd);
        } else if (c->cmsg_type == SCM_CREDENTIALS) {
            struct ucred cred;
            memcpy(&cred, CMSG_DATA(c), sizeof cred);
            printf(" creds pid %s uid %d gid %d", cred.pid == getpid() ? "self" : cred.pid == 1 ? "1" : "other",
                   cred.uid, cred.gid);
        }
    }
    printf("\n");
}

static long with_control(void *control, size_t length, int flags) {
    char data[] = "cm";
    struct iovec iov = {data, 2};
    struct msghdr msg = {.msg_name = &to, .msg_namelen = sizeof to, .msg_iov = &iov, .msg_iovlen = 1,
                         .msg_control = control, .msg_controllen = length};
    return sendmsg(sender, &msg, flags);
}

static long rights(int fd) {
    union { char buf[CMSG_SPACE(sizeof(int))]; struct cmsghdr align; } u;
    memset(&u, 0, sizeof u);
    struct cmsghdr *c = &u.align;
    c->cmsg_len = CMSG_LEN(sizeof(int)); c->cmsg_level = SOL_SOCKET; c->cmsg_type = SCM_RIGHTS;
    memcpy(CMSG_DATA(c), &fd, sizeof fd);
    return with_control(u.buf, sizeof u.buf, 0);
}

static long credentials(pid_t pid, uid_t uid, gid_t gid) {
    union { char buf[CMSG_SPACE(sizeof(struct ucred))]; struct cmsghdr align; } u;
    memset(&u, 0, sizeof u);
    struct cmsghdr *c = &u.align;
    c->cmsg_len = CMSG_LEN(sizeof(struct ucred)); c->cmsg_level = SOL_SOCKET; c->cmsg_type = SCM_CREDENTIALS;
    struct ucred cred = {pid, uid, gid};
    memcpy(CMSG_DATA(c), &cred, sizeof cred);
    return with_control(u.buf, sizeof u.buf, 0);
}

int main(int argc, char **argv) {
    if (argc != 3 && argc != 4) { fprintf(stderr, "usage: send_cases DIR PORT [drop]\n"); return 2; }
    if (argc == 4 && (setgroups(0, NULL) < 0 || setgid(65534) < 0 || setuid(65534) < 0)) { perror("drop"); return 1; }
    to.sun_family = AF_UNIX;
    snprintf(to.sun_path, sizeof to.sun_path, "%s/recv.sock", argv[1]);
    inet_to.sin_family = AF_INET;
    inet_to.sin_port = htons(atoi(argv[2]));
    inet_to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    unlink(to.sun_path);
    receiver = socket(AF_UNIX, SOCK_DGRAM, 0);
    if (bind(receiver, (struct sockaddr *)&to, sizeof to) < 0) { perror("bind"); return 1; }
    int one = 1;
    setsockopt(receiver, SOL_SOCKET, SO_PASSCRED, &one, sizeof one);
    sender = socket(AF_UNIX, SOCK_DGRAM, 0);
    unmapped = mmap(NULL, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    char data[] = "hello";

    result("sendto", sendto(sender, data, 5, 0, (struct sockaddr *)&to, sizeof to));
    received("sendto");
    result("sendto empty", sendto(sender, NULL, 0, 0, (struct sockaddr *)&to, sizeof to));
    received("sendto empty");
    result("sendto bad buffer", sendto(sender, unmapped, 5, 0, (struct sockaddr *)&to, sizeof to));
    result("sendto MSG_OOB", sendto(sender, data, 5, MSG_OOB, (struct sockaddr *)&to, sizeof to));
    result("sendto bad fd", sendto(999, data, 5, 0, (struct sockaddr *)&to, sizeof to));
    int pipes[2];
    pipe(pipes);
    result("sendto not a socket", sendto(pipes[1], data, 5, 0, (struct sockaddr *)&to, sizeof to));
    result("sendto bad address", sendto(sender, data, 5, 0, (struct sockaddr *)unmapped, sizeof to));
    result("sendto address too long", sendto(sender, data, 5, 0, (struct sockaddr *)&to, 200));
    int inet = socket(AF_INET, SOCK_DGRAM, 0);
    result("sendto inet", sendto(inet, data, 5, 0, (struct sockaddr *)&inet_to, sizeof inet_to));
    result("sendto inet bad buffer", sendto(inet, unmapped, 5, 0, (struct sockaddr *)&inet_to, sizeof inet_to));

    struct iovec parts[3] = {{"ab", 2}, {"", 0}, {"cde", 3}};
    struct msghdr msg = {.msg_name = &to, .msg_namelen = sizeof to, .msg_iov = parts, .msg_iovlen = 3};
    result("sendmsg gather", sendmsg(sender, &msg, 0));
    received("sendmsg gather");
    msg.msg_iovlen = 1025;
    result("sendmsg iovlen 1025", sendmsg(sender, &msg, 0));
    msg.msg_iov = (struct iovec *)unmapped; msg.msg_iovlen = 1;
    result("sendmsg bad iov", sendmsg(sender, &msg, 0));
    struct iovec bad_base = {unmapped, 4};
    msg.msg_iov = &bad_base;
    result("sendmsg bad iov base", sendmsg(sender, &msg, 0));
    result("sendmsg bad msghdr", sendmsg(sender, (struct msghdr *)unmapped, 0));

    result("rights", rights(1));
    received("rights");
    result("rights bad fd", rights(999));
    result("bad control", with_control(unmapped, 32, 0));
    char junk[32] = {0};
    size_t too_long = 100;
    memcpy(junk, &too_long, sizeof too_long);
    result("bad cmsg_len", with_control(junk, sizeof junk, 0));
    result("control too large", with_control(junk, 1 << 30, 0));
    result("credentials own", credentials(getpid(), getuid(), getgid()));
    received("credentials own");
    result("credentials pid 1", credentials(1, getuid(), getgid()));
    received("credentials pid 1");
    result("credentials uid -1", credentials(getpid(), (uid_t)-1, getgid()));

    struct mmsghdr many[3];
    struct iovec one_each[3] = {{"m1", 2}, {"m2", 2}, {"m3", 2}};
    memset(many, 0, sizeof many);
    for (int i = 0; i < 3; i++) {
        many[i].msg_hdr.msg_name = &to; many[i].msg_hdr.msg_namelen = sizeof to;
        many[i].msg_hdr.msg_iov = &one_each[i]; many[i].msg_hdr.msg_iovlen = 1;
        many[i].msg_len = 77;
    }
    result("sendmmsg", sendmmsg(sender, many, 3, 0));
    printf("  msg_len %u %u %u\n", many[0].msg_len, many[1].msg_len, many[2].msg_len);
    for (int i = 0; i < 3; i++) received("sendmmsg");

    /* a full receiver: MSG_DONTWAIT fails at once, a blocking send waits for a reader */
    long queued = 0;
    while (sendto(sender, "q", 1, MSG_DONTWAIT, (struct sockaddr *)&to, sizeof to) == 1) queued++;
    printf("full after %ld: %s\n", queued, strerrorname_np(errno));
    pid_t reader = fork();
    if (reader == 0) {  /* drains one at a time, with a routed call each time */
        char byte;
        for (long i = 0; i <= queued; i++) {
            access(to.sun_path, F_OK);
            recv(receiver, &byte, 1, 0);
        }
        _exit(0);
    }
    result("blocking send to a full receiver", sendto(sender, "z", 1, 0, (struct sockaddr *)&to, sizeof to));
    int status;
    waitpid(reader, &status, 0);
    printf("reader %d\n", WEXITSTATUS(status));
    /* a TCP peer gone: EPIPE, and SIGPIPE unless MSG_NOSIGNAL (the destination is ignored) */
    int listener = socket(AF_INET, SOCK_STREAM, 0), yes = 1;
    setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
    if (bind(listener, (struct sockaddr *)&inet_to, sizeof inet_to) < 0 || listen(listener, 1) < 0) {
        perror("tcp"); return 1;
    }
    signal(SIGPIPE, on_sigpipe);
    for (int nosignal = 0; nosignal < 2; nosignal++) {
        int client = socket(AF_INET, SOCK_STREAM, 0);
        connect(client, (struct sockaddr *)&inet_to, sizeof inet_to);
        close(accept(listener, NULL, NULL));
        int before = pipes_signalled, epipe = 0;
        for (int i = 0; i < 20 && !epipe; i++)
            epipe = sendto(client, "x", 1, nosignal ? MSG_NOSIGNAL : 0, (struct sockaddr *)&inet_to,
                           sizeof inet_to) < 0 && errno == EPIPE;
        printf("peer gone%s: EPIPE %d SIGPIPE %d\n", nosignal ? " MSG_NOSIGNAL" : "", epipe, pipes_signalled - before);
        close(client);
    }
    unlink(to.sun_path);
    return 0;
}
