// WASI preview 1 conformance cases that need no filesystem, modelled on the wasi-testsuite's
// (github.com/WebAssembly/wasi-testsuite: tests/c and tests/rust), run through Debian's wasi-libc
// as a reactor: each export is one case and returns 0 when it passes, else the line that failed
// (a non-zero code is the call's error). canister/engine/tests/conformance.rs runs them.
//
// Build (cargo xtask build-plugins does it):
//   clang --target=wasm32-wasi -O2 -mexec-model=reactor -Wl,--strip-all -o c_wasi_suite.wasm conformance.c
#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <wasi/api.h>

#define EXPORT(name) __attribute__((export_name(name)))
#define CHECK(cond)                                                     \
    do {                                                                \
        if (!(cond)) {                                                  \
            fprintf(stderr, "%s:%d: %s\n", __func__, __LINE__, #cond); \
            return __LINE__;                                            \
        }                                                               \
    } while (0)

// tests/c/clock_getres-monotonic.c, clock_getres-realtime.c
EXPORT("clock_getres") int clock_getres_case(void) {
    struct timespec ts;
    CHECK(clock_getres(CLOCK_MONOTONIC, &ts) == 0);
    CHECK(ts.tv_sec > 0 || ts.tv_nsec > 0);
    CHECK(clock_getres(CLOCK_REALTIME, &ts) == 0);
    CHECK(ts.tv_sec > 0 || ts.tv_nsec > 0);
    return 0;
}

// tests/c/clock_gettime-monotonic.c, clock_gettime-realtime.c; tests/rust clock_time_get
EXPORT("clock_gettime") int clock_gettime_case(void) {
    struct timespec a, b, r;
    CHECK(clock_gettime(CLOCK_MONOTONIC, &a) == 0);
    CHECK(clock_gettime(CLOCK_MONOTONIC, &b) == 0);
    CHECK(b.tv_sec > a.tv_sec || (b.tv_sec == a.tv_sec && b.tv_nsec >= a.tv_nsec));
    CHECK(clock_gettime(CLOCK_REALTIME, &r) == 0);
    CHECK(time(NULL) == r.tv_sec);
    return 0;
}

// tests/c/stdio.c; tests/rust stdio: the three standard streams are usable.
EXPORT("stdio") int stdio_case(void) {
    CHECK(printf("hello from stdout\n") > 0);
    CHECK(fprintf(stderr, "hello from stderr\n") > 0);
    CHECK(fflush(stdout) == 0 && fflush(stderr) == 0);
    CHECK(isatty(1) == 1);
    char buf[16];
    size_t n = fread(buf, 1, sizeof buf, stdin);
    CHECK(n == 5 && memcmp(buf, "input", 5) == 0);
    CHECK(fread(buf, 1, sizeof buf, stdin) == 0 && feof(stdin));
    clearerr(stdin);
    return 0;
}

// assemblyscript fd_write-to-invalid-fd, fd_write-to-stdout
EXPORT("fd_write") int fd_write_case(void) {
    CHECK(write(1, "to stdout\n", 10) == 10);
    errno = 0;
    CHECK(write(42, "x", 1) == -1 && errno == EBADF);
    errno = 0;
    CHECK(write(0, "x", 1) == -1 && errno == EBADF);
    return 0;
}

// tests/c/sock_shutdown-invalid_fd.c, sock_shutdown-not_sock.c
EXPORT("sock_shutdown") int sock_shutdown_case(void) {
    errno = 0;
    CHECK(shutdown(42, SHUT_RDWR) == -1 && errno == EBADF);
    errno = 0;
    CHECK(shutdown(0, SHUT_RD) == -1 && errno == ENOTSOCK);
    return 0;
}

// tests/rust sched_yield
EXPORT("sched_yield") int sched_yield_case(void) {
    CHECK(sched_yield() == 0);
    return 0;
}

// tests/rust poll_oneoff_stdio; tests/c/sleep.c (a timeout fires at once: nothing sleeps)
EXPORT("poll_stdio") int poll_stdio_case(void) {
    struct pollfd fds[2] = {{.fd = 0, .events = POLLIN}, {.fd = 1, .events = POLLOUT}};
    CHECK(poll(fds, 2, 1000) == 2);
    CHECK(fds[0].revents & POLLIN);
    CHECK(fds[1].revents & POLLOUT);
    CHECK(poll(NULL, 0, 3600 * 1000) == 0);
    struct timespec hour = {.tv_sec = 3600};
    CHECK(nanosleep(&hour, NULL) == 0);
    return 0;
}

// assemblyscript random_get-non-zero-length, random_get-zero-length; tests/rust big_random_buf
EXPORT("random") int random_case(void) {
    static unsigned char buf[65536];
    CHECK(getentropy(buf, 0) == 0);
    for (size_t at = 0; at < sizeof buf; at += 256) CHECK(getentropy(buf + at, 256) == 0);
    size_t zero = 0;
    for (size_t i = 0; i < sizeof buf; i++) zero += buf[i] == 0;
    CHECK(zero < sizeof buf / 64);
    return 0;
}

// assemblyscript args_get-multiple-arguments, args_sizes_get-multiple-arguments
EXPORT("args") int args_case(void) {
    __wasi_size_t argc, size;
    CHECK(__wasi_args_sizes_get(&argc, &size) == 0);
    CHECK(argc == 3 && size == sizeof "prog" + sizeof "first" + sizeof "second");
    char *argv[3], buf[32];
    CHECK(__wasi_args_get((uint8_t **)argv, (uint8_t *)buf) == 0);
    CHECK(strcmp(argv[0], "prog") == 0 && strcmp(argv[1], "first") == 0);
    CHECK(strcmp(argv[2], "second") == 0);
    return 0;
}

// assemblyscript environ_get-multiple-variables, environ_sizes_get-multiple-variables
EXPORT("environ") int environ_case(void) {
    CHECK(getenv("SUITE") && strcmp(getenv("SUITE"), "wasi") == 0);
    CHECK(getenv("EMPTY") && strcmp(getenv("EMPTY"), "") == 0);
    CHECK(getenv("MISSING") == NULL);
    return 0;
}

// No filesystem: no preopens, so opening any path fails (with an errno, not a trap).
EXPORT("no_filesystem") int no_filesystem_case(void) {
    errno = 0;
    CHECK(fopen("/etc/passwd", "r") == NULL && errno != 0);
    errno = 0;
    CHECK(fopen("data.txt", "w") == NULL && errno != 0);
    __wasi_prestat_t prestat;
    CHECK(__wasi_fd_prestat_get(3, &prestat) == __WASI_ERRNO_BADF);
    return 0;
}

// assemblyscript proc_exit-success, proc_exit-failure
EXPORT("exit_success") int exit_success_case(void) {
    printf("exiting with 0\n");
    exit(0);
}

EXPORT("exit_failure") int exit_failure_case(void) {
    exit(33);
}
