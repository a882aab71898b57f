/* A syscall number with the x32 bit set (x32 getpid is 0x40000027). */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
int main(void) {
    long ret;
    __asm__ volatile("syscall" : "=a"(ret) : "a"(0x40000000L | 39L) : "rcx", "r11", "memory");
    if (ret < 0) printf("x32 getpid: %s\n", strerror((int)-ret));
    else printf("x32 getpid: %ld\n", ret);
    return 0;
}
