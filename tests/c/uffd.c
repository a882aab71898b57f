/* Try both ways of getting a userfaultfd: the system call, and /dev/userfaultfd's
 * USERFAULTFD_IOC_NEW ioctl. Prints one line each: "syscall: ok" or "syscall: ERRNO". */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(void) {
    int fd = syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
    if (fd >= 0) { printf("syscall: ok\n"); close(fd); } else printf("syscall: %d\n", errno);
    int dev = open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);
    if (dev < 0) { printf("device: open %d\n", errno); return 0; }
    fd = ioctl(dev, USERFAULTFD_IOC_NEW, O_CLOEXEC | O_NONBLOCK);
    if (fd >= 0) { printf("device: ok\n"); close(fd); } else printf("device: %d\n", errno);
    return 0;
}
