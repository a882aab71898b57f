/* Normal use of the path calls systrace carries out itself (inotify_add_watch,
   fanotify_mark, file_getattr, file_setattr, statfs, name_to_handle_at): one line per case, the result or the errno
   name, so that a native run and a run under systrace can be compared line by line.
   usage: watch_parity DIR [drop]   DIR holds f (a file), d (a directory), l -> f, u (mode
   000), r (a file owned by root, when run as root). "drop": become nobody first (root
   systrace then acts as another user). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fanotify.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <sys/syscall.h>
#include <unistd.h>

struct file_attr_ { uint64_t xflags; uint32_t extsize, nextents, projid, cowextsize; };
static char dir[256];

static const char *path(const char *name) {
    static char buf[4][300];
    static int next;
    char *out = buf[next++ % 4];
    snprintf(out, 300, "%s/%s", dir, name);
    return out;
}

static void show(const char *what, long r) {
    if (r < 0) printf("%s: %s\n", what, strerrorname_np(errno));
    else printf("%s: ok\n", what);
}

/* Append one byte to DIR/f (a change every watch of these cases reports), then read the
 * events the instance `g` has queued. */
static ssize_t append_and_read(int g, const char *byte, char *events, size_t size) {
    int fd = open(path("f"), O_WRONLY | O_APPEND);
    if (write(fd, byte, 1) != 1) perror("write");
    close(fd);
    return read(g, events, size);
}

static void inotify_cases(void) {
    int g = inotify_init1(IN_CLOEXEC);
    int wf = inotify_add_watch(g, path("f"), IN_MODIFY | IN_ATTRIB);
    show("inotify file", wf);
    char events[4096] __attribute__((aligned(8)));
    ssize_t got = append_and_read(g, "x", events, sizeof events);
    struct inotify_event *first = (struct inotify_event *)events;
    printf("inotify event: %s\n", got > 0 && first->wd == wf && first->mask & IN_MODIFY ? "arrived" : "missing");
    printf("inotify link followed: %s\n", inotify_add_watch(g, path("l"), IN_MODIFY) == wf ? "same watch" : "other");
    int wl = inotify_add_watch(g, path("l"), IN_MODIFY | IN_DONT_FOLLOW);
    printf("inotify link itself: %s\n", wl >= 0 && wl != wf ? "own watch" : strerrorname_np(errno));
    show("inotify missing", inotify_add_watch(g, path("nothing"), IN_MODIFY));
    show("inotify onlydir file", inotify_add_watch(g, path("f"), IN_MODIFY | IN_ONLYDIR));
    show("inotify onlydir dir", inotify_add_watch(g, path("d"), IN_CREATE | IN_ONLYDIR));
    show("inotify onlydir link", inotify_add_watch(g, path("l"), IN_MODIFY | IN_ONLYDIR | IN_DONT_FOLLOW));
    show("inotify mask create again", inotify_add_watch(g, path("f"), IN_MODIFY | IN_MASK_CREATE));
    show("inotify mask add", inotify_add_watch(g, path("f"), IN_OPEN | IN_MASK_ADD));
    show("inotify add and create", inotify_add_watch(g, path("f"), IN_OPEN | IN_MASK_ADD | IN_MASK_CREATE));
    show("inotify no events", inotify_add_watch(g, path("f"), 0));
    show("inotify unreadable", inotify_add_watch(g, path("u"), IN_MODIFY));
    show("inotify trailing slash", inotify_add_watch(g, "d/", IN_CREATE));  /* relative: the cwd is DIR */
    show("inotify bad descriptor", inotify_add_watch(99, path("f"), IN_MODIFY));
    show("inotify not an instance", inotify_add_watch(0, path("f"), IN_MODIFY));
    close(g);
}

