/* SPDX-License-Identifier: Apache-2.0 */
/* Reads /proc/PID/stat (utime, stime, starttime), /proc/uptime, /proc/PID/smaps_rollup (Rss,
 * Pss) and stat(2) of the overlay (its allocated blocks, not its virtual size), and keeps the
 * last reading of each session a short while. QEMU runs as the helper's user, so every file is
 * the helper's to read. */
#include "helper_usage.h"

#include <apr_hash.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PROC_LINE_MAX 1024
#define BYTES_PER_KIB 1024
#define STAT_BLOCK_BYTES 512
#define PERCENT 100

/* utime + stime and the start time, in clock ticks. Returns 0 when read. */
static int read_stat(pid_t pid, unsigned long long *ticks, unsigned long long *start)
{
    char path[64], line[PROC_LINE_MAX];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *file = fopen(path, "r");
    if (!file) {
        return -1;
    }
    char *got = fgets(line, sizeof line, file);
    fclose(file);
    /* the command name (field 2) may hold spaces and parentheses: fields count after its
     * last ')' */
    char *rest = got ? strrchr(line, ')') : NULL;
    unsigned long long utime, stime;
    if (!rest
        || sscanf(rest + 2,
                  "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %*d %*d %*d %*d %*d %*d "
                  "%llu",
                  &utime, &stime, start)
               != 3) {
        return -1;
    }
    *ticks = utime + stime;
    return 0;
}

static double uptime_seconds(void)
{
    double uptime = 0;
    FILE *file = fopen("/proc/uptime", "r");
    if (file) {
        if (fscanf(file, "%lf", &uptime) != 1) {
            uptime = 0;
        }
        fclose(file);
    }
    return uptime;
}

static void read_memory(pid_t pid, json_t *object)
{
    char path[64], line[PROC_LINE_MAX];
    snprintf(path, sizeof path, "/proc/%d/smaps_rollup", (int)pid);
    FILE *file = fopen(path, "r");
    if (!file) {
        return;
    }
    unsigned long long kib;
    while (fgets(line, sizeof line, file)) {
        if (sscanf(line, "Rss: %llu kB", &kib) == 1) {
            json_object_set_new(object, "rss_bytes",
                                json_integer((json_int_t)(kib * BYTES_PER_KIB)));
        }
        else if (sscanf(line, "Pss: %llu kB", &kib) == 1) {
            json_object_set_new(object, "pss_bytes",
                                json_integer((json_int_t)(kib * BYTES_PER_KIB)));
        }
    }
    fclose(file);
}

void helper_usage_read(pid_t pid, const char *disk, json_t *object)
{
    unsigned long long ticks, start;
    long hz = sysconf(_SC_CLK_TCK);
    if (pid > 1 && hz > 0 && read_stat(pid, &ticks, &start) == 0) {
        double cpu = (double)ticks / (double)hz;
        double alive = uptime_seconds() - (double)start / (double)hz;
        json_object_set_new(object, "cpu_seconds", json_real(cpu));
        json_object_set_new(object, "cpu_percent",
                            json_real(alive > 0 ? PERCENT * cpu / alive : 0));
        read_memory(pid, object);
    }
    struct stat info;
    if (disk && stat(disk, &info) == 0) {
        json_object_set_new(object, "disk_bytes",
                            json_integer((json_int_t)info.st_blocks * STAT_BLOCK_BYTES));
    }
}

/* One session's last reading. Entries are malloc'ed: the cache lives as long as the helper
 * and entries come and go with sessions, which a pool would never give back. */
typedef struct usage_entry {
    char *session_id; /* the hash key */
    pid_t pid;
    apr_time_t read_at;
    apr_time_t fresh_until; /* read again after this */
    json_t *reading;
} usage_entry;

struct helper_usage_cache {
    apr_hash_t *entries; /* session id → usage_entry */
};

static void entry_free(usage_entry *entry)
{
    json_decref(entry->reading);
    free(entry->session_id);
    free(entry);
}

static apr_status_t cache_cleanup(void *data)
{
    helper_usage_cache *cache = data;
    for (apr_hash_index_t *i = apr_hash_first(NULL, cache->entries); i; i = apr_hash_next(i)) {
        entry_free(apr_hash_this_val(i));
    }
    apr_hash_clear(cache->entries);
    return APR_SUCCESS;
}

helper_usage_cache *helper_usage_cache_make(apr_pool_t *pool)
{
    helper_usage_cache *cache = apr_pcalloc(pool, sizeof *cache);
    cache->entries = apr_hash_make(pool);
    apr_pool_cleanup_register(pool, cache, cache_cleanup, apr_pool_cleanup_null);
    return cache;
}

/* Between half of max_age and max_age, by session: VMs first read together (a monitor page
 * after a quiet while) are read again at different times, a few per request, rather than all
 * at once every max_age, when one request would hold the helper for all of them. */
static apr_time_t fresh_for(const char *session_id, apr_time_t max_age)
{
    apr_uint32_t hash = 2166136261u;
    for (const unsigned char *c = (const unsigned char *)session_id; *c; c++) {
        hash = (hash ^ *c) * 16777619u;
    }
    return max_age / 2 + (apr_time_t)(hash % 1024) * (max_age / 2) / 1024;
}

void helper_usage_cached(helper_usage_cache *cache, const char *session_id, pid_t pid,
                         const char *disk, apr_time_t now, apr_time_t max_age, json_t *object)
{
    usage_entry *entry = apr_hash_get(cache->entries, session_id, APR_HASH_KEY_STRING);
    if (!entry || entry->pid != pid || now >= entry->fresh_until) {
        json_t *reading = json_object();
        helper_usage_read(pid, disk, reading);
        if (!entry) {
            entry = calloc(1, sizeof *entry);
            char *key = entry ? strdup(session_id) : NULL;
            if (!key) {
                free(entry);
                json_object_update(object, reading); /* no memory to keep it: still answered */
                json_decref(reading);
                return;
            }
            entry->session_id = key;
            apr_hash_set(cache->entries, entry->session_id, APR_HASH_KEY_STRING, entry);
        }
        json_decref(entry->reading);
        entry->reading = reading;
        entry->pid = pid;
        entry->read_at = now;
        entry->fresh_until = now + fresh_for(session_id, max_age);
    }
    json_object_update(object, entry->reading);
}

void helper_usage_cache_prune(helper_usage_cache *cache, apr_time_t now, apr_time_t max_age)
{
    /* APR allows removing the entry an iteration stands on */
    for (apr_hash_index_t *i = apr_hash_first(NULL, cache->entries); i; i = apr_hash_next(i)) {
        usage_entry *entry = apr_hash_this_val(i);
        if (now - entry->read_at >= max_age) {
            apr_hash_set(cache->entries, entry->session_id, APR_HASH_KEY_STRING, NULL);
            entry_free(entry);
        }
    }
}
