/* SPDX-License-Identifier: Apache-2.0 */
/* qwd-helper's log: one timestamped line per event, to log_file or stderr. Children that have
 * nothing better (websockify) write to the same file descriptor. */
#ifndef QWD_HELPER_LOG_H
#define QWD_HELPER_LOG_H

#include <stdarg.h>

#include "qwd_logno.h"

/* Opens path for appending (NULL: stderr). Returns 0, or -1 with errno set. */
int helper_log_open(const char *path);

/* The log's file descriptor, for children's stdout/stderr. */
int helper_log_fd(void);

void helper_log(const char *level, const char *format, ...) __attribute__((format(printf, 2, 3)));
void helper_logv(const char *level, const char *format, va_list args)
    __attribute__((format(printf, 2, 0)));

#define helper_log_info(...) helper_log("info", __VA_ARGS__)
#define helper_log_warn(...) helper_log("warn", __VA_ARGS__)
#define helper_log_error(...) helper_log("error", __VA_ARGS__)

#endif
