/* fuse_chroot DIR: in a mount namespace of its own, mount a FUSE file system whose server
   never answers (this process holds /dev/fuse and never reads it) at DIR/mnt, chroot to
   DIR, print "mounted" and stat "/mnt/x". The mount is seen by no one outside; the stat
   waits until this process is killed (a lookup waiting for INIT can be). Prints
   "stat RESULT" if it ever returns. Needs CAP_SYS_ADMIN (root, or run it under
   `unshare -Ur`). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc != 2) { fprintf(stderr, "usage: fuse_chroot DIR\n"); return 2; }
    if (unshare(CLONE_NEWNS) < 0) { perror("unshare"); return 3; }
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) { perror("mount --make-rprivate"); return 3; }
    char point[4096];
    snprintf(point, sizeof point, "%s/mnt", argv[1]);
    mkdir(point, 0755);
    int fd = open("/dev/fuse", O_RDWR);
    if (fd < 0) { perror("/dev/fuse"); return 3; }
    char options[128];
    snprintf(options, sizeof options, "fd=%d,rootmode=40000,user_id=%d,group_id=%d", fd, getuid(), getgid());
    if (mount("stall", point, "fuse.stall", MS_NOSUID | MS_NODEV, options) < 0) { perror("mount"); return 3; }
    if (chroot(argv[1]) < 0 || chdir("/") < 0) { perror("chroot"); return 3; }
    printf("mounted\n");
    fflush(stdout);
    struct stat st;
    int result = stat("/mnt/x", &st);
    printf("stat %d %s\n", result, result ? strerror(errno) : "");
    return 0;
}
