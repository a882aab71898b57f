/* What a program sees when brk fails.
   `brkcheck sbrk`: four sbrk(8292) calls (the break ends inside a page, so a failure must
   return it exactly), each printed as "sbrk N ok", "sbrk N failed ENOMEM unchanged" (the
   kernel's failure), or "... moved" / "sbrk N garbage ..." (a failure that lies).
   `brkcheck malloc [N]`: N (default 2000) blocks of 1..4096 bytes, filled and checked:
   "malloc: K of N NULL, data ok" (or "data corrupt"); a NULL is counted, not used.
   No malloc in sbrk mode (stdout has a static buffer): glibc's malloc does not expect
   the break to be moved under it by sbrk. Exits 0 unless something was wrong. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define STEP (8192 + 100)

static int check_sbrk(void) {
    int bad = 0;
    for (int i = 1; i <= 4; i++) {
        void *before = sbrk(0);
        errno = 0;
        void *old = sbrk(STEP);
        void *after = sbrk(0);
        if (old == (void *)-1) {
            int moved = after != before;
            printf("sbrk %d failed %s %s\n", i, strerrorname_np(errno), moved ? "moved" : "unchanged");
            bad |= moved || errno != ENOMEM;
        } else if (old != before || (char *)after != (char *)before + STEP) {
            printf("sbrk %d garbage %p %p %p\n", i, before, old, after);
            bad = 1;
        } else {
            memset(old, 0x5a, STEP);
            printf("sbrk %d ok\n", i);
        }
    }
    return bad;
}

static size_t size_of(int i) { return 1 + (size_t)(i * 2654435761u % 4096); }

static int check_malloc(int blocks) {
    static char *table[100000];
    int nulls = 0, corrupt = 0;
    if (blocks > 100000) blocks = 100000;
    for (int i = 0; i < blocks; i++) {
        table[i] = malloc(size_of(i));
        if (table[i] == NULL) nulls++;
        else memset(table[i], i & 0xff, size_of(i));
    }
    for (int i = 0; i < blocks; i++) {
        if (table[i] == NULL) continue;
        for (size_t j = 0; j < size_of(i); j++)
            if ((unsigned char)table[i][j] != (i & 0xff)) { corrupt = 1; break; }
        free(table[i]);
    }
    printf("malloc: %d of %d NULL, data %s\n", nulls, blocks, corrupt ? "corrupt" : "ok");
    return corrupt;
}

int main(int argc, char **argv) {
    static char buffer[4096];
    setvbuf(stdout, buffer, _IOLBF, sizeof buffer);
    if (argc > 1 && strcmp(argv[1], "sbrk") == 0) return check_sbrk();
    if (argc > 1 && strcmp(argv[1], "malloc") == 0) return check_malloc(argc > 2 ? atoi(argv[2]) : 2000);
    fprintf(stderr, "usage: brkcheck sbrk | malloc [N]\n");
    return 2;
}
