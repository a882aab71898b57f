/* pauses: waits for a signal, making no system call before (built static: no loader). */
#include <unistd.h>
int main(void) { pause(); return 0; }
