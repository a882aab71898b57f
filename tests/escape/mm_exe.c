/* The impersonation of issue 12: mm_exe TARGET, run as `ld.so ./mm_exe TARGET` (so
   /proc/self/exe is ld.so, which can be unmapped once the program runs; built with
   -z now: nothing is bound lazily through it afterwards). In a user namespace of its own
   when not root, it unmaps every mapping of its executable, then points /proc/self/exe at
   TARGET with prctl(PR_SET_MM, PR_SET_MM_MAP) (every other field as it is now). Prints
   "set_mm ok|ERRNONAME exe PATH" with what /proc/self/exe names then. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <linux/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>
int main(int argc, char **argv) {
    char exe[4096] = {0}, line[8192];
    readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (geteuid() != 0 && unshare(CLONE_NEWUSER) < 0) { printf("unshare %s\n", strerrorname_np(errno)); _exit(1); }
    int target = open(argv[1], O_RDONLY);
    if (target < 0) { printf("open %s\n", strerrorname_np(errno)); _exit(1); }
    FILE *maps = fopen("/proc/self/maps", "r");
    unsigned long ranges[64][2]; int n = 0;
    while (fgets(line, sizeof line, maps) && n < 64) {
        unsigned long a, b; char path[4096] = {0};
        if (sscanf(line, "%lx-%lx %*s %*s %*s %*s %4095s", &a, &b, path) >= 2 && !strcmp(path, exe)) { ranges[n][0] = a; ranges[n][1] = b; n++; }
    }
    fclose(maps);
    for (int i = 0; i < n; i++) syscall(SYS_munmap, ranges[i][0], ranges[i][1] - ranges[i][0]);
    /* PR_SET_MM_MAP: every field as it is now, and the new exe */
    char stat[8192] = {0};
    int sfd = syscall(SYS_open, "/proc/self/stat", O_RDONLY);
    syscall(SYS_read, sfd, stat, sizeof stat - 1);
    char *p = strrchr(stat, ')') + 2;
    unsigned long f[60] = {0}; int k = 3;   /* p starts at field 3 (state) */
    for (char *tok = strtok(p, " "); tok && k < 60; tok = strtok(NULL, " "), k++) f[k] = strtoul(tok, NULL, 10);
    struct prctl_mm_map map = {
        .start_code = f[26], .end_code = f[27], .start_data = f[45], .end_data = f[46],
        .start_brk = f[47], .brk = (unsigned long)syscall(SYS_brk, 0), .start_stack = f[28],
        .arg_start = f[48], .arg_end = f[49], .env_start = f[50], .env_end = f[51],
        .auxv = NULL, .auxv_size = 0, .exe_fd = (unsigned)target,
    };
    long r = syscall(SYS_prctl, PR_SET_MM, PR_SET_MM_MAP, &map, sizeof map, 0);
    char now[4096] = {0};
    syscall(SYS_readlink, "/proc/self/exe", now, sizeof now - 1);
    char out[8300];
    int len = snprintf(out, sizeof out, "set_mm %s exe %s\n", r < 0 ? strerrorname_np(errno) : "ok", now);
    syscall(SYS_write, 1, out, len);
    syscall(SYS_exit_group, 0);
}
