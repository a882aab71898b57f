#define _GNU_SOURCE
/* Native parity of emulated path calls: each case prints its return value, errno and
   the bytes it got; tests/escape/test_parity.py compares the output natively and under
   systrace -a with the policy systrace -A learned from the same run. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <unistd.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/resource.h>
#include <sys/xattr.h>
#include <linux/fs.h>
#include <linux/stat.h>

static char D[256];
static volatile int xfsz;
static void onxfsz(int s) { (void)s; xfsz++; }
static char CUR[512];
static char *P(const char *n) { static char b[8][600]; static int i; i = (i + 1) % 8; snprintf(b[i], 600, "%s/%s", CUR, n); return b[i]; }
static void put(const char *name, const char *text) { FILE *f = fopen(P(name), "w"); fputs(text, f); fclose(f); }
static const char *only;
/* Each case gets a fresh arena D/NAME: file, file2, other, dir/file, dir/sub, link -> file,
   dirlink -> dir/sub, dangling -> nowhere */
static int op(const char *name) {
    if (only && strcmp(only, name)) return 0;
    snprintf(CUR, sizeof CUR, "%s/%s", D, name);
    mkdir(CUR, 0755); mkdir(P("dir"), 0755); mkdir(P("dir/sub"), 0755);
    put("file", "hello"); put("file2", "x"); put("other", "other"); put("dir/file", "dirfile");
    symlink("file", P("link")); symlink("dir/sub", P("dirlink")); symlink("nowhere", P("dangling"));
    return 1;
}
static void out(const char *what, long r, const unsigned char *buf, int n) {
    printf("%-22s %ld %s", what, r, r < 0 ? strerrorname_np(errno) : "-");
    for (int i = 0; i < n; i++) printf("%s%02x", i ? "" : " ", buf[i]);
    printf("\n"); fflush(stdout);
}
#define R(what, expr) do { errno = 0; long _r = (long)(expr); out(what, _r, 0, 0); } while (0)