static void fanotify_cases(void) {
    int g = fanotify_init(FAN_CLASS_NOTIF | FAN_REPORT_FID | FAN_CLOEXEC | FAN_NONBLOCK, O_RDONLY);
    show("fanotify init", g);
    if (g < 0) return;
    show("fanotify file", fanotify_mark(g, FAN_MARK_ADD, FAN_CLOSE_WRITE, AT_FDCWD, path("f")));
    char events[4096] __attribute__((aligned(8)));
    ssize_t got = append_and_read(g, "y", events, sizeof events);
    struct fanotify_event_metadata *first = (struct fanotify_event_metadata *)events;
    printf("fanotify event: %s\n", got > 0 && first->mask & FAN_CLOSE_WRITE ? "arrived" : "missing");
    int d = open(dir, O_RDONLY | O_DIRECTORY);
    show("fanotify relative", fanotify_mark(g, FAN_MARK_ADD, FAN_OPEN, d, "f"));
    int held = open(path("f"), O_RDONLY);
    show("fanotify descriptor", fanotify_mark(g, FAN_MARK_ADD, FAN_ACCESS, held, NULL));
    show("fanotify no descriptor", fanotify_mark(g, FAN_MARK_ADD, FAN_ACCESS, AT_FDCWD, NULL));
    show("fanotify link itself", fanotify_mark(g, FAN_MARK_ADD | FAN_MARK_DONT_FOLLOW, FAN_ATTRIB, AT_FDCWD, path("l")));
    show("fanotify missing", fanotify_mark(g, FAN_MARK_ADD, FAN_OPEN, AT_FDCWD, path("nothing")));
    show("fanotify onlydir file", fanotify_mark(g, FAN_MARK_ADD | FAN_MARK_ONLYDIR, FAN_OPEN, AT_FDCWD, path("f")));
    show("fanotify onlydir dir", fanotify_mark(g, FAN_MARK_ADD | FAN_MARK_ONLYDIR, FAN_OPEN, AT_FDCWD, path("d")));
    show("fanotify unreadable", fanotify_mark(g, FAN_MARK_ADD, FAN_OPEN, AT_FDCWD, path("u")));
    show("fanotify mount", fanotify_mark(g, FAN_MARK_ADD | FAN_MARK_MOUNT, FAN_OPEN, AT_FDCWD, path("d")));
    show("fanotify filesystem", fanotify_mark(g, FAN_MARK_ADD | FAN_MARK_FILESYSTEM, FAN_OPEN, AT_FDCWD, path("d")));
    show("fanotify remove", fanotify_mark(g, FAN_MARK_REMOVE, FAN_OPEN, AT_FDCWD, path("f")));
    show("fanotify remove unmarked", fanotify_mark(g, FAN_MARK_REMOVE, FAN_OPEN, AT_FDCWD, path("d")));
    show("fanotify add and remove", fanotify_mark(g, FAN_MARK_ADD | FAN_MARK_REMOVE, FAN_OPEN, AT_FDCWD, path("f")));
    show("fanotify flush", fanotify_mark(g, FAN_MARK_FLUSH, 0, AT_FDCWD, path("f")));
    show("fanotify not a group", fanotify_mark(0, FAN_MARK_ADD, FAN_OPEN, AT_FDCWD, path("f")));
    close(held);
    close(d);
    close(g);
}

static void attr_cases(void) {
    struct file_attr_ fa;
    unsigned char big[64];
    memset(&fa, 0xff, sizeof fa);
    long r = syscall(468, AT_FDCWD, path("f"), &fa, sizeof fa, 0);
    show("getattr file", r);
    printf("getattr xflags: %#llx projid %u\n", (unsigned long long)fa.xflags, fa.projid);
    memset(big, 0xff, sizeof big);
    r = syscall(468, AT_FDCWD, path("f"), big, 32, 0);
    int zeros = 1;
    for (int i = 24; i < 32; i++) zeros &= big[i] == 0;
    printf("getattr larger: %s, tail %s, beyond %s\n", r < 0 ? strerrorname_np(errno) : "ok", zeros ? "zeroed" : "kept",
           big[32] == 0xff ? "untouched" : "written");
    show("getattr small", syscall(468, AT_FDCWD, path("f"), &fa, 16, 0));
    show("getattr huge", syscall(468, AT_FDCWD, path("f"), big, 8192, 0));
    show("getattr bad flags", syscall(468, AT_FDCWD, path("f"), &fa, sizeof fa, 0x4));
    show("getattr missing", syscall(468, AT_FDCWD, path("nothing"), &fa, sizeof fa, 0));
    show("getattr link itself", syscall(468, AT_FDCWD, path("l"), &fa, sizeof fa, AT_SYMLINK_NOFOLLOW));
    show("getattr bad buffer", syscall(468, AT_FDCWD, path("f"), (void *)8, sizeof fa, 0));
    int held = open(path("f"), O_RDONLY);
    show("getattr descriptor", syscall(468, held, "", &fa, sizeof fa, AT_EMPTY_PATH));
    show("getattr relative", syscall(468, AT_FDCWD, "f", &fa, sizeof fa, 0));
    memset(&fa, 0, sizeof fa);
    syscall(468, AT_FDCWD, path("f"), &fa, sizeof fa, 0);
    show("setattr file", syscall(469, AT_FDCWD, path("f"), &fa, sizeof fa, 0));
    memset(big, 0, sizeof big);
    memcpy(big, &fa, sizeof fa);
    show("setattr larger zero tail", syscall(469, AT_FDCWD, path("f"), big, 32, 0));
    big[30] = 1;
    show("setattr larger tail", syscall(469, AT_FDCWD, path("f"), big, 32, 0));
    show("setattr bad buffer", syscall(469, AT_FDCWD, path("f"), (void *)8, sizeof fa, 0));
    show("setattr missing", syscall(469, AT_FDCWD, path("nothing"), &fa, sizeof fa, 0));
    show("setattr descriptor", syscall(469, held, "", &fa, sizeof fa, AT_EMPTY_PATH));
    show("setattr not owned", syscall(469, AT_FDCWD, path("r"), &fa, sizeof fa, 0));
    fa.xflags = 0x00000008;  /* FS_XFLAG_APPEND: CAP_LINUX_IMMUTABLE */
    show("setattr append-only", syscall(469, AT_FDCWD, path("d"), &fa, sizeof fa, 0));
    fa.xflags = 0;
    syscall(469, AT_FDCWD, path("d"), &fa, sizeof fa, 0);
    close(held);
}

