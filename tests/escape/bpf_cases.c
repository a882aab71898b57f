/* bpf's BPF_OBJ_PIN, one line per case with its result and errno, so that a run natively
   and one under a policy deciding on the pinned path (carried out by systrace's helper)
   can be compared. usage: bpf_cases DIR  (DIR on a bpf file system) */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

static int map = -1, dir = -1;
static const unsigned attr_size = 128;

static void pin(const char *name, const char *path, int fd, uint32_t flags, int path_fd, unsigned size) {
    struct { uint64_t pathname; uint32_t bpf_fd, file_flags; int32_t path_fd; char rest[108]; } attr;
    memset(&attr, 0, sizeof attr);  /* (union bpf_attr's BPF_OBJ_* fields; older headers lack path_fd) */
    attr.pathname = (uint64_t)(uintptr_t)path;
    attr.bpf_fd = (uint32_t)fd;
    attr.file_flags = flags;
    attr.path_fd = path_fd;
    errno = 0;
    long r = syscall(SYS_bpf, BPF_OBJ_PIN, &attr, size);
    if (r < 0) printf("%s: -1 %s\n", name, strerrorname_np(errno));
    else printf("%s: %ld\n", name, r);
}

int main(int argc, char **argv) {
    if (argc < 2) { fprintf(stderr, "usage: bpf_cases DIR\n"); return 2; }
    union bpf_attr create;
    memset(&create, 0, sizeof create);
    create.map_type = BPF_MAP_TYPE_ARRAY;
    create.key_size = create.value_size = create.max_entries = 4;
    map = (int)syscall(SYS_bpf, BPF_MAP_CREATE, &create, sizeof create);
    dir = open(argv[1], O_PATH | O_DIRECTORY);
    if (map < 0 || dir < 0) { perror("setup"); return 1; }
    char path[300], missing[300], sub[300];
    snprintf(path, sizeof path, "%s/m1", argv[1]);
    snprintf(missing, sizeof missing, "%s/missing/m", argv[1]);
    snprintf(sub, sizeof sub, "%s/sub", argv[1]);
    mkdir(sub, 0755);
    pin("pin", path, map, 0, 0, attr_size);
    struct stat st;
    printf("pinned: %s\n", stat(path, &st) == 0 ? "yes" : strerrorname_np(errno));
    pin("pin again", path, map, 0, 0, attr_size);
    pin("pin missing directory", missing, map, 0, 0, attr_size);
    pin("pin bad descriptor", path, 999, 0, 0, attr_size);
    pin("pin not a bpf object", path, 0, 0, 0, attr_size);
    pin("pin bad flags", path, map, 1, 0, attr_size);
    pin("pin path_fd without the flag", path, map, 0, dir, attr_size);
    pin("pin relative to path_fd", "m2", map, 1 << 14, dir, attr_size);
    printf("pinned relative: %s\n", fstatat(dir, "m2", &st, 0) == 0 ? "yes" : strerrorname_np(errno));
    pin("pin short attr", path, map, 0, 0, 12);
    unlink(path);
    unlinkat(dir, "m2", 0);
    rmdir(sub);
    return 0;
}
