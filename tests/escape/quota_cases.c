/* quotactl's normal use, one line per case (its result, errno and what it wrote), so that
   a run natively and one under a policy that decides on its paths (carried out by
   systrace's helper, kernel/emulate_mount.py) can be compared line by line.
   usage: quota_cases DEV FILE MISSING
   DEV a mounted block device (the root file system's: on a kernel without CONFIG_QUOTA,
   as here, every command on it fails with ESRCH, after the kernel's own checks), FILE a
   regular file, MISSING a name that does not exist. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/quota.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/dqblk_xfs.h>

static unsigned char buffer[256];

static void report(const char *name, long r, size_t shown) {
    int saved = errno;
    printf("%s: %ld", name, r);
    if (r < 0) printf(" %s", strerrorname_np(saved));
    else if (shown) {
        printf(" ");
        for (size_t i = 0; i < shown; i++) printf("%02x", buffer[i]);
    }
    printf("\n");
}

static long q(int cmd, const char *special, int id, void *addr) {
    errno = 0;
    return syscall(SYS_quotactl, cmd, special, id, addr);
}

int main(int argc, char **argv) {
    if (argc < 4) { fprintf(stderr, "usage: quota_cases DEV FILE MISSING\n"); return 2; }
    const char *dev = argv[1], *file = argv[2], *missing = argv[3];
    memset(buffer, 0xa5, sizeof buffer);
    report("getfmt", q(QCMD(Q_GETFMT, USRQUOTA), dev, 0, buffer), 8);
    memset(buffer, 0xa5, sizeof buffer);
    report("getinfo", q(QCMD(Q_GETINFO, USRQUOTA), dev, 0, buffer), 32);
    struct if_dqinfo info = {0};
    report("setinfo", q(QCMD(Q_SETINFO, USRQUOTA), dev, 0, &info), 0);
    memset(buffer, 0xa5, sizeof buffer);
    report("getquota", q(QCMD(Q_GETQUOTA, USRQUOTA), dev, 0, buffer), 16);
    struct if_dqblk limits = {.dqb_bhardlimit = 1234, .dqb_bsoftlimit = 1000, .dqb_valid = QIF_BLIMITS};
    report("setquota", q(QCMD(Q_SETQUOTA, USRQUOTA), dev, 4321, &limits), 0);
    memset(buffer, 0xa5, sizeof buffer);
    report("getquota set", q(QCMD(Q_GETQUOTA, USRQUOTA), dev, 4321, buffer), 16);
    memset(buffer, 0xa5, sizeof buffer);
    report("getnextquota", q(QCMD(Q_GETNEXTQUOTA, USRQUOTA), dev, 1, buffer), 80);
    memset(buffer, 0xa5, sizeof buffer);
    report("xgetqstat", q(QCMD(Q_XGETQSTAT, USRQUOTA), dev, 0, buffer), 4);
    memset(buffer, 0xa5, sizeof buffer);
    ((struct fs_quota_statv *)buffer)->qs_version = FS_QSTATV_VERSION1;
    report("xgetqstatv", q(QCMD(Q_XGETQSTATV, USRQUOTA), dev, 0, buffer), 4);
    memset(buffer, 0xa5, sizeof buffer);
    report("xgetquota", q(QCMD(Q_XGETQUOTA, USRQUOTA), dev, 4321, buffer), 32);
    report("getquota unwritable", q(QCMD(Q_GETQUOTA, USRQUOTA), dev, 0, (void *)8), 0);
    report("setquota unreadable", q(QCMD(Q_SETQUOTA, USRQUOTA), dev, 4321, (void *)8), 0);
    report("sync all", q(QCMD(Q_SYNC, USRQUOTA), NULL, 0, NULL), 0);
    report("sync", q(QCMD(Q_SYNC, USRQUOTA), dev, 0, NULL), 0);
    report("getfmt file", q(QCMD(Q_GETFMT, USRQUOTA), file, 0, buffer), 0);
    report("getfmt missing", q(QCMD(Q_GETFMT, USRQUOTA), missing, 0, buffer), 0);
    report("quotaon missing file", q(QCMD(Q_QUOTAON, USRQUOTA), dev, QFMT_VFS_V0, (void *)missing), 0);
    report("quotaon file", q(QCMD(Q_QUOTAON, USRQUOTA), dev, QFMT_VFS_V0, (void *)file), 0);
    report("unknown command", q(QCMD(0x1234, USRQUOTA), dev, 0, (void *)8), 0);
    report("bad type", q(QCMD(Q_GETFMT, 7), dev, 0, buffer), 0);
    return 0;
}
