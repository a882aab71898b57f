/* Attacks on the supervisor (this process's parent, or argv[1] if given): ptrace
   attach, process_vm_writev, writing /proc/PID/mem, taking its fd 3 with pidfd_getfd,
   stopping and killing it. Prints one line per attempt: "NAME ok" or "NAME ERRNO". */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <signal.h>
#include <unistd.h>

static void report(const char *name, long result) {
    if (result < 0) printf("%s %s\n", name, strerrorname_np(errno));
    else printf("%s ok\n", name);
}

int main(int argc, char **argv) {
    pid_t target = argc > 1 ? atoi(argv[1]) : getppid();
    setvbuf(stdout, NULL, _IONBF, 0);
    report("ptrace", ptrace(PTRACE_ATTACH, target, 0, 0));
    char byte = 0;
    struct iovec local = {&byte, 1}, remote = {(void *)0x400000, 1};
    report("process_vm_writev", process_vm_writev(target, &local, 1, &remote, 1, 0));
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/mem", target);
    report("proc_mem", open(path, O_RDWR));
    int pidfd = syscall(SYS_pidfd_open, target, 0);
    report("pidfd_getfd", pidfd < 0 ? -1 : syscall(SYS_pidfd_getfd, pidfd, 3, 0));
    report("pidfd_open", pidfd);
    report("tgkill", syscall(SYS_tgkill, target, target, SIGSTOP));
    report("kill", kill(target, SIGKILL));  /* last: if it worked, nothing would be left to report */
    return 0;
}
