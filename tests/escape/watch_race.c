/* Races the check of a path call systrace used to continue (inotify_add_watch,
   fanotify_mark, file_getattr, file_setattr, statfs, name_to_handle_at, quotactl's device
   and Q_QUOTAON's quota file; open_by_handle_at's handle): a second thread flips the path between DIR/a
   (the name the policy permits, missing: the call fails there) and DIR/s (a name it does
   not permit, present: the call succeeds there). A success is an escape: the watch, the
   mark, the attributes, the file system's figures or the handle are those of DIR/s.
   quota: DIR/s leads to the root file system's block device: a lookup of it (any error
   but ENOENT) is an escape. quotaon: Q_QUOTAON on DIR/dev (the root file system's
   device, without quotas) with the quota file flipping: a lookup of DIR/s (EINVAL where
   DIR/a gets ENOENT) is an escape. bpfpin: bpf's BPF_OBJ_PIN of a map, its pathname in
   union bpf_attr, on DIR a bpf file system: a pin that made DIR/s is an escape. bpfget:
   BPF_OBJ_GET, DIR/a and DIR/s pinned maps: a descriptor of DIR/s's map is an escape. byhandle: the handle itself flips between DIR/a's and DIR/s's
   (both exist); an open that reads DIR/s's content is an escape.
   fstype: fsopen's file system type flips between tmpfs (permitted) and ramfs: a ramfs
   made (fsconfig CMD_CREATE, fsmount, fstatfs) is an escape.
   usage: watch_race FAMILY DIR ROUNDS [userns]   (ROUNDS 0: each variant once on DIR/a, no
   thread; userns: in a user and mount namespace of its own first)
   Prints "escapes N denied D total T" (denied: refused with EPERM/EACCES by a check).
   Natively each escape is undone (the watch or mark removed) so that the next can happen. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fanotify.h>
#include <sys/inotify.h>
#include <sys/quota.h>
#include <sys/vfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "own_userns.h"

#define SYS_file_getattr_ 468
#define SYS_file_setattr_ 469

struct file_attr_ { uint64_t xflags; uint32_t extsize, nextents, projid, cowextsize; };

static char a[300], s[300], device[300];
static char shared[300];
struct handle { struct file_handle h; unsigned char bytes[128]; };
static struct handle handle_a, handle_s, shared_handle;
static int mount_fd = -1;
static atomic_int stop, flips;
static const char *family;
static int group = -1;

static void *flip(void *arg) {
    (void)arg;
    while (!strcmp(family, "byhandle") && !atomic_load(&stop)) {
        memcpy(&shared_handle, &handle_s, sizeof shared_handle);
        __asm__ volatile("" ::: "memory");
        for (volatile int i = 0; i < 500; i++) {}
        memcpy(&shared_handle, &handle_a, sizeof shared_handle);
        __asm__ volatile("" ::: "memory");
        for (volatile int i = 0; i < 500; i++) {}
        atomic_fetch_add(&flips, 1);
    }
    while (!atomic_load(&stop)) {
        strcpy(shared, s);
        __asm__ volatile("" ::: "memory");  /* no store may be dropped or merged */
        for (volatile int i = 0; i < 500; i++) {}
        strcpy(shared, a);
        __asm__ volatile("" ::: "memory");
        for (volatile int i = 0; i < 500; i++) {}
        atomic_fetch_add(&flips, 1);
    }
    return NULL;
}

