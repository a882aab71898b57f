/* A program that sandboxes itself with Landlock, then tries one kind of access inside
 * its ruleset (DIR/in, or the allowed port) and outside it (DIR/out, the other port).
 *
 *   landlock_self FAMILY DIR [PORT_IN PORT_OUT | ABSTRACT_NAME]
 *
 * prints "in RESULT out RESULT" (OK, or the errno's name). The fixtures are made before
 * restricting. Families: read write fifo create truncate-open truncate exec readdir mkdir
 * mknod symlink unlink rmdir rename link bind-unix bind-tcp connect-tcp abstract abstract-send. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/landlock.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef LANDLOCK_ACCESS_FS_REFER
#define LANDLOCK_ACCESS_FS_REFER (1ULL << 13)
#endif
#ifndef LANDLOCK_ACCESS_FS_TRUNCATE
#define LANDLOCK_ACCESS_FS_TRUNCATE (1ULL << 14)
#endif
#define ACCESS_NET_BIND_TCP (1ULL << 0)
#define ACCESS_NET_CONNECT_TCP (1ULL << 1)
#define SCOPE_ABSTRACT_UNIX_SOCKET (1ULL << 0)
#define RULE_NET_PORT 2

struct ruleset_attr { __u64 fs, net, scoped; };
struct path_beneath { __u64 allowed; __s32 parent_fd; } __attribute__((packed));
struct net_port { __u64 allowed; __u64 port; };

static const char *dir;
static int ruleset = -1;

static const char *result(int rc) {
    static char buf[32];
    if (rc >= 0) return "OK";
    switch (errno) {
    case EACCES: return "EACCES";
    case EXDEV: return "EXDEV";
    case EPERM: return "EPERM";
    case ENOENT: return "ENOENT";
    default: snprintf(buf, sizeof buf, "E%d", errno); return buf;
    }
}

static char *at(const char *side, const char *name) {
    char *path;
    if (asprintf(&path, "%s/%s%s%s", dir, side, *name ? "/" : "", name) < 0) exit(3);
    return path;
}

static __u64 handled_fs;

static void make_ruleset(__u64 fs, __u64 net, __u64 scoped) {
    struct ruleset_attr attr = {fs, net, scoped};
    handled_fs = fs;
    ruleset = syscall(SYS_landlock_create_ruleset, &attr, sizeof attr, 0);
    if (ruleset < 0) { perror("landlock_create_ruleset"); exit(4); }
}

static void allow_path(const char *path, __u64 allowed) {
    struct path_beneath rule = {allowed, open(path, O_PATH | O_CLOEXEC)};
    if (rule.parent_fd < 0 || syscall(SYS_landlock_add_rule, ruleset, LANDLOCK_RULE_PATH_BENEATH, &rule, 0)) {
        perror(path); exit(4);
    }
    close(rule.parent_fd);
}

static void allow_port(int port, __u64 allowed) {
    struct net_port rule = {allowed, port};
    if (syscall(SYS_landlock_add_rule, ruleset, RULE_NET_PORT, &rule, 0)) { perror("port rule"); exit(4); }
}

static void restrict_self(void) {
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) || syscall(SYS_landlock_restrict_self, ruleset, 0)) {
        perror("landlock_restrict_self"); exit(4);
    }
    close(ruleset);
}

static void file(const char *side, const char *name) {
    int fd = open(at(side, name), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0 || write(fd, "data\n", 5) != 5) { perror(name); exit(3); }
    close(fd);
}

static void subdir(const char *side, const char *name) {
    if (mkdir(at(side, name), 0755) && errno != EEXIST) { perror(name); exit(3); }
}

static int tcp(const char *family, int port) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons(port)};
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    int rc = strcmp(family, "bind-tcp") == 0 ? bind(fd, (struct sockaddr *)&address, sizeof address)
                                              : connect(fd, (struct sockaddr *)&address, sizeof address);
    int saved = errno;
    close(fd);
    errno = saved;
    return rc;
}

static int abstract_connect(const char *name) {
    struct sockaddr_un address = {.sun_family = AF_UNIX};
    size_t length = strlen(name);
    memcpy(address.sun_path + 1, name, length);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int rc = connect(fd, (struct sockaddr *)&address, offsetof(struct sockaddr_un, sun_path) + 1 + length);
    int saved = errno;
    close(fd);
    errno = saved;
    return rc;
}

static int abstract_send(const char *name) {  /* a datagram to an abstract name */
    struct sockaddr_un address = {.sun_family = AF_UNIX};
    size_t length = strlen(name);
    memcpy(address.sun_path + 1, name, length);
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    ssize_t rc = sendto(fd, "d", 1, 0, (struct sockaddr *)&address, offsetof(struct sockaddr_un, sun_path) + 1 + length);
    int saved = errno;
    close(fd);
    errno = saved;
    return rc == 1 ? 0 : -1;
}

