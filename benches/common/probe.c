/* The restart probe of the benches (see `Probe` in benches/common/mod.rs): the child every
 * restart timing supervises. It reads CLOCK_MONOTONIC first thing, sends its pid and that time
 * (little-endian u32 + u64) as one datagram to the Unix socket named by its argument, then
 * waits to be killed.
 *
 * A tiny static C program rather than the bench executable re-run: the figure is "kill -> the
 * new child's main", and the bench executable (dynamically linked, several MB, relocated by the
 * loader, Rust's runtime set up) spent 1.1-1.5 ms of every restart in its own start, more than
 * any supervisor did. This one starts in about a tenth of that, so the figures show the
 * supervisors, close to the "exec done" end point the goals were written for. */
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    if (argc < 2) {
        return 2;
    }
    uint64_t ns = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
    uint32_t pid = (uint32_t)getpid();
    unsigned char msg[12];
    for (int i = 0; i < 4; i++) {
        msg[i] = (unsigned char)(pid >> (8 * i));
    }
    for (int i = 0; i < 8; i++) {
        msg[4 + i] = (unsigned char)(ns >> (8 * i));
    }
    struct sockaddr_un to;
    memset(&to, 0, sizeof to);
    to.sun_family = AF_UNIX;
    strncpy(to.sun_path, argv[1], sizeof to.sun_path - 1);
    int s = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s >= 0) {
        sendto(s, msg, sizeof msg, 0, (struct sockaddr *)&to, sizeof to);
        close(s);
    }
    for (;;) {
        pause();
    }
}