static long attempt(int v, const char *p) {
    if (!strcmp(family, "inotify"))
        return inotify_add_watch(group, p, IN_ALL_EVENTS | (v % 2 ? IN_DONT_FOLLOW : 0));
    if (!strcmp(family, "fanotify"))
        return fanotify_mark(group, FAN_MARK_ADD | (v % 2 ? FAN_MARK_DONT_FOLLOW : 0), FAN_OPEN | FAN_CLOSE_WRITE,
                             AT_FDCWD, p);
    if (!strcmp(family, "fileattr")) {
        struct file_attr_ fa = {0};
        if (v % 2 == 0) return syscall(SYS_file_getattr_, AT_FDCWD, p, &fa, sizeof fa, 0);
        return syscall(SYS_file_setattr_, AT_FDCWD, p, &fa, sizeof fa, 0);
    }
    if (!strcmp(family, "statfs")) {
        struct statfs st;
        return statfs(p, &st);
    }
    if (!strcmp(family, "handle")) {
        struct { struct file_handle h; unsigned char bytes[128]; } fh = {{128, 0}, {0}};
        int mount_id;
        return name_to_handle_at(AT_FDCWD, p, &fh.h, &mount_id, v % 2 ? AT_SYMLINK_FOLLOW : 0);
    }
    if (!strcmp(family, "quota")) {
        unsigned fmt;
        long r = quotactl(QCMD(Q_GETFMT, USRQUOTA), p, 0, (caddr_t)&fmt);
        return r < 0 && errno != ENOENT && errno != EACCES && errno != EPERM ? 0 : r;
    }
    if (!strcmp(family, "quotaon")) {  /* the quota file: DIR/s is looked up (EINVAL, not ENOENT) */
        long r = quotactl(QCMD(Q_QUOTAON, USRQUOTA), device, QFMT_VFS_V0, (caddr_t)p);
        return r < 0 && errno == EINVAL ? 0 : r;
    }
    if (!strcmp(family, "bpfpin")) {  /* DIR is a bpf file system: a pin that made DIR/s */
        union bpf_attr pin;
        memset(&pin, 0, sizeof pin);
        pin.pathname = (uint64_t)(uintptr_t)p;
        pin.bpf_fd = (uint32_t)group;
        long r = syscall(SYS_bpf, BPF_OBJ_PIN, &pin, sizeof pin);
        if (r == 0 && unlink(a) == 0) { errno = ENOENT; return -1; }  /* the permitted name: no escape */
        return r;
    }
    if (!strcmp(family, "bpfget")) {  /* DIR/a and DIR/s pinned maps of 1 and 2 entries: a get of DIR/s's */
        union bpf_attr get;
        memset(&get, 0, sizeof get);
        get.pathname = (uint64_t)(uintptr_t)p;
        long r = syscall(SYS_bpf, BPF_OBJ_GET, &get, sizeof get);
        if (r < 0) return r;
        struct bpf_map_info info;
        memset(&info, 0, sizeof info);
        union bpf_attr query;
        memset(&query, 0, sizeof query);
        query.info.bpf_fd = (uint32_t)r;
        query.info.info_len = sizeof info;
        query.info.info = (uint64_t)(uintptr_t)&info;
        long q = syscall(SYS_bpf, BPF_OBJ_GET_INFO_BY_FD, &query, sizeof query);
        close((int)r);
        if (q == 0 && info.max_entries == 2) return 0;
        errno = ENOENT;  /* the permitted map: no escape */
        return -1;
    }
    if (!strcmp(family, "fstype")) {  /* fsopen's type flips between tmpfs and ramfs: a ramfs made */
        int fd = (int)syscall(SYS_fsopen, p, 1);
        if (fd < 0) return -1;
        long m = syscall(SYS_fsconfig, fd, 6, NULL, NULL, 0) ? -1 : syscall(SYS_fsmount, fd, 1, 0);
        close(fd);
        if (m < 0) return -1;
        struct statfs st;
        long r = fstatfs((int)m, &st);
        close((int)m);
        if (r == 0 && st.f_type == 0x858458f6) return 0;  /* RAMFS_MAGIC */
        errno = ENOENT;  /* the permitted tmpfs: no escape */
        return -1;
    }
    if (!strcmp(family, "byhandle")) {
        int fd = open_by_handle_at(mount_fd, &shared_handle.h, O_RDONLY);
        if (fd < 0) return -1;
        char c = 0;
        long r = read(fd, &c, 1);
        close(fd);
        if (r == 1 && c == 'S') return 0;
        errno = ENOENT;  /* the permitted file, opened: no escape */
        return -1;
    }
    fprintf(stderr, "unknown family %s\n", family);
    exit(2);
}