static int run_exec(const char *side) {
    pid_t pid = fork();
    if (pid == 0) {
        char *argv[] = {at(side, "true"), NULL};
        execv(argv[0], argv);
        _exit(errno == EACCES ? 13 : 1);
    }
    int status;
    waitpid(pid, &status, 0);
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return 0;
    errno = WIFEXITED(status) && WEXITSTATUS(status) == 13 ? EACCES : EIO;
    return -1;
}

static int attempt(const char *family, const char *side, int port, const char *name) {
    if (!strcmp(family, "read")) return open(at(side, "f"), O_RDONLY | O_CLOEXEC);
    if (!strcmp(family, "write")) return open(at(side, "f"), O_WRONLY | O_CLOEXEC);
    if (!strcmp(family, "create")) return open(at(side, "new"), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (!strcmp(family, "truncate-open")) return open(at(side, "f"), O_WRONLY | O_TRUNC | O_CLOEXEC);
    if (!strcmp(family, "truncate")) return truncate(at(side, "f"), 1);
    if (!strcmp(family, "exec")) return run_exec(side);
    if (!strcmp(family, "fifo")) {  /* a writer and a reader meet (each open waits for the other) */
        pid_t writer = fork();
        if (writer == 0) {
            int fd = open(at(side, "fifo"), O_WRONLY | O_CLOEXEC);
            _exit(fd < 0 ? 1 : 0);
        }
        int fd = open(at(side, "fifo"), O_RDONLY | O_CLOEXEC);
        int saved = errno, status;
        waitpid(writer, &status, 0);
        errno = saved;
        return fd;
    }
    if (!strcmp(family, "readdir")) return open(at(side, "d"), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (!strcmp(family, "mkdir")) return mkdir(at(side, "new"), 0755);
    if (!strcmp(family, "mknod")) return mknod(at(side, "node"), S_IFIFO | 0600, 0);
    if (!strcmp(family, "symlink")) return symlink("target", at(side, "link"));
    if (!strcmp(family, "unlink")) return unlink(at(side, "f"));
    if (!strcmp(family, "rmdir")) return rmdir(at(side, "d"));
    if (!strcmp(family, "rename")) return rename(at(side, "a/f"), at(side, "b/f"));
    if (!strcmp(family, "link")) return link(at(side, "a/f"), at(side, "b/g"));
    if (!strcmp(family, "bind-unix")) {
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct sockaddr_un address = {.sun_family = AF_UNIX};
        snprintf(address.sun_path, sizeof address.sun_path, "%s", at(side, "sock"));
        return bind(fd, (struct sockaddr *)&address, sizeof address);
    }
    if (!strcmp(family, "bind-tcp") || !strcmp(family, "connect-tcp")) return tcp(family, port);
    if (!strcmp(family, "abstract")) return abstract_connect(name);
    if (!strcmp(family, "abstract-send")) return abstract_send(name);
    fprintf(stderr, "unknown family %s\n", family);
    exit(2);
}

static void report(const char *family, int port_in, int port_out, const char *own, const char *name) {
    const char *got_in = strdup(result(attempt(family, "in", port_in, own)));
    const char *got_out = strdup(result(attempt(family, "out", port_out, name)));
    printf("in %s out %s\n", got_in, got_out);
    fflush(stdout);
}

int main(int argc, char **argv) {
    if (argc < 3) { fprintf(stderr, "usage: landlock_self FAMILY[@child|@before|@exec] DIR [PORT_IN PORT_OUT | NAME]\n"); return 2; }
    /* FAMILY@child: the attempts are made by a child forked after restricting;
     * @before: by a child forked before (it is not restricted); @exec: by the program
     * exec'd again after restricting (@attempt: that exec'd program, no setup); @twice: after
     * a second restriction that allows both sides (the first layer still refuses) */
    char *family = strdup(argv[1]), *where = strchr(family, '@');
    if (where) *where++ = 0;
    dir = argv[2];
    int port_in = argc > 4 ? atoi(argv[3]) : 0, port_out = argc > 4 ? atoi(argv[4]) : 0;
    if (where && !strcmp(where, "attempt")) {
        report(family, port_in, port_out, "", argc > 3 ? argv[3] : "");
        return 0;
    }
    int go[2] = {-1, -1};
    pid_t before = -1;
    if (where && !strcmp(where, "before")) {
        if (pipe(go)) return 3;
        before = fork();
        if (before == 0) {
            char byte;
            close(go[1]);
            if (read(go[0], &byte, 1) != 1) _exit(3);  /* the parent has restricted itself */
            report(family, port_in, port_out, "", argc > 3 ? argv[3] : "");
            _exit(0);
        }
        close(go[0]);
    }
    const char *sides[] = {"in", "out"};
    for (int i = 0; i < 2; i++) {
        subdir(sides[i], "");
        file(sides[i], "f");
        subdir(sides[i], "d");
        subdir(sides[i], "a");
        subdir(sides[i], "b");
        file(sides[i], "a/f");
        if (mkfifo(at(sides[i], "fifo"), 0600) && errno != EEXIST) { perror("mkfifo"); return 3; }
    }
    char *in = at("in", ""), *out = at("out", "");
    const __u64 T = LANDLOCK_ACCESS_FS_TRUNCATE, W = LANDLOCK_ACCESS_FS_WRITE_FILE;
    const __u64 REG = LANDLOCK_ACCESS_FS_MAKE_REG, RM = LANDLOCK_ACCESS_FS_REMOVE_FILE;
    if (!strcmp(family, "read")) { make_ruleset(LANDLOCK_ACCESS_FS_READ_FILE, 0, 0); allow_path(in, LANDLOCK_ACCESS_FS_READ_FILE); }
    else if (!strcmp(family, "write")) { make_ruleset(W, 0, 0); allow_path(in, W); }
    else if (!strcmp(family, "fifo")) {
        make_ruleset(W | LANDLOCK_ACCESS_FS_READ_FILE, 0, 0); allow_path(in, W | LANDLOCK_ACCESS_FS_READ_FILE);
    }
    else if (!strcmp(family, "create")) { make_ruleset(REG, 0, 0); allow_path(in, REG); }
    else if (!strcmp(family, "truncate-open") || !strcmp(family, "truncate")) {
        make_ruleset(W | T, 0, 0); allow_path(in, W | T); allow_path(out, W);  /* out: writable, not truncatable */
    } else if (!strcmp(family, "exec")) {
        make_ruleset(LANDLOCK_ACCESS_FS_EXECUTE, 0, 0);
        allow_path(in, LANDLOCK_ACCESS_FS_EXECUTE);
        allow_path("/usr", LANDLOCK_ACCESS_FS_EXECUTE);  /* the dynamic loader */
    } else if (!strcmp(family, "readdir")) { make_ruleset(LANDLOCK_ACCESS_FS_READ_DIR, 0, 0); allow_path(in, LANDLOCK_ACCESS_FS_READ_DIR); }
    else if (!strcmp(family, "mkdir")) { make_ruleset(LANDLOCK_ACCESS_FS_MAKE_DIR, 0, 0); allow_path(in, LANDLOCK_ACCESS_FS_MAKE_DIR); }
    else if (!strcmp(family, "mknod")) { make_ruleset(LANDLOCK_ACCESS_FS_MAKE_FIFO, 0, 0); allow_path(in, LANDLOCK_ACCESS_FS_MAKE_FIFO); }
    else if (!strcmp(family, "symlink")) { make_ruleset(LANDLOCK_ACCESS_FS_MAKE_SYM, 0, 0); allow_path(in, LANDLOCK_ACCESS_FS_MAKE_SYM); }
    else if (!strcmp(family, "unlink")) { make_ruleset(RM, 0, 0); allow_path(in, RM); }
    else if (!strcmp(family, "rmdir")) { make_ruleset(LANDLOCK_ACCESS_FS_REMOVE_DIR, 0, 0); allow_path(in, LANDLOCK_ACCESS_FS_REMOVE_DIR); }
    else if (!strcmp(family, "rename") || !strcmp(family, "link")) {
        make_ruleset(RM | REG | LANDLOCK_ACCESS_FS_REFER, 0, 0);
        allow_path(in, RM | REG | LANDLOCK_ACCESS_FS_REFER);
        allow_path(out, RM | REG);  /* out: no REFER, so nothing moves between its directories */
    } else if (!strcmp(family, "bind-unix")) { make_ruleset(LANDLOCK_ACCESS_FS_MAKE_SOCK, 0, 0); allow_path(in, LANDLOCK_ACCESS_FS_MAKE_SOCK); }
    else if (!strcmp(family, "bind-tcp")) { make_ruleset(0, ACCESS_NET_BIND_TCP, 0); allow_port(port_in, ACCESS_NET_BIND_TCP); }
    else if (!strcmp(family, "connect-tcp")) { make_ruleset(0, ACCESS_NET_CONNECT_TCP, 0); allow_port(port_in, ACCESS_NET_CONNECT_TCP); }
    else if (!strcmp(family, "abstract") || !strcmp(family, "abstract-send")) make_ruleset(0, 0, SCOPE_ABSTRACT_UNIX_SOCKET);
    else { fprintf(stderr, "unknown family %s\n", family); return 2; }
    restrict_self();
    if (before > 0) {
        int status;
        if (write(go[1], "g", 1) != 1) return 3;
        waitpid(before, &status, 0);
        return 0;
    }
    if (where && !strcmp(where, "twice")) {  /* a second layer allowing both sides: the first still holds */
        make_ruleset(handled_fs, 0, 0);
        allow_path(in, handled_fs);
        allow_path(out, handled_fs);
        restrict_self();
    }
    if (where && !strcmp(where, "exec")) {
        char mode[64];
        snprintf(mode, sizeof mode, "%s@attempt", family);
        argv[1] = mode;
        execv("/proc/self/exe", argv);
        perror("exec");
        return 3;
    }
    if (where && !strcmp(where, "child")) {
        pid_t child = fork();
        if (child == 0) {
            report(family, port_in, port_out, "", argc > 3 ? argv[3] : "");
            _exit(0);
        }
        int status;
        waitpid(child, &status, 0);
        return 0;
    }

    char own[64] = "";
    int server = -1;
    if (!strcmp(family, "abstract") || !strcmp(family, "abstract-send")) {  /* in: a server of its own, made inside the domain */
        int datagrams = !strcmp(family, "abstract-send");
        snprintf(own, sizeof own, "%s-own", argv[3]);
        struct sockaddr_un address = {.sun_family = AF_UNIX};
        memcpy(address.sun_path + 1, own, strlen(own));
        server = socket(AF_UNIX, (datagrams ? SOCK_DGRAM : SOCK_STREAM) | SOCK_CLOEXEC, 0);
        if (bind(server, (struct sockaddr *)&address, offsetof(struct sockaddr_un, sun_path) + 1 + strlen(own))
            || (!datagrams && listen(server, 4))) { perror("own server"); return 3; }
    }
    report(family, port_in, port_out, own, argc > 3 ? argv[3] : "");
    return 0;
}
