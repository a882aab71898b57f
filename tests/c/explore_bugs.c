/* One planted bug of each class that systrace --explore must find (tests/test_explore_campaign.py).
 * Usage: explore_bugs INPUT CONFIG. Only raw calls and one fopen, so that each bug is one site.
 *   1. an unchecked open, dereferenced: fopen's NULL goes to fgets (crashed);
 *   2. an unchecked allocation: mmap's MAP_FAILED is written to (crashed);
 *   3. a retry loop that spins on an error: open of CONFIG retried forever (hung, lasting failure);
 *   4. an ignored write error on the output: write's result is never looked at (ignored). */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc != 3)
        return 2;
    char line[64];
    FILE *in = fopen(argv[1], "r");
    if (!fgets(line, sizeof line, in)) /* bug 1: `in` is NULL when the open failed */
        strcpy(line, "(empty)\n");
    fclose(in);

    char *buffer = mmap(NULL, 1 << 16, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    memset(buffer, 'x', 1 << 16); /* bug 2: MAP_FAILED is not checked */

    int fd;
    while ((fd = open(argv[2], O_RDONLY)) < 0) /* bug 3: spins while the open keeps failing */
        ;
    close(fd);

    for (int i = 0; i < 4; i++) {
        char out[128];
        int n = snprintf(out, sizeof out, "%d: %.1s %s", i, buffer, line);
        write(1, out, n); /* bug 4: a failed write loses this line silently */
    }
    return 0;
}
