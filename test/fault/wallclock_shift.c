/* SPDX-License-Identifier: Apache-2.0 */
/* A test-only LD_PRELOAD shim that moves the wall clock of one process (gettimeofday, time,
 * clock_gettime of CLOCK_REALTIME) by the seconds written in $QWD_WALLCLOCK_SHIFT_FILE, read at
 * every call; the monotonic clock is left alone. test_700_faults.py jumps qwd-helper's clock. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

int clock_gettime(clockid_t clock, struct timespec *now);
int gettimeofday(struct timeval *restrict now, void *restrict zone);
time_t time(time_t *now);

static long shift_s(void)
{
    const char *path = getenv("QWD_WALLCLOCK_SHIFT_FILE");
    char text[32] = "";
    int fd = path ? open(path, O_RDONLY | O_CLOEXEC) : -1;
    if (fd < 0) {
        return 0;
    }
    ssize_t n = read(fd, text, sizeof text - 1);
    close(fd);
    text[n > 0 ? n : 0] = '\0';
    return strtol(text, NULL, 10);
}

static int real_clock_gettime(clockid_t clock, struct timespec *now)
{
    static int (*real)(clockid_t, struct timespec *);
    if (!real) {
        real = (int (*)(clockid_t, struct timespec *))dlsym(RTLD_NEXT, "clock_gettime");
    }
    return real(clock, now);
}

int clock_gettime(clockid_t clock, struct timespec *now)
{
    int rv = real_clock_gettime(clock, now);
    if (rv == 0
        && (clock == CLOCK_REALTIME || clock == CLOCK_REALTIME_COARSE || clock == CLOCK_TAI)) {
        now->tv_sec += shift_s();
    }
    return rv;
}

int gettimeofday(struct timeval *restrict now, void *restrict zone)
{
    struct timespec wall;
    int rv = clock_gettime(CLOCK_REALTIME, &wall);
    if (rv == 0 && now) {
        now->tv_sec = wall.tv_sec;
        now->tv_usec = wall.tv_nsec / 1000;
    }
    return rv;
}

time_t time(time_t *now)
{
    struct timespec wall;
    clock_gettime(CLOCK_REALTIME, &wall);
    if (now) {
        *now = wall.tv_sec;
    }
    return wall.tv_sec;
}
