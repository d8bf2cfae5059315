/* SPDX-License-Identifier: Apache-2.0 */
/* What a session's VM uses on this host, read from /proc and its overlay: CPU time, memory
 * (resident and proportional), and the overlay's allocated size. */
#ifndef QWD_HELPER_USAGE_H
#define QWD_HELPER_USAGE_H

#include <jansson.h>
#include <sys/types.h>

/* Adds to object what pid (a QEMU of this host) and disk (its overlay) use: cpu_seconds,
 * cpu_percent (the average since the process started: 100 = one host CPU busy), rss_bytes,
 * pss_bytes, disk_bytes. What cannot be read (a process gone, a file missing) is left out. */
void helper_usage_read(pid_t pid, const char *disk, json_t *object);

#endif
