/* Calls that change two names: write NAME (harmless: open for writing), or rename / link /
   exchange (renameat2 RENAME_EXCHANGE) OLD NEW. Prints "OP OK" or "OP ERRNO". */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc < 3) return 2;
    const char *op = argv[1];
    long r;
    if (!strcmp(op, "write")) {
        r = open(argv[2], O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (r >= 0) r = write((int)r, "allowed\n", 8) == 8 ? 0 : -1;
    } else if (argc < 4) {
        return 2;
    } else if (!strcmp(op, "rename")) {
        r = rename(argv[2], argv[3]);
    } else if (!strcmp(op, "link")) {
        r = link(argv[2], argv[3]);
    } else if (!strcmp(op, "exchange")) {
        r = syscall(SYS_renameat2, AT_FDCWD, argv[2], AT_FDCWD, argv[3], RENAME_EXCHANGE);
    } else {
        return 2;
    }
    printf("%s %s\n", op, r < 0 ? strerrorname_np(errno) : "OK");
    return 0;
}
