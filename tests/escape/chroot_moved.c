/* chroot_moved DIR [move]: a child chroots to DIR/jail and waits; with "move" its parent
   then renames DIR/jail to DIR/jail2 (its root's name changes, not its root), lets it
   read "/f", and renames it back. Prints "read TEXT" (the child's) and "status N signalled S". */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc < 2) { fprintf(stderr, "usage: chroot_moved DIR [move]\n"); return 2; }
    char jail[4096], moved[4096], go;
    snprintf(jail, sizeof jail, "%s/jail", argv[1]);
    snprintf(moved, sizeof moved, "%s/jail2", argv[1]);
    int ready[2], start[2];
    if (pipe(ready) || pipe(start)) return 1;
    pid_t child = fork();
    if (child == 0) {
        char text[16] = {0};
        close(ready[0]);
        close(start[1]);  /* (the parent gone, its read ends) */
        if (chroot(jail) || chdir("/")) return 3;
        if (write(ready[1], "r", 1) != 1 || read(start[0], &go, 1) != 1) return 3;
        int fd = open("/f", O_RDONLY);
        if (fd < 0 || read(fd, text, sizeof text - 1) < 0) return 4;
        printf("read %s", text);
        return 0;
    }
    close(ready[1]);
    close(start[0]);
    if (read(ready[0], &go, 1) != 1) return 1;
    if (argc > 2 && rename(jail, moved)) { perror("rename"); return 1; }
    if (write(start[1], "g", 1) != 1) return 1;
    int status;
    waitpid(child, &status, 0);
    if (argc > 2) rename(moved, jail);
    printf("status %d signalled %d\n", WIFEXITED(status) ? WEXITSTATUS(status) : -1, WIFSIGNALED(status));
    return 0;
}
