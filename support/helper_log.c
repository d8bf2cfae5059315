/* SPDX-License-Identifier: Apache-2.0 */
/* Log lines are written with one write() each, so lines of the helper and of websockify never
 * interleave mid-line in the shared log file. */
#include "helper_log.h"

#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

/* A longer line is cut (its end is lost, never the line). */
#define LOG_LINE_MAX 2048

static int log_fd = STDERR_FILENO;

int helper_log_open(const char *path)
{
    if (!path) {
        return 0;
    }
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    if (fd < 0) {
        return -1;
    }
    log_fd = fd;
    return 0;
}

int helper_log_fd(void)
{
    return log_fd;
}

void helper_logv(const char *level, const char *format, va_list args)
{
    char line[LOG_LINE_MAX];
    struct timeval now;
    struct tm local;
    gettimeofday(&now, NULL);
    localtime_r(&now.tv_sec, &local);
    int len = (int)strftime(line, sizeof line, "%Y-%m-%d %H:%M:%S", &local);
    len += snprintf(line + len, sizeof line - (size_t)len, ".%03ld [%s] ", (long)now.tv_usec / 1000,
                    level);
    int body = vsnprintf(line + len, sizeof line - (size_t)len - 1, format, args);
    len = body < 0 ? len : len + body;
    if (len > (int)sizeof line - 2) {
        len = (int)sizeof line - 2;
    }
    line[len++] = '\n';
    ssize_t ignored = write(log_fd, line, (size_t)len);
    (void)ignored;
}

void helper_log(const char *level, const char *format, ...)
{
    va_list args;
    va_start(args, format);
    helper_logv(level, format, args);
    va_end(args);
}
