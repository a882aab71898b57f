/* tun_netns: in a network namespace of its own (as a user, with a user namespace of its
   own first), open /dev/net/tun and make the interface "stx7tun0"; then say where it is:
   "own=1" when this namespace has it (natively), "host=1" when /sys/class/net (the
   mount's namespace, the host's) shows it. Or "STEP ERRNONAME". */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <linux/if_tun.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

int main(void) {
    int flags = CLONE_NEWNET | (geteuid() != 0 ? CLONE_NEWUSER : 0);
    if (unshare(flags) < 0) { printf("unshare %s\n", strerrorname_np(errno)); return 1; }
    int fd = open("/dev/net/tun", O_RDWR);
    if (fd < 0) { printf("open %s\n", strerrorname_np(errno)); return 0; }
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
    strcpy(ifr.ifr_name, "stx7tun0");
    if (ioctl(fd, TUNSETIFF, &ifr) < 0) { printf("TUNSETIFF %s\n", strerrorname_np(errno)); return 0; }
    int own = if_nametoindex("stx7tun0") != 0;
    int host = access("/sys/class/net/stx7tun0", F_OK) == 0;
    printf("own=%d host=%d\n", own, host);
    return 0;
}
