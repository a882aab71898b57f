/* Races the check of a path call systrace used to continue (inotify_add_watch,
   fanotify_mark, file_getattr, file_setattr): a second thread flips the path between DIR/a
   (the name the policy permits, missing: the call fails there) and DIR/s (a name it does
   not permit, present: the call succeeds there). A success is an escape: the watch, the
   mark or the attributes landed on DIR/s.
   usage: watch_race FAMILY DIR ROUNDS   (ROUNDS 0: each variant once on DIR/a, no thread)
   Prints "escapes N denied D total T" (denied: refused with EPERM/EACCES by a check).
   Natively each escape is undone (the watch or mark removed) so that the next can happen. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fanotify.h>
#include <sys/inotify.h>
#include <sys/syscall.h>
#include <unistd.h>

#define SYS_file_getattr_ 468
#define SYS_file_setattr_ 469

struct file_attr_ { uint64_t xflags; uint32_t extsize, nextents, projid, cowextsize; };

static char a[300], s[300];
static char shared[300];
static atomic_int stop, flips;
static const char *family;
static int group = -1;

static void *flip(void *arg) {
    (void)arg;
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
    fprintf(stderr, "unknown family %s\n", family);
    exit(2);
}

static void undo(long r) {
    if (!strcmp(family, "inotify")) inotify_rm_watch(group, (int)r);
    else if (!strcmp(family, "fanotify")) fanotify_mark(group, FAN_MARK_FLUSH, 0, AT_FDCWD, NULL);
}

int main(int argc, char **argv) {
    if (argc < 4) { fprintf(stderr, "usage: watch_race FAMILY DIR ROUNDS\n"); return 2; }
    family = argv[1];
    long rounds = atol(argv[3]);
    snprintf(a, sizeof a, "%s/a", argv[2]);
    snprintf(s, sizeof s, "%s/s", argv[2]);
    if (!strcmp(family, "inotify")) group = inotify_init1(IN_CLOEXEC);
    else if (!strcmp(family, "fanotify")) group = fanotify_init(FAN_CLASS_NOTIF | FAN_REPORT_FID | FAN_CLOEXEC, O_RDONLY);
    if (!strcmp(family, "fileattr") ? 0 : group < 0) { perror("init"); return 1; }
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
