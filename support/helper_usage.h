/* SPDX-License-Identifier: Apache-2.0 */
/* What a session's VM uses on this host, read from /proc and its overlay: CPU time, memory
 * (resident and proportional), and the overlay's allocated size. */
#ifndef QWD_HELPER_USAGE_H
#define QWD_HELPER_USAGE_H

#include "helper.h"

#include <apr_time.h>
#include <jansson.h>
#include <sys/types.h>

/* Adds to object what pid (a QEMU of this host) and disk (its overlay) use: cpu_seconds,
 * cpu_percent (the average since the process started: 100 = one host CPU busy), rss_bytes,
 * pss_bytes, disk_bytes. What cannot be read (a process gone, a file missing) is left out. */
void helper_usage_read(pid_t pid, const char *disk, json_t *object);

/* The last reading of each session's VM, so that a page asking every second does not read
 * every VM's smaps_rollup every second (each read walks the VM's page tables: 50 idle TCG
 * guests ~50 ms at load 5, ~0.2 s while they boot, during which the helper answers nobody). */
helper_usage_cache *helper_usage_cache_make(apr_pool_t *pool);

/* Adds to object what helper_usage_read would, from a reading of the VM of session_id made
 * less than max_age ago (helper_clock_now() time; each session's reading is read again after
 * between half of max_age and max_age, so that readings made together spread out); a reading
 * of another pid (the VM was relaunched) is read again at once. max_age 0: always read. */
void helper_usage_cached(helper_usage_cache *cache, const char *session_id, pid_t pid,
                         const char *disk, apr_time_t now, apr_time_t max_age, json_t *object);

/* Forgets the readings older than max_age: sessions that ended, or nobody asked about. */
void helper_usage_cache_prune(helper_usage_cache *cache, apr_time_t now, apr_time_t max_age);

#endif
