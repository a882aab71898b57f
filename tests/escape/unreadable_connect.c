/* ROUNDS connects whose address lies in a page a second thread maps (holding
   127.0.0.1:BAD) and unmaps in turn: a check that finds the address unreadable must not
   let the kernel read it later. Prints "bad N good G failed F" from getpeername: BAD > 0
   is an escape (a sixth argument: stop at the first). Mode "plain" connects to GOOD once, from a readable address (learning). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>
static char *page;
static long size;
static int bad;
static atomic_int stop;
static int holder;  /* a memfd holding the address: mapped, the page is complete at once */
static void *flip(void *arg) {
    while (!atomic_load(&stop)) {
        mmap(page, size, PROT_READ, MAP_SHARED | MAP_FIXED, holder, 0);
        for (volatile int i = 0; i < 3000; i++) {}
        munmap(page, size);
        for (volatile int i = 0; i < 3000; i++) {}
    }
    return arg;
}
int main(int argc, char **argv) {
    if (argc < 4) return 2;
    int race = !strcmp(argv[1], "race");
    int good = atoi(argv[2]);
    bad = atoi(argv[3]);
    int rounds = race && argc > 4 ? atoi(argv[4]) : 1;
    int until_bad = argc > 5;  /* stop at the first escape (natively) */
    size = sysconf(_SC_PAGESIZE);
    page = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    struct sockaddr_in plain = {.sin_family = AF_INET, .sin_port = htons(good), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    pthread_t t;
    if (race) {
        struct sockaddr_in forbidden = {.sin_family = AF_INET, .sin_port = htons(bad),
                                        .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        holder = memfd_create("address", 0);
        if (holder < 0 || ftruncate(holder, size) || pwrite(holder, &forbidden, sizeof forbidden, 0) < 0) return 1;
        munmap(page, size);
        pthread_create(&t, NULL, flip, NULL);
    }
    long counts[3] = {0};
    for (int i = 0; i < rounds; i++) {
        int s = socket(AF_INET, SOCK_STREAM, 0);
        if (connect(s, race ? (struct sockaddr *)page : (struct sockaddr *)&plain, sizeof plain) < 0) {
            counts[2]++; close(s); continue;
        }
        struct sockaddr_in peer; socklen_t len = sizeof peer;
        if (getpeername(s, (struct sockaddr *)&peer, &len) < 0) counts[2]++;
        else counts[ntohs(peer.sin_port) == bad ? 0 : 1]++;
        close(s);
        if (until_bad && counts[0]) break;
    }
    if (race) { atomic_store(&stop, 1); pthread_join(t, NULL); }
    printf("bad %ld good %ld failed %ld\n", counts[0], counts[1], counts[2]);
    return 0;
}
