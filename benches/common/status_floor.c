/* The floor for `hms-console status` (benches/core.rs): the least a client program can do for
 * the same answer. It connects to the core's socket (its first argument), sends the hello and
 * the status request hms-console sends (the next two arguments, each one protocol line, written
 * by the bench with the protocol's own encoder), reads the two answer lines and writes them to
 * stdout as they are: no parsing, no table, no runtime, no allocator, a C program's start. The time
 * between this and `hms-console status` is the CLI's own (its start-up, the JSON decoding and
 * the table); the time of this is the process start, the round trip and the core's answer. */
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static char buf[1 << 22];

static int send_all(int s, const char *text) {
    size_t n = strlen(text);
    return write(s, text, n) == (ssize_t)n ? 0 : -1;
}

int main(int argc, char **argv) {
    if (argc < 4) {
        return 2;
    }
    struct sockaddr_un to;
    memset(&to, 0, sizeof to);
    to.sun_family = AF_UNIX;
    strncpy(to.sun_path, argv[1], sizeof to.sun_path - 1);
    int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s < 0 || connect(s, (struct sockaddr *)&to, sizeof to) != 0) {
        return 3;
    }
    if (send_all(s, argv[2]) != 0) {
        return 1;
    }
    size_t n = 0;
    int lines = 0, asked = 0;
    while (lines < 2) {
        ssize_t got = read(s, buf + n, sizeof buf - n);
        if (got <= 0) {
            return 1;
        }
        for (ssize_t i = 0; i < got; i++) {
            lines += buf[n + i] == '\n';
        }
        n += (size_t)got;
        if (lines >= 1 && !asked) {
            if (send_all(s, argv[3]) != 0) {
                return 1;
            }
            asked = 1;
        }
    }
    return write(1, buf, n) == (ssize_t)n ? 0 : 1;
}
