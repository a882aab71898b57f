/* A program with an error path nobody ran: if its settings file cannot be opened it
   dereferences NULL. Used by the README's fault-injection walkthrough:

     gcc -static -o crashy examples/crashy.c
     systrace --permit-all -E faults.log -r 20 --eligible openat ./crashy   # until it crashes
     systrace --permit-all -r 20 --eligible openat --seed N ./crashy        # the same crash
     systrace --permit-all --replay faults.log ./crashy                     # and again
*/
#include <stdio.h>
#include <string.h>

static int load_settings(const char *path) {
    FILE *file = fopen(path, "r");
    char line[256];
    int count = 0;
    while (fgets(line, sizeof line, file))  /* BUG: file may be NULL */
        count++;
    fclose(file);
    return count;
}

int main(void) {
    printf("settings: %d lines\n", load_settings("/etc/passwd"));
    printf("hosts: %d lines\n", load_settings("/etc/hosts"));
    return 0;
}
