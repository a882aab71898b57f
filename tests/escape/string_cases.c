/* The calls systrace carries out on a checked string (memfd_create, mq_open, mq_unlink,
   sethostname, setdomainname, delete_module) and the key calls it continues, with their
   results and errnos, one line each: compared natively and under systrace.
   usage: string_cases TAG [own|pidns]   (own: IPC and UTS namespaces of its own first, as
   a user with a user namespace; the host and domain name cases need it, else one case
   shows sethostname's EPERM for a user. pidns: only two memfds, made by a child in a
   PID namespace of its own, root only) */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <mqueue.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include "own_userns.h"

#ifndef MFD_NOEXEC_SEAL
#define MFD_NOEXEC_SEAL 0x0008U
#define MFD_EXEC 0x0010U
#endif

static char tag[64];
/* In a user namespace of its own the owner is not shown: systrace's emulated fstat
   (a descriptor stat) gives the ids unmapped there (a known difference, SECURITY.md) */
static int show_owner = 1;

static const char *N(const char *what) {  /* c-WHAT-TAG, a name of this run */
    static char names[16][128];
    static int next;
    char *name = names[next++ % 16];
    snprintf(name, 128, "c-%s-%s", what, tag);
    return name;
}

static void R(const char *what, long result) {
    if (result < 0) printf("%s: %s\n", what, strerrorname_np(errno));
    else printf("%s: ok\n", what);
}

static void memfd(const char *what, const char *name, unsigned flags) {
    int fd = memfd_create(name, flags);
    if (fd < 0) { R(what, fd); return; }
    struct stat st;
    char path[64], link[256];
    fstat(fd, &st);
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(path, link, sizeof link - 1);
    link[n > 0 ? n : 0] = 0;
    printf("%s: ok cloexec %d mode %o uid %d gid %d seals %d link %s\n", what, !!(fcntl(fd, F_GETFD) & FD_CLOEXEC),
           st.st_mode, show_owner ? (int)st.st_uid : -1, show_owner ? (int)st.st_gid : -1, fcntl(fd, F_GET_SEALS),
           link);
    if (flags & MFD_ALLOW_SEALING) R("  seal write", fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE));
    R("  write", write(fd, "x", 1));
    close(fd);
}

static long mq(const char *name, int flags, mode_t mode, struct mq_attr *attr) {
    return syscall(SYS_mq_open, name, flags, mode, attr);
}

static void mq_case(const char *what, const char *name, int flags, mode_t mode, struct mq_attr *attr) {
    long fd = mq(name, flags, mode, attr);
    if (fd < 0) { R(what, fd); return; }
    struct stat st;
    struct mq_attr got;
    fstat(fd, &st);
    syscall(SYS_mq_getsetattr, fd, NULL, &got);
    printf("%s: ok cloexec %d mode %o uid %d maxmsg %ld msgsize %ld\n", what, !!(fcntl(fd, F_GETFD) & FD_CLOEXEC),
           st.st_mode, show_owner ? (int)st.st_uid : -1, got.mq_maxmsg, got.mq_msgsize);
    close(fd);
}

