/* Make itself non-dumpable (as ssh-agent and gpg-agent do), then open a file: prints
   "open OK" or "open ERRNONAME". */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>

int main(int argc, char **argv) {
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0) { printf("prctl %s\n", strerrorname_np(errno)); return 1; }
    int fd = open(argc > 1 ? argv[1] : "/etc/hostname", O_RDONLY);
    printf(fd < 0 ? "open %s\n" : "open OK\n", strerrorname_np(errno));
    return 0;
}