static void undo(long r) {
    if (!strcmp(family, "bpfpin")) unlink(s);
    else if (!strcmp(family, "inotify")) inotify_rm_watch(group, (int)r);
    else if (!strcmp(family, "fanotify")) fanotify_mark(group, FAN_MARK_FLUSH, 0, AT_FDCWD, NULL);
}

int main(int argc, char **argv) {
    if (argc < 4) { fprintf(stderr, "usage: watch_race FAMILY DIR ROUNDS\n"); return 2; }
    family = argv[1];
    long rounds = atol(argv[3]);
    snprintf(a, sizeof a, "%s/a", argv[2]);
    snprintf(s, sizeof s, "%s/s", argv[2]);
    snprintf(device, sizeof device, "%s/dev", argv[2]);
    if (!strcmp(family, "fstype")) {  /* (DIR unused: the strings are file system types) */
        strcpy(a, "tmpfs");
        strcpy(s, "ramfs");
    }
    if (argc > 4 && !strcmp(argv[4], "userns"))
        enter_own_namespaces();
    int watching = !strcmp(family, "inotify") || !strcmp(family, "fanotify");
    if (!strcmp(family, "inotify")) group = inotify_init1(IN_CLOEXEC);
    else if (!strcmp(family, "fanotify")) group = fanotify_init(FAN_CLASS_NOTIF | FAN_REPORT_FID | FAN_CLOEXEC, O_RDONLY);
    if (!strncmp(family, "bpf", 3) && rounds > 0) {  /* (learning: bpf is refused unless named) */
        union bpf_attr create;
        for (unsigned entries = 1; entries <= 2; entries++) {
            memset(&create, 0, sizeof create);
            create.map_type = BPF_MAP_TYPE_ARRAY;
            create.key_size = create.value_size = 4;
            create.max_entries = entries;
            group = (int)syscall(SYS_bpf, BPF_MAP_CREATE, &create, sizeof create);
            union bpf_attr pin;
            memset(&pin, 0, sizeof pin);
            pin.pathname = (uint64_t)(uintptr_t)(entries == 1 ? a : s);
            pin.bpf_fd = (uint32_t)group;
            if (!strcmp(family, "bpfget") && syscall(SYS_bpf, BPF_OBJ_PIN, &pin, sizeof pin)) { perror("pin"); return 1; }
        }
        watching = 1;
    }
    if (watching && group < 0) { perror("init"); return 1; }
    if (!strcmp(family, "byhandle") && rounds > 0) {  /* (learning: name_to_handle_at is refused unless named) */
        int id;
        handle_a.h.handle_bytes = handle_s.h.handle_bytes = 128;
        if (name_to_handle_at(AT_FDCWD, a, &handle_a.h, &id, 0) || name_to_handle_at(AT_FDCWD, s, &handle_s.h, &id, 0)) {
            perror("name_to_handle_at");
            return 1;
        }
        memcpy(&shared_handle, &handle_a, sizeof shared_handle);
    }
    if (!strcmp(family, "byhandle")) mount_fd = open(argv[2], O_RDONLY | O_DIRECTORY);
    long escapes = 0, denied = 0, total = 0;
    if (rounds == 0) {  /* learning: every variant once on the allowed name */
        for (int v = 0; v < 2; v++) attempt(v, a);
        printf("escapes 0 denied 0 total 0\n");
        return 0;
    }
    pthread_t t;
    strcpy(shared, a);
    pthread_create(&t, NULL, flip, NULL);
    while (atomic_load(&flips) < 10) {}  /* the swapping has begun */
    for (long i = 0; i < rounds; i++) {
        errno = 0;
        long r = attempt((int)(i % 2), shared);
        total++;
        if (r >= 0) { escapes++; undo(r); }
        else if (errno == EPERM || errno == EACCES) denied++;
    }
    atomic_store(&stop, 1);
    pthread_join(t, NULL);
    printf("escapes %ld denied %ld total %ld\n", escapes, denied, total);
    return 0;
}