int main(int argc, char **argv) {
    if (argc < 2) { fprintf(stderr, "usage: string_cases TAG [own]\n"); return 2; }
    snprintf(tag, sizeof tag, "%s", argv[1]);
    int own = argc > 2 && !strcmp(argv[2], "own");
    if (argc > 2 && !strcmp(argv[2], "pidns")) {
        if (unshare(CLONE_NEWPID)) { perror("unshare"); return 2; }
        pid_t child = fork();
        if (child == 0) {
            memfd("memfd in a pid namespace", N("m"), 0);
            memfd("memfd noexec in a pid namespace", N("m"), MFD_NOEXEC_SEAL);
            fflush(stdout);
            _exit(0);
        }
        int status;
        waitpid(child, &status, 0);
        return 0;
    }
    if (own) {
        if (geteuid() != 0) {
            enter_own_user_namespace_with(CLONE_NEWIPC | CLONE_NEWUTS);
            show_owner = 0;
        }
        else if (unshare(CLONE_NEWIPC | CLONE_NEWUTS)) { perror("unshare"); return 2; }
    }
    umask(027);

    memfd("memfd plain", N("m"), 0);
    memfd("memfd cloexec", N("m"), MFD_CLOEXEC);
    memfd("memfd sealing", N("m"), MFD_ALLOW_SEALING | MFD_CLOEXEC);
    memfd("memfd noexec", N("m"), MFD_NOEXEC_SEAL);
    memfd("memfd exec", N("m"), MFD_EXEC);
    memfd("memfd hugetlb", N("m"), MFD_HUGETLB);
    memfd("memfd bad flags", N("m"), 0x100);
    memfd("memfd exec and noexec", N("m"), MFD_EXEC | MFD_NOEXEC_SEAL);
    char longer[300];
    memset(longer, 'l', 260);
    longer[260] = 0;
    memcpy(longer, "c-long-", 7);
    memfd("memfd long name", longer, 0);

    struct mq_attr small = {.mq_maxmsg = 2, .mq_msgsize = 16}, none = {.mq_maxmsg = 0, .mq_msgsize = 16};
    mq_case("mq create", N("q"), O_CREAT | O_EXCL | O_RDWR, 0666, NULL);
    mq_case("mq create again", N("q"), O_CREAT | O_EXCL | O_RDWR, 0666, NULL);
    mq_case("mq open", N("q"), O_WRONLY, 0, NULL);
    mq_case("mq open missing", N("none"), O_RDONLY, 0, NULL);
    mq_case("mq attr", N("qa"), O_CREAT | O_RDWR, 0600, &small);
    mq_case("mq attr zero", N("qz"), O_CREAT | O_RDWR, 0600, &none);
    mq_case("mq accmode", N("q"), O_RDWR | O_WRONLY, 0, NULL);
    mq_case("mq mode 0", N("q0"), O_CREAT | O_RDONLY, 0, NULL);
    mq_case("mq open mode 0", N("q0"), O_RDWR, 0, NULL);
    mq_case("mq slash", "c-a/b", O_CREAT | O_RDWR, 0600, NULL);
    memset(longer, 'q', 299);
    longer[299] = 0;
    memcpy(longer, "c-long-", 7);
    mq_case("mq long name", longer, O_CREAT | O_RDWR, 0600, NULL);
    const char *queues[] = {"q", "qa", "q0"};
    for (int i = 0; i < 3; i++) R("mq unlink", syscall(SYS_mq_unlink, N(queues[i])));
    R("mq unlink again", syscall(SYS_mq_unlink, N("q")));

    if (own) {
        struct utsname u;
        R("sethostname", sethostname(N("h"), strlen(N("h"))));
        R("sethostname 65", syscall(SYS_sethostname, N("h"), 65));
        R("sethostname -1", syscall(SYS_sethostname, N("h"), -1));
        R("setdomainname", setdomainname(N("d"), strlen(N("d"))));
        uname(&u);
        printf("uname: %s %s\n", strcmp(u.nodename, N("h")) ? "other" : "c-h", strcmp(u.domainname, N("d")) ? "other" : "c-d");
    } else if (geteuid() != 0) {
        R("sethostname as a user", sethostname(N("h"), strlen(N("h"))));
    }
    R("delete_module", syscall(SYS_delete_module, N("mod"), 0));

    long key = syscall(SYS_add_key, "user", N("k"), "v", 1, -2 /* KEY_SPEC_PROCESS_KEYRING */);
    R("add_key", key);
    long found = syscall(SYS_request_key, "user", N("k"), NULL, 0);
    printf("request_key: %s\n", found < 0 ? strerrorname_np(errno) : found == key ? "the key added" : "another");
    R("request_key missing", syscall(SYS_request_key, "user", N("nokey"), NULL, 0));
    return 0;
}
