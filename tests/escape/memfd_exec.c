/* Copy /bin/true into a memfd and execveat it: a binary no policy names. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
extern char **environ;
int main(void) {
    int src = open("/bin/true", O_RDONLY);
    struct stat st;
    fstat(src, &st);
    int mem = memfd_create("payload", 0);
    sendfile(mem, src, NULL, st.st_size);
    char *argv[] = {"payload", NULL};
    syscall(SYS_execveat, mem, "", argv, environ, AT_EMPTY_PATH);
    perror("execveat");
    return 3;
}