int main(int argc, char **argv) {
    snprintf(D, sizeof D, "%s", argv[1]);
    only = argc > 2 ? argv[2] : NULL;
    struct stat st; char buf[64];
    long page = sysconf(_SC_PAGESIZE);
    char *two = mmap(NULL, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    mprotect(two + page, page, PROT_NONE);  /* [two, two+page) mapped, then a hole */
    char *ro = mmap(NULL, page, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (op("stat-slash")) R("stat file/", stat(P("file/"), &st));
    if (op("stat-null")) R("stat NULL buf", syscall(SYS_newfstatat, AT_FDCWD, P("file"), NULL, 0));
    if (op("stat-ro")) R("stat ro buf", syscall(SYS_newfstatat, AT_FDCWD, P("file"), ro, 0));
    if (op("stat-edge")) { memset(two, 0x55, page); char *b = two + page - 64;
        errno = 0; long r = syscall(SYS_newfstatat, AT_FDCWD, P("file"), b, 0); out("stat edge buf", r, (unsigned char *)b + 24, 4); }
    if (op("lstat-link")) { errno = 0; long r = lstat(P("link"), &st); out("lstat link", r, (unsigned char *)&st.st_mode, 4); }
    if (op("readlink")) { memset(buf, 'Z', sizeof buf); errno = 0; long r = readlink(P("link"), buf, 3); out("readlink 3", r, (unsigned char *)buf, 5); }
    if (op("readlink-null")) R("readlink NULL", syscall(SYS_readlink, P("link"), NULL, 10));
    if (op("readlink-edge")) { memset(two, 'Z', page); char *b = two + page - 2;
        errno = 0; long r = readlink(P("link"), b, 10); out("readlink edge", r, (unsigned char *)b, 2); }
    if (op("readlink-file")) R("readlink file", readlink(P("file"), buf, 10));
    if (op("readlink-0")) R("readlink size 0", readlink(P("link"), buf, 0));
    if (op("readlink-slash")) R("readlink link/", readlink(P("dirlink/"), buf, 10));
    if (op("statx")) { struct statx sx; memset(&sx, 0, sizeof sx); errno = 0;
        long r = syscall(SYS_statx, AT_FDCWD, P("file"), AT_STATX_DONT_SYNC | AT_NO_AUTOMOUNT, STATX_TYPE | STATX_SIZE, &sx);
        out("statx mask", r, (unsigned char *)&sx.stx_mask, 4); }
    if (op("statx-badflag")) { struct statx sx; R("statx bad flags", syscall(SYS_statx, AT_FDCWD, P("file"), 0x80000000, STATX_TYPE, &sx)); }
    if (op("statx-badsync")) { struct statx sx; R("statx sync 0x6000", syscall(SYS_statx, AT_FDCWD, P("file"), 0x6000, STATX_TYPE, &sx)); }
    if (op("statx-resmask")) { struct statx sx; R("statx reserved mask", syscall(SYS_statx, AT_FDCWD, P("file"), 0, 0x80000000U, &sx)); }
    if (op("access-bad")) R("access mode 8", syscall(SYS_faccessat, AT_FDCWD, P("file"), 8));
    if (op("faccessat2-bad")) R("faccessat2 bad flag", syscall(SYS_faccessat2, AT_FDCWD, P("file"), R_OK, 0x1));
    if (op("unlinkat-bad")) R("unlinkat bad flag", syscall(SYS_unlinkat, AT_FDCWD, P("file"), 0x1));
    if (op("unlink-slash")) R("unlink file/", unlink(P("file/")));
    if (op("rmdir-slash")) R("rmdir dirlink/", rmdir(P("dirlink/")));
    if (op("mkdir-dangling")) R("mkdir dangling/", mkdir(P("dangling/"), 0755));
    if (op("mkdir-dangling-noslash")) R("mkdir dangling", mkdir(P("dangling"), 0755));
    if (op("rename-bad")) R("renameat2 X|N", syscall(SYS_renameat2, AT_FDCWD, P("file"), AT_FDCWD, P("file2"), RENAME_EXCHANGE | RENAME_NOREPLACE));
    if (op("rename-noreplace")) R("renameat2 noreplace", syscall(SYS_renameat2, AT_FDCWD, P("file"), AT_FDCWD, P("other"), RENAME_NOREPLACE));
    if (op("rename-whiteout")) R("renameat2 whiteout", syscall(SYS_renameat2, AT_FDCWD, P("other"), AT_FDCWD, P("w"), RENAME_WHITEOUT));
    if (op("rename-slash")) R("rename file/ x", rename(P("file/"), P("x")));
    if (op("fchmodat-nofollow")) R("fchmodat(268) link", syscall(SYS_fchmodat, AT_FDCWD, P("link"), 0640, AT_SYMLINK_NOFOLLOW));
    if (op("fchmodat2-nofollow")) R("fchmodat2 link NF", syscall(452, AT_FDCWD, P("link"), 0640, AT_SYMLINK_NOFOLLOW));
    if (op("chmod-mode")) { R("chmod 017777", chmod(P("other"), 017777)); stat(P("other"), &st); printf("mode %o\n", st.st_mode); }
    if (op("truncate-fsize")) { struct rlimit rl; getrlimit(RLIMIT_FSIZE, &rl); rl.rlim_cur = 4096; setrlimit(RLIMIT_FSIZE, &rl); signal(SIGXFSZ, SIG_IGN);
        R("truncate > FSIZE", truncate(P("file"), 1 << 20)); stat(P("file"), &st); printf("size %ld\n", (long)st.st_size);
        rl.rlim_cur = rl.rlim_max; setrlimit(RLIMIT_FSIZE, &rl); }
    if (op("truncate-slash")) R("truncate file/", truncate(P("file/"), 1));
    if (op("truncate-dir")) R("truncate dir", truncate(P("dir"), 1));
    if (op("symlink-long")) { char t[4200]; memset(t, 'a', 4096); t[4096] = 0; R("symlink 4096", symlink(t, P("sl"))); }
    if (op("symlink-4095")) { char t[4200]; memset(t, 'a', 4095); t[4095] = 0; R("symlink 4095", symlink(t, P("sl2"))); }
    if (op("path-4096")) { char t[5000]; strcpy(t, D); size_t n = strlen(t); while (n < 4096 - 5) { t[n++] = '/'; t[n++] = '.'; } t[n] = 0;
        strcat(t, "/file"); t[4096] = 0; R("stat path 4096", stat(t, &st)); printf("len %zu\n", strlen(t)); }
    if (op("path-4095")) { char t[5000]; strcpy(t, D); size_t n = strlen(t); while (n < 4095 - 5) { t[n++] = '/'; } t[n] = 0;
        strcat(t, "/file"); t[4095] = 0; R("stat path 4095", stat(t, &st)); printf("len %zu\n", strlen(t)); }
    if (op("path-edge")) { const char *f = P("file"); size_t n = strlen(f); char *p = two + page - n; memcpy(p, f, n);
        R("stat path no NUL", stat(p, &st)); }
    if (op("getxattr-small")) { setxattr(P("file"), "user.x", "hello", 5, 0); memset(buf, 'Z', 8);
        errno = 0; long r = getxattr(P("file"), "user.x", buf, 2); out("getxattr 2", r, (unsigned char *)buf, 3); }
    if (op("getxattr-null")) R("getxattr NULL 10", getxattr(P("file"), "user.x", NULL, 10));
    if (op("utimensat-bad")) { struct timespec ts[2] = {{0, 2000000000L}, {0, 0}}; R("utimensat bad nsec", utimensat(AT_FDCWD, P("file"), ts, 0)); }
    if (op("utimensat-badflag")) R("utimensat bad flag", syscall(SYS_utimensat, AT_FDCWD, P("file"), NULL, 0x4));
    if (op("utimes-edge")) { char *p = two + page - 8; R("utimes edge", syscall(SYS_utimes, P("file"), p)); }
    if (op("mknod-fifo")) { R("mknod fifo", mknod(P("fifo"), S_IFIFO | 0666, 0)); stat(P("fifo"), &st); printf("mode %o\n", st.st_mode); }
    if (op("mknod-bad")) R("mknod type bad", mknod(P("nod"), 0170000 | 0666, 0));
    if (op("mkdir-umask")) { umask(077); R("mkdir umask", mkdir(P("um"), 0777)); stat(P("um"), &st); printf("mode %o\n", st.st_mode); umask(022); }
    if (op("linkat-tmpfile")) { int fd = open(D, O_TMPFILE | O_WRONLY, 0600); char pth[64]; snprintf(pth, 64, "/proc/self/fd/%d", fd);
        R("linkat tmpfile", linkat(fd, "", AT_FDCWD, P("tl"), AT_EMPTY_PATH));
        R("linkat tmpfile proc", linkat(AT_FDCWD, pth, AT_FDCWD, P("tl2"), AT_SYMLINK_FOLLOW)); }
    if (op("linkat-deleted")) { int fd = open(P("del"), O_CREAT | O_WRONLY, 0600); unlink(P("del"));
        R("linkat deleted", linkat(fd, "", AT_FDCWD, P("dl"), AT_EMPTY_PATH)); }
    if (op("linkat-memfd")) { int fd = memfd_create("m", 0); R("linkat memfd", linkat(fd, "", AT_FDCWD, P("ml"), AT_EMPTY_PATH)); }
    if (op("proc-fd-stat")) { int fd = open(P("file"), O_RDONLY); char pth[64]; snprintf(pth, 64, "/proc/self/fd/%d", fd);
        errno = 0; long r = stat(pth, &st); out("stat /proc/self/fd", r, (unsigned char *)&st.st_size, 4); }
    if (op("proc-fd-pipe")) { int p[2]; pipe(p); char pth[64]; snprintf(pth, 64, "/proc/self/fd/%d", p[0]);
        errno = 0; long r = stat(pth, &st); out("stat /proc/self/fd pipe", r, 0, 0); }
    if (op("dotdot-file")) R("stat file/..", stat(P("file/.."), &st));
    if (op("dotdot-link")) R("stat dirlink/../file", stat(P("dirlink/../file"), &st));
    if (op("rmdir-dot")) R("rmdir dir/.", rmdir(P("dir/.")));
    if (op("rmdir-dotdot")) R("rmdir dir/sub/..", rmdir(P("dir/sub/..")));
    if (op("unlinkat-rm-dot")) R("unlinkat dir/. RMDIR", unlinkat(AT_FDCWD, P("dir/sub/."), AT_REMOVEDIR));
    if (op("unlink-dot")) R("unlink dir/.", unlink(P("dir/.")));
    if (op("mkdir-dot")) R("mkdir dir/.", mkdir(P("dir/."), 0755));
    if (op("rename-dot")) R("rename dir/sub/. x", rename(P("dir/sub/."), P("x")));
    if (op("stat-linkslash")) R("stat link/", stat(P("link/"), &st));
    if (op("lstat-dirlinkslash")) { errno = 0; long r = lstat(P("dirlink/"), &st); out("lstat dirlink/", r, (unsigned char *)&st.st_mode, 4); }
    if (op("unlink-linkslash")) R("unlink link/", unlink(P("link/")));
    if (op("unlink-dirlinkslash")) R("unlink dirlink/", unlink(P("dirlink/")));
    if (op("rmdir-dirslash")) R("rmdir dir/sub/", rmdir(P("dir/sub/")));
    if (op("mkdir-newslash")) R("mkdir new/", mkdir(P("new/"), 0755));
    if (op("mknod-newslash")) R("mknod new/", mknod(P("new/"), S_IFIFO | 0600, 0));
    if (op("rename-dirslash")) R("rename dir/sub/ dir/s2/", rename(P("dir/sub/"), P("dir/s2/")));
    if (op("rename-fileslash-new")) R("rename file x/", rename(P("file"), P("x/")));
    if (op("link-oldslash")) R("link file/ x", link(P("file/"), P("x")));
    if (op("link-newslash")) R("link file x/", link(P("file"), P("x/")));
    if (op("symlink-newslash")) R("symlink new/", symlink("file", P("x/")));
    if (op("chmod-slash")) R("chmod file/", chmod(P("file/"), 0600));
    if (op("chmod-dirlinkslash")) R("chmod dirlink/", chmod(P("dirlink/"), 0700));
    if (op("getxattr-slash")) R("getxattr file/", getxattr(P("file/"), "user.x", buf, 10));
    if (op("xfsz-signal")) { struct rlimit rl; getrlimit(RLIMIT_FSIZE, &rl); rl.rlim_cur = 4096; setrlimit(RLIMIT_FSIZE, &rl); signal(SIGXFSZ, onxfsz);
        R("truncate > FSIZE sig", truncate(P("file"), 1 << 20)); printf("got SIGXFSZ %d\n", xfsz);
        rl.rlim_cur = rl.rlim_max; setrlimit(RLIMIT_FSIZE, &rl); }
    if (op("procfd-names")) { int fd = open(P("file"), O_RDWR); char pth[64]; snprintf(pth, 64, "/proc/self/fd/%d", fd);
        memset(buf, 0, sizeof buf); errno = 0; long r = readlink(pth, buf, sizeof buf - 1);
        out("readlink /proc/self/fd", r, (unsigned char *)buf + r - 4, r > 4 ? 4 : 0);
        R("chmod /proc/self/fd", chmod(pth, 0600));
        R("truncate /proc/self/fd", truncate(pth, 2));
        R("unlink /proc/self/fd", unlink(pth));
        R("rename /proc/self/fd", rename(pth, P("x")));
        R("link /proc/self/fd", linkat(AT_FDCWD, pth, AT_FDCWD, P("y"), AT_SYMLINK_FOLLOW));
        stat(P("file"), &st); printf("mode %o size %ld\n", st.st_mode, (long)st.st_size); close(fd); }
    return 0;
}
