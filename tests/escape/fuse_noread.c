/* fuse_noread MOUNTPOINT [nostatfs]: mount a FUSE file system with one regular file, "file" (one
   page), and a socket inode, "sock" (no socket is bound there), answering INIT, LOOKUP, GETATTR, OPEN, FLUSH and RELEASE but never READ; print
   "mounted" and serve until killed. With nostatfs, STATFS is never answered either. Touching a page mapped from "file" then waits until
   this process dies (its /dev/fuse descriptor closes and the connection is aborted). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <unistd.h>

struct in_header { uint32_t len, opcode; uint64_t unique, nodeid; uint32_t uid, gid, pid; uint16_t extlen, pad; };
struct out_header { uint32_t len; int32_t error; uint64_t unique; };
struct attr {
    uint64_t ino, size, blocks, atime, mtime, ctime;
    uint32_t atimensec, mtimensec, ctimensec, mode, nlink, uid, gid, rdev, blksize, flags;
};
struct entry_out { uint64_t nodeid, generation, entry_valid, attr_valid; uint32_t entry_nsec, attr_nsec; struct attr attr; };
struct attr_out { uint64_t valid; uint32_t nsec, dummy; struct attr attr; };
struct open_out { uint64_t fh; uint32_t flags; int32_t backing; };
struct init_out { uint32_t major, minor, readahead, flags; uint16_t background, congestion; uint32_t max_write, gran;
                  uint16_t pages, align; uint32_t flags2, stack; uint16_t timeout, unused[11]; };
enum { LOOKUP = 1, GETATTR = 3, OPEN = 14, READ = 15, STATFS = 17, RELEASE = 18, FLUSH = 25, INIT = 26, INTERRUPT = 36 };

static int dev;

static void reply(uint64_t unique, int error, const void *body, size_t size) {
    char buffer[512];
    struct out_header header = { (uint32_t)(sizeof header + size), -error, unique };
    memcpy(buffer, &header, sizeof header);
    if (size) memcpy(buffer + sizeof header, body, size);
    if (write(dev, buffer, header.len) < 0 && errno != ENOENT) perror("reply");
}

static void fill(struct attr *a, uint64_t node) {
    memset(a, 0, sizeof *a);
    a->ino = node;
    a->mode = node == 1 ? 040755 : node == 2 ? 0100644 : 0140777;
    a->nlink = 1;
    a->size = node == 1 ? 0 : 4096;
    a->blocks = 8;
    a->blksize = 4096;
}

int main(int argc, char **argv) {
    if (argc != 2 && (argc != 3 || strcmp(argv[2], "nostatfs"))) {
        fprintf(stderr, "usage: fuse_noread MOUNTPOINT [nostatfs]\n");
        return 2;
    }
    int never_statfs = argc == 3;
    dev = open("/dev/fuse", O_RDWR);
    if (dev < 0) { perror("/dev/fuse"); return 3; }
    char options[128];
    snprintf(options, sizeof options, "fd=%d,rootmode=40000,user_id=%d,group_id=%d", dev, getuid(), getgid());
    if (mount("noread", argv[1], "fuse.noread", MS_NOSUID | MS_NODEV, options) < 0) { perror("mount"); return 3; }
    printf("mounted\n");
    fflush(stdout);
    static char request[1 << 17 | 4096];
    for (;;) {
        ssize_t got = read(dev, request, sizeof request);
        if (got < 0) { if (errno == EINTR || errno == EAGAIN) continue; return 0; }
        struct in_header *in = (struct in_header *)request;
        char *body = request + sizeof *in;
        switch (in->opcode) {
        case INIT: {
            struct init_out out = { 0 };
            out.major = 7; out.minor = 31; out.readahead = ((uint32_t *)body)[2]; out.max_write = 4096;
            out.background = 1; out.congestion = 1;
            reply(in->unique, 0, &out, sizeof out);
            break;
        }
        case LOOKUP: {
            uint64_t node = !strcmp(body, "file") ? 2 : !strcmp(body, "sock") ? 3 : 0;
            if (!node) { reply(in->unique, ENOENT, NULL, 0); break; }
            struct entry_out out = { .nodeid = node, .entry_valid = 3600, .attr_valid = 3600 };
            fill(&out.attr, node);
            reply(in->unique, 0, &out, sizeof out);
            break;
        }
        case GETATTR: {
            struct attr_out out = { .valid = 3600 };
            fill(&out.attr, in->nodeid);
            reply(in->unique, 0, &out, sizeof out);
            break;
        }
        case OPEN: {
            struct open_out out = { 0 };
            reply(in->unique, 0, &out, sizeof out);
            break;
        }
        case READ: case INTERRUPT:
            break; /* never answered */
        case STATFS:
            if (never_statfs) break; /* asked: never answered either */
            reply(in->unique, ENOSYS, NULL, 0);
            break;
        case FLUSH: case RELEASE:
            reply(in->unique, 0, NULL, 0);
            break;
        default:
            reply(in->unique, ENOSYS, NULL, 0);
        }
    }
}
