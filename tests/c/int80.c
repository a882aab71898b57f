/* Open a file through the 32-bit int 0x80 entry (i386 numbers: open is 5). */
#include <stdio.h>
static const char path[] = "/etc/hostname";
int main(void) {
    long ret;
    __asm__ volatile("int $0x80" : "=a"(ret) : "a"(5L), "b"(path), "c"(0L), "d"(0L) : "memory");
    printf("int80 open returned %ld\n", ret);
    return 0;
}