static void statfs_cases(void) {
    struct statfs st, root;
    statfs(dir, &root);
    long r = statfs(path("f"), &st);
    printf("statfs file: %s, %s\n", r < 0 ? strerrorname_np(errno) : "ok",
           r == 0 && st.f_type == root.f_type && st.f_bsize == root.f_bsize ? "same figures as its directory" : "differs");
    show("statfs link", statfs(path("l"), &st));
    show("statfs unreadable", statfs(path("u"), &st));
    show("statfs missing", statfs(path("nothing"), &st));
    show("statfs directory slash", statfs("d/", &st));
    show("statfs file slash", statfs("f/", &st));
    show("statfs bad buffer", statfs(path("f"), (void *)8));
    show("statfs proc", statfs("/proc/self/fd/0", &st));
}

struct handle { struct file_handle h; unsigned char bytes[128]; };

static int same_handle(struct handle *a, struct handle *b) {
    return a->h.handle_bytes == b->h.handle_bytes && a->h.handle_type == b->h.handle_type &&
           !memcmp(a->h.f_handle, b->h.f_handle, a->h.handle_bytes);
}

static void handle_cases(void) {
    struct handle f = {{128, 0}, {0}}, other = {{128, 0}, {0}};
    int mount_id = -1, other_id;
    struct statx sx;
    long r = name_to_handle_at(AT_FDCWD, path("f"), &f.h, &mount_id, 0);
    statx(AT_FDCWD, path("f"), 0, STATX_MNT_ID, &sx);
    printf("handle file: %s, mount id %s\n", r < 0 ? strerrorname_np(errno) : "ok",
           (unsigned long long)mount_id == sx.stx_mnt_id ? "matches statx" : "differs");
    int held = open(path("f"), O_RDONLY);
    r = name_to_handle_at(held, "", &other.h, &other_id, AT_EMPTY_PATH);
    printf("handle descriptor: %s, %s\n", r < 0 ? strerrorname_np(errno) : "ok", same_handle(&f, &other) ? "same" : "other");
    other.h.handle_bytes = 128;
    r = name_to_handle_at(AT_FDCWD, path("l"), &other.h, &other_id, AT_SYMLINK_FOLLOW);
    printf("handle link followed: %s, %s\n", r < 0 ? strerrorname_np(errno) : "ok", same_handle(&f, &other) ? "same" : "other");
    other.h.handle_bytes = 128;
    r = name_to_handle_at(AT_FDCWD, path("l"), &other.h, &other_id, 0);
    printf("handle link itself: %s, %s\n", r < 0 ? strerrorname_np(errno) : "ok", same_handle(&f, &other) ? "same" : "other");
    other.h.handle_bytes = 0;
    other.h.handle_type = 77;
    other_id = -1;
    r = name_to_handle_at(AT_FDCWD, path("f"), &other.h, &other_id, 0);
    printf("handle too small: %s, size %s, type %d, mount id %s\n", r < 0 ? strerrorname_np(errno) : "ok",
           other.h.handle_bytes == f.h.handle_bytes ? "needed" : "other", other.h.handle_type,
           other_id == mount_id ? "written" : "not written");
    other.h.handle_bytes = 200;
    show("handle too large", name_to_handle_at(AT_FDCWD, path("f"), &other.h, &other_id, 0));
    other.h.handle_bytes = 128;
    unsigned long long unique = 0;
    r = name_to_handle_at(AT_FDCWD, path("f"), &other.h, (int *)&unique, 0x1 /* AT_HANDLE_MNT_ID_UNIQUE */);
    statx(AT_FDCWD, path("f"), 0, 0x4000 /* STATX_MNT_ID_UNIQUE */, &sx);
    printf("handle unique mount id: %s, %s\n", r < 0 ? strerrorname_np(errno) : "ok",
           unique == sx.stx_mnt_id ? "matches statx" : "differs");
    show("handle missing", name_to_handle_at(AT_FDCWD, path("nothing"), &other.h, &other_id, 0));
    show("handle bad flags", name_to_handle_at(AT_FDCWD, path("f"), &other.h, &other_id, 0x8000));
    show("handle connectable fid", name_to_handle_at(AT_FDCWD, path("f"), &other.h, &other_id, 0x202));
    show("handle fid", name_to_handle_at(AT_FDCWD, path("f"), &other.h, &other_id, 0x200));
    show("handle bad buffer", name_to_handle_at(AT_FDCWD, path("f"), (void *)8, &other_id, 0));
    show("handle relative", name_to_handle_at(AT_FDCWD, "d", &other.h, &other_id, 0));
    close(held);
    /* open_by_handle_at (CAP_DAC_READ_SEARCH: EPERM for the user) */
    int d = open(dir, O_RDONLY | O_DIRECTORY);
    int fd = open_by_handle_at(d, &f.h, O_RDONLY);
    char c = 0;
    printf("open by handle: %s\n", fd < 0 ? strerrorname_np(errno) : read(fd, &c, 1) == 1 && c == 'f' ? "ok, reads f" : "other");
    if (fd >= 0) close(fd);
    fd = open_by_handle_at(AT_FDCWD, &f.h, O_RDONLY | O_CLOEXEC);
    printf("open by handle cwd: %s, cloexec %s\n", fd < 0 ? strerrorname_np(errno) : "ok",
           fd >= 0 && fcntl(fd, F_GETFD) & FD_CLOEXEC ? "set" : "clear");
    if (fd >= 0) close(fd);
    fd = open_by_handle_at(d, &f.h, O_RDWR);
    printf("open by handle nonblock: %s\n", fd < 0 ? strerrorname_np(errno) : fcntl(fd, F_GETFL) & O_NONBLOCK ? "set" : "clear");
    if (fd >= 0) close(fd);
    show("open by handle bad mount", open_by_handle_at(99, &f.h, O_RDONLY));
    other = f;
    other.h.handle_bytes = 0;
    show("open by handle empty", open_by_handle_at(d, &other.h, O_RDONLY));
    other = f;
    for (unsigned i = 0; i < other.h.handle_bytes; i++) other.h.f_handle[i] ^= 0x5a;
    show("open by handle stale", open_by_handle_at(d, &other.h, O_RDONLY));
    other.h.handle_bytes = 128;
    if (name_to_handle_at(AT_FDCWD, path("u"), &other.h, &other_id, 0) == 0)
        show("open by handle unreadable", open_by_handle_at(d, &other.h, O_RDONLY));
    close(d);
}

int main(int argc, char **argv) {
    if (argc < 2) { fprintf(stderr, "usage: watch_parity DIR [drop]\n"); return 2; }
    snprintf(dir, sizeof dir, "%s", argv[1]);
    if (argc > 2 && !strcmp(argv[2], "drop")) {
        if (setgroups(0, NULL) || setresgid(65534, 65534, 65534) || setresuid(65534, 65534, 65534)) {
            perror("drop");
            return 1;
        }
    }
    if (chdir(dir)) { perror("chdir"); return 1; }
    inotify_cases();
    fanotify_cases();
    attr_cases();
    statfs_cases();
    handle_cases();
    return 0;
}
