/* fuse_stall MOUNTPOINT: mount a FUSE file system whose server never answers (not even
   its INIT), print "mounted", and wait. Every lookup below MOUNTPOINT then waits until
   this process dies (its /dev/fuse descriptor closes and the connection is aborted). */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <sys/mount.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc != 2) { fprintf(stderr, "usage: fuse_stall MOUNTPOINT\n"); return 2; }
    int fd = open("/dev/fuse", O_RDWR);
    if (fd < 0) { perror("/dev/fuse"); return 3; }
    char options[128];
    snprintf(options, sizeof options, "fd=%d,rootmode=40000,user_id=0,group_id=0", fd);
    if (mount("stall", argv[1], "fuse.stall", MS_NOSUID | MS_NODEV, options) < 0) { perror("mount"); return 3; }
    printf("mounted\n");
    fflush(stdout);
    for (;;) pause();
}
