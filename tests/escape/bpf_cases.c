/* bpf's BPF_OBJ_PIN and BPF_OBJ_GET, one line per case with its result and errno, so that a run natively
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
static void obj(int cmd, const char *name, const char *path, int fd, uint32_t flags, int path_fd, unsigned size);

static void pin(const char *name, const char *path, int fd, uint32_t flags, int path_fd, unsigned size) {
    obj(BPF_OBJ_PIN, name, path, fd, flags, path_fd, size);
}

static void get(const char *name, const char *path, int fd, uint32_t flags, int path_fd) {
    obj(BPF_OBJ_GET, name, path, fd, flags, path_fd, attr_size);
}

static void obj(int cmd, const char *name, const char *path, int fd, uint32_t flags, int path_fd, unsigned size) {
    struct { uint64_t pathname; uint32_t bpf_fd, file_flags; int32_t path_fd; char rest[108]; } attr;
    memset(&attr, 0, sizeof attr);  /* (union bpf_attr's BPF_OBJ_* fields; older headers lack path_fd) */
    attr.pathname = (uint64_t)(uintptr_t)path;
    attr.bpf_fd = (uint32_t)fd;
    attr.file_flags = flags;
    attr.path_fd = path_fd;
    errno = 0;
    long r = syscall(SYS_bpf, cmd, &attr, size);
    if (r < 0) printf("%s: -1 %s\n", name, strerrorname_np(errno));
    else if (cmd == BPF_OBJ_PIN) printf("%s: %ld\n", name, r);
    else {  /* a new descriptor: of the map pinned there, close-on-exec, its access mode */
        struct { uint32_t type, id, key_size, value_size, max_entries; char rest[100]; } info;
        struct { uint32_t fd, len; uint64_t info; char rest[112]; } query;
        memset(&info, 0, sizeof info);
        memset(&query, 0, sizeof query);
        query.fd = (uint32_t)r;
        query.len = sizeof info;
        query.info = (uint64_t)(uintptr_t)&info;
        long q = syscall(SYS_bpf, BPF_OBJ_GET_INFO_BY_FD, &query, 128);
        printf("%s: a descriptor, map type %u max_entries %u (%s), cloexec %d, mode %o\n", name, info.type,
               info.max_entries, q == 0 ? "info" : strerrorname_np(errno), fcntl((int)r, F_GETFD) & FD_CLOEXEC,
               fcntl((int)r, F_GETFL) & O_ACCMODE);
        close((int)r);
    }
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
    get("get", path, 0, 0, 0);
    get("get read-only", path, 0, BPF_F_RDONLY, 0);
    get("get write-only", path, 0, BPF_F_WRONLY, 0);
    get("get both", path, 0, BPF_F_RDONLY | BPF_F_WRONLY, 0);
    get("get with a bpf_fd", path, map, 0, 0);
    get("get missing", missing, 0, 0, 0);
    get("get a directory", sub, 0, 0, 0);
    get("get relative to path_fd", "m2", 0, 1 << 14, dir);
    unlink(path);
    unlinkat(dir, "m2", 0);
    rmdir(sub);
    return 0;
}
