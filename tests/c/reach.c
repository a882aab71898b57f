/* Calls that reach outside the process, one class per mode, each printing "MODE: ok" or
   "MODE: ERRNO-NAME". The harmless and the attack variant of a class make the same
   calls and differ only in what they reach (the argument TARGET), so a learned rule that
   ignored that argument would let the attack through.
     reach ptrace TARGET        PTRACE_ATTACH to TARGET ("child": a child of ours, or a pid)
     reach prlimit TARGET       prlimit64(TARGET, RLIMIT_NOFILE, &limit, NULL)
     reach kill TARGET          kill(TARGET, SIGCONT)
     reach pidfd TARGET         pidfd_open(TARGET) + pidfd_send_signal(SIGCONT)
     reach ioctl REQUEST        on a pty master: TCFLSH (harmless) or TIOCSTI (types into it)
     reach open_tree PATH       open_tree(AT_FDCWD, PATH, 0)
     reach handle A B HEX       opens A and B, open_by_handle_at("/" , HEX) (handle of A or B)
     reach fchmod A B WHICH     opens A and B read-only, fchmod(WHICH's fd, 0640)
     reach rename A B           rename(A, B), then back
     reach link A B             link(A, B), then unlink(B)
     reach exchange A B         renameat2(A, B, RENAME_EXCHANGE), then back
     reach handle-of PATH       print PATH's handle as hex (to build an attack)
     reach abort                abort(): raise SIGABRT on itself
     reach mprotect             mprotect a page PROT_READ|PROT_EXEC and report its errno */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

static int report(const char *mode, long result) {
    if (result < 0) {
        printf("%s: %s\n", mode, strerrorname_np(errno));
        return 1;
    }
    printf("%s: ok\n", mode);
    return 0;
}

static pid_t child = 0;

static pid_t target(const char *text) {
    child = fork();
    if (child == 0) {
        pause();
        _exit(0);
    }
    return strcmp(text, "child") == 0 ? child : (pid_t)atoi(text);
}

static void reap(void) {
    if (child > 0) {
        kill(child, SIGKILL);
        waitpid(child, NULL, 0);
    }
}

int main(int argc, char **argv) {
    if (argc < 2)
        return 2;
    const char *mode = argv[1];
    int status = 0;
    if (strcmp(mode, "ptrace") == 0 && argc == 3) {
        pid_t pid = target(argv[2]);
        status = report(mode, ptrace(PTRACE_ATTACH, pid, 0, 0));
        if (status == 0) {
            waitpid(pid, NULL, 0);
            ptrace(PTRACE_DETACH, pid, 0, 0);
        }
    } else if (strcmp(mode, "prlimit") == 0 && argc == 3) {
        pid_t pid = target(argv[2]);
        struct rlimit limit = {64, 64};
        status = report(mode, syscall(SYS_prlimit64, pid, RLIMIT_NOFILE, &limit, NULL));
    } else if (strcmp(mode, "kill") == 0 && argc == 3) {
        status = report(mode, kill(target(argv[2]), SIGCONT));
    } else if (strcmp(mode, "pidfd") == 0 && argc == 3) {
        long fd = syscall(SYS_pidfd_open, target(argv[2]), 0);
        status = report(mode, fd < 0 ? fd : syscall(SYS_pidfd_send_signal, (int)fd, SIGCONT, NULL, 0));
    } else if (strcmp(mode, "ioctl") == 0 && argc == 3) {
        int master = posix_openpt(O_RDWR | O_NOCTTY);
        char byte = 'x';
        if (master < 0 || unlockpt(master) < 0)
            return report("ioctl setup", -1);
        if (strcmp(argv[2], "TIOCSTI") == 0)
            status = report(mode, ioctl(master, TIOCSTI, &byte));
        else
            status = report(mode, ioctl(master, TCFLSH, TCIFLUSH));
    } else if (strcmp(mode, "open_tree") == 0 && argc == 3) {
        status = report(mode, syscall(SYS_open_tree, AT_FDCWD, argv[2], 0));
    } else if (strcmp(mode, "handle-of") == 0 && argc == 3) {
        struct file_handle *handle = malloc(sizeof *handle + MAX_HANDLE_SZ);
        int mount_id;
        handle->handle_bytes = MAX_HANDLE_SZ;
        if (name_to_handle_at(AT_FDCWD, argv[2], handle, &mount_id, 0) < 0)
            return report(mode, -1);
        printf("%d:", handle->handle_type);
        for (unsigned i = 0; i < handle->handle_bytes; i++)
            printf("%02x", handle->f_handle[i]);
        printf("\n");
    } else if (strcmp(mode, "handle") == 0 && argc == 5) {
        int a = open(argv[2], O_RDONLY), b = open(argv[3], O_RDONLY), root = open("/", O_RDONLY | O_DIRECTORY);
        struct file_handle *handle = malloc(sizeof *handle + MAX_HANDLE_SZ);
        const char *hex = strchr(argv[4], ':') + 1;
        handle->handle_type = atoi(argv[4]);
        handle->handle_bytes = strlen(hex) / 2;
        for (unsigned i = 0; i < handle->handle_bytes; i++)
            sscanf(hex + 2 * i, "%2hhx", &handle->f_handle[i]);
        if (a < 0 || b < 0 || root < 0)
            return report("handle setup", -1);
        status = report(mode, open_by_handle_at(root, handle, O_RDONLY));
    } else if (strcmp(mode, "fchmod") == 0 && argc == 5) {
        int a = open(argv[2], O_RDONLY), b = open(argv[3], O_RDONLY);
        if (a < 0 || b < 0)
            return report("fchmod setup", -1);
        status = report(mode, fchmod(strcmp(argv[4], "A") == 0 ? a : b, 0640));
    } else if (strcmp(mode, "rename") == 0 && argc == 4) {
        status = report(mode, rename(argv[2], argv[3]));
        if (status == 0)
            rename(argv[3], argv[2]);
    } else if (strcmp(mode, "link") == 0 && argc == 4) {
        status = report(mode, link(argv[2], argv[3]));
        if (status == 0)
            unlink(argv[3]);
    } else if (strcmp(mode, "exchange") == 0 && argc == 4) {
        status = report(mode, renameat2(AT_FDCWD, argv[2], AT_FDCWD, argv[3], RENAME_EXCHANGE));
        if (status == 0)
            renameat2(AT_FDCWD, argv[2], AT_FDCWD, argv[3], RENAME_EXCHANGE);
    } else if (strcmp(mode, "abort") == 0) {
        fflush(stdout);
        abort();
    } else if (strcmp(mode, "mprotect") == 0) {
        void *page = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        status = report(mode, mprotect(page, 4096, PROT_READ | PROT_EXEC));
    } else if (strcmp(mode, "nothing") == 0) {
        status = report(mode, 0);
    } else {
        return 2;
    }
    reap();
    return status;
}
