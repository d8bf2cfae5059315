/* SPDX-License-Identifier: Apache-2.0 */
/* The pure parts of warm images: a profile's key and the per-machine sidecar that says when a
 * booting template is ready to be saved (docs/instant-on.md). */
#include "qwd_warm.h"
#include "qwd_argv.h"
#include "qwd_text.h"
#include "qwd_protocol.h"

#include <apr_strings.h>
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

const char *qwd_warm_key(apr_pool_t *pool, const char *machine, int cpu, int memory_mib,
                         const char *video)
{
    return apr_psprintf(pool, "%s-%dc-%dm-%s", machine, cpu, memory_mib, video);
}

json_t *qwd_warm_file_identity(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        return NULL;
    }
    return json_pack("{s:I, s:I, s:I}", "size", (json_int_t)st.st_size, "mtime_ns",
                     (json_int_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec, "inode",
                     (json_int_t)st.st_ino);
}

/* A whole decimal number from 0 to max, or -1. */
static int number(const char *text, int max)
{
    char *end;
    long value = strtol(text, &end, 10);
    return *text && !*end && value >= 0 && value <= max ? (int)value : -1;
}

static int is_yes_no(const char *value)
{
    return !strcmp(value, "yes") || !strcmp(value, "no");
}

/* Whether text is one or more video cards, separated by blanks or commas. */
static int videos_are_valid(apr_pool_t *pool, const char *text)
{
    char *copy = apr_pstrdup(pool, text), *state;
    int count = 0;
    for (char *video = apr_strtok(copy, " \t,", &state); video;
         video = apr_strtok(NULL, " \t,", &state), count++) {
        if (!qwd_argv_video_is_valid(video)) {
            return 0;
        }
    }
    return count > 0;
}

const char *qwd_warm_sidecar_parse(apr_pool_t *pool, const char *text, qwd_warm_sidecar *sidecar)
{
    const char *problem = NULL;
    char *copy = apr_pstrdup(pool, text), *state;
    for (char *line = apr_strtok(copy, "\n", &state); line; line = apr_strtok(NULL, "\n", &state)) {
        line = qwd_trim(line);
        if (!*line || *line == '#') {
            continue;
        }
        char *equals = strchr(line, '=');
        if (!equals) {
            problem = problem ? problem : apr_psprintf(pool, "\"%s\" is not key = value", line);
            continue;
        }
        *equals = '\0';
        const char *key = qwd_trim(line), *value = qwd_trim(equals + 1);
        int n = number(value, 1 << 24);
        if (!strcmp(key, "ready_serial") && *value) {
            sidecar->ready_serial = apr_pstrdup(pool, value);
        }
        else if (!strcmp(key, "ready_delay") && n >= 0) {
            sidecar->ready_delay_s = n;
        }
        else if (!strcmp(key, "ready_screen_still") && n >= 1) {
            sidecar->ready_screen_still_s = n;
        }
        else if (!strcmp(key, "ready_agent") && is_yes_no(value)) {
            sidecar->ready_agent = !strcmp(value, "yes");
        }
        else if (!strcmp(key, "guest_agent") && is_yes_no(value)) {
            sidecar->guest_agent = !strcmp(value, "yes");
        }
        else if (!strcmp(key, "warm_at_start") && is_yes_no(value)) {
            sidecar->at_start = !strcmp(value, "yes");
        }
        else if (!strcmp(key, "cpu") && n >= 1) {
            sidecar->cpu = n;
        }
        else if (!strcmp(key, "memory_mib") && n >= QWD_PROTO_MIN_MEMORY_MIB) {
            sidecar->memory_mib = n;
        }
        else if (!strcmp(key, "video") && qwd_argv_video_is_valid(value)) {
            sidecar->video = apr_pstrdup(pool, value);
        }
        else if (!strcmp(key, "arch") && *value) {
            sidecar->arch = apr_pstrdup(pool, value);
        }
        else if (!strcmp(key, "videos") && videos_are_valid(pool, value)) {
            sidecar->videos = apr_pstrdup(pool, value);
        }
        else if (!strcmp(key, "gpu") && is_yes_no(value)) {
            sidecar->gpu = !strcmp(value, "yes");
        }
        else if (!problem) {
            problem = apr_psprintf(pool, "%s: unknown key or bad value \"%s\"", key, value);
        }
    }
    /* Waiting for the agent needs its channel. */
    sidecar->guest_agent |= sidecar->ready_agent;
    return problem;
}
