/* zc's benchmark baseline: the plainest possible TCP file transfer on Linux,
 * with no framing, no hashing and no checks beyond syscall results, so that
 * zc's figures can be read against what the kernel does on its own.
 *
 *   baseline send FILE HOST:PORT     connect (IPv4) and sendfile(2) all of FILE
 *   baseline recv OUT splice|rw      listen on 127.0.0.1 (a free port, said on
 *                                    stderr as "listening on 127.0.0.1:PORT"),
 *                                    take one connection and write it to OUT:
 *                                    splice(2) through a 1 MiB pipe, or
 *                                    read/write with a 1 MiB buffer
 *   baseline time REPORT CMD ARG...  run CMD; write "wall user sys maxrss_kib
 *                                    status" to REPORT (a small process of its
 *                                    own, so the peak RSS is CMD's alone)
 *
 * Built by bench/bench.py with `cc -O2`. Linux only (sendfile, splice). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define CHUNK (1 << 20)

static int die(const char *what) {
    perror(what);
    return 1;
}

static int do_send(const char *path, const char *dest) {
    char host[256];
    const char *colon = strrchr(dest, ':');
    if (!colon || (size_t)(colon - dest) >= sizeof host) {
        fprintf(stderr, "baseline: HOST:PORT expected, got %s\n", dest);
        return 2;
    }
    memcpy(host, dest, colon - dest);
    host[colon - dest] = 0;
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(atoi(colon + 1))};
    if (inet_pton(AF_INET, host, &addr.sin_addr) != 1) {
        fprintf(stderr, "baseline: not an IPv4 address: %s\n", host);
        return 2;
    }
    int in = open(path, O_RDONLY);
    struct stat st;
    if (in < 0 || fstat(in, &st) < 0) return die(path);
    int sock = socket(AF_INET, SOCK_STREAM, 0);
    if (sock < 0 || connect(sock, (struct sockaddr *)&addr, sizeof addr) < 0) return die("connect");
    off_t off = 0;
    while (off < st.st_size) {
        ssize_t n = sendfile(sock, in, &off, st.st_size - off);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return die("sendfile");
    }
    close(sock);
    return 0;
}

static int do_recv(const char *out_path, const char *mode) {
    int splicing = !strcmp(mode, "splice");
    if (!splicing && strcmp(mode, "rw")) {
        fprintf(stderr, "baseline: mode is splice or rw, not %s\n", mode);
        return 2;
    }
    int lsock = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    setsockopt(lsock, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in addr = {.sin_family = AF_INET};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t alen = sizeof addr;
    if (bind(lsock, (struct sockaddr *)&addr, sizeof addr) < 0 || listen(lsock, 1) < 0 ||
        getsockname(lsock, (struct sockaddr *)&addr, &alen) < 0)
        return die("listen");
    fprintf(stderr, "listening on 127.0.0.1:%d\n", ntohs(addr.sin_port));
    fflush(stderr);
    int sock = accept(lsock, NULL, NULL);
    if (sock < 0) return die("accept");
    int out = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (out < 0) return die(out_path);
    long long total = 0;
    if (splicing) {
        int pipefd[2];
        if (pipe(pipefd) < 0) return die("pipe");
        fcntl(pipefd[1], F_SETPIPE_SZ, CHUNK); /* a smaller pipe only costs calls */
        for (;;) {
            ssize_t n = splice(sock, NULL, pipefd[1], NULL, CHUNK, SPLICE_F_MOVE | SPLICE_F_MORE);
            if (n < 0 && errno == EINTR) continue;
            if (n < 0) return die("splice from the socket");
            if (n == 0) break;
            while (n > 0) {
                ssize_t m = splice(pipefd[0], NULL, out, NULL, n, SPLICE_F_MOVE | SPLICE_F_MORE);
                if (m < 0 && errno == EINTR) continue;
                if (m <= 0) return die("splice to the output");
                n -= m;
                total += m;
            }
        }
    } else {
        char *buf = malloc(CHUNK);
        if (!buf) return die("malloc");
        for (;;) {
            ssize_t n = read(sock, buf, CHUNK);
            if (n < 0 && errno == EINTR) continue;
            if (n < 0) return die("read");
            if (n == 0) break;
            for (char *p = buf; n > 0;) {
                ssize_t m = write(out, p, n);
                if (m < 0 && errno == EINTR) continue;
                if (m <= 0) return die("write");
                p += m;
                n -= m;
                total += m;
            }
        }
    }
    fprintf(stderr, "received %lld bytes\n", total);
    return 0;
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static double seconds(struct timeval tv) { return tv.tv_sec + tv.tv_usec / 1e6; }

static int do_time(const char *report, char **argv) {
    double start = now();
    pid_t pid = fork();
    if (pid < 0) return die("fork");
    if (pid == 0) {
        execvp(argv[0], argv);
        perror(argv[0]);
        _exit(127);
    }
    int status;
    struct rusage ru;
    while (wait4(pid, &status, 0, &ru) < 0)
        if (errno != EINTR) return die("wait4");
    double wall = now() - start;
    FILE *f = fopen(report, "w");
    if (!f) return die(report);
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    fprintf(f, "%.6f %.6f %.6f %ld %d\n", wall, seconds(ru.ru_utime), seconds(ru.ru_stime),
            ru.ru_maxrss, code);
    fclose(f);
    return code;
}

int main(int argc, char **argv) {
    if (argc == 4 && !strcmp(argv[1], "send")) return do_send(argv[2], argv[3]);
    if (argc == 4 && !strcmp(argv[1], "recv")) return do_recv(argv[2], argv[3]);
    if (argc >= 4 && !strcmp(argv[1], "time")) return do_time(argv[2], argv + 3);
    fprintf(stderr,
            "usage: baseline send FILE HOST:PORT\n"
            "       baseline recv OUT splice|rw\n"
            "       baseline time REPORT CMD [ARG...]\n");
    return 2;
}
