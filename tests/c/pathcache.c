/* Repeated opens and stats of the same names, relative to a dirfd and to the cwd, while
   what those names lead to changes under them (tests/test_path_cache.py). Prints one
   line per step: what was read, or the error's name. usage: pathcache DIR
   DIR holds a/f ("a"), c/f ("c"); the program renames, dup2s, closes and chdirs. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void show_open(const char *label, int dirfd, const char *name) {
    int fd = openat(dirfd, name, O_RDONLY);
    if (fd < 0) { printf("%s: %s\n", label, strerrorname_np(errno)); return; }
    char buf[16] = {0};
    ssize_t got = read(fd, buf, sizeof buf - 1);
    close(fd);
    printf("%s: %s\n", label, got > 0 ? buf : "(empty)");
}

static void show_stat(const char *label, int dirfd, const char *name) {
    struct stat st;
    if (fstatat(dirfd, name, &st, 0) < 0) { printf("%s: %s\n", label, strerrorname_np(errno)); return; }
    printf("%s: size %lld\n", label, (long long)st.st_size);
}

int main(int argc, char **argv) {
    if (argc < 2) return 2;
    char a[4096], b[4096], c[4096], d[4096], af[4096];
    snprintf(a, sizeof a, "%s/a", argv[1]); snprintf(b, sizeof b, "%s/b", argv[1]);
    snprintf(c, sizeof c, "%s/c", argv[1]); snprintf(d, sizeof d, "%s/d", argv[1]);
    snprintf(af, sizeof af, "%s/a/f", argv[1]);
    int dirfd = open(a, O_RDONLY | O_DIRECTORY);
    int other = open(c, O_RDONLY | O_DIRECTORY);
    if (dirfd < 0 || other < 0) return 3;
    for (int i = 0; i < 3; i++) { show_open("dirfd open", dirfd, "f"); show_stat("dirfd stat", dirfd, "f"); }
    rename(a, b);  /* the dirfd's directory is b now: its f is still "a" */
    int made = mkdir(a, 0755);
    int fd = made == 0 ? open(af, O_WRONLY | O_CREAT, 0644) : -1;
    if (fd >= 0) { write(fd, "new a", 5); close(fd); }
    show_open("dirfd open after rename", dirfd, "f");
    show_stat("dirfd stat after rename", dirfd, "f");
    dup2(other, dirfd);  /* the same number, another directory */
    show_open("dirfd open after dup2", dirfd, "f");
    close(dirfd);
    show_open("dirfd open after close", dirfd, "f");
    show_stat("dirfd stat after close", dirfd, "f");
    if (chdir(c) < 0) return 4;
    show_open("cwd open", AT_FDCWD, "f");
    rename(c, d);  /* the cwd's name changes */
    show_open("cwd open after rename", AT_FDCWD, "f");
    unlink("f");
    if (symlink(af, "f") < 0) return 5;  /* now a symlink on the way */
    show_open("cwd open through a symlink", AT_FDCWD, "f");
    show_open("absolute open", AT_FDCWD, af);
    show_open("absolute open again", AT_FDCWD, af);
    return 0;
}
