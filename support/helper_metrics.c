/* SPDX-License-Identifier: Apache-2.0 */
/* Counters kept in the helper's memory since it started (qwd_helper_start_time_seconds tells a
 * scraper when they began again). Every label takes values from a fixed list, so no series is
 * made from what a client sends. */
#include "helper_metrics.h"
#include "qwd_metrics.h"
#include "qwd_protocol.h"

#include <apr_hash.h>
#include <apr_strings.h>
#include <stdlib.h>
#include <string.h>

static const char *const boots[] = {QWD_BOOT_COLD, QWD_BOOT_RESTORED};
#define NBOOTS (sizeof boots / sizeof boots[0])
static const char *const reasons[] = {QWD_END_STOPPED,     QWD_END_EXPIRED,  QWD_END_PURGED,
                                      QWD_END_POWEROFF,    QWD_END_CRASHED,  QWD_END_IDLE,
                                      QWD_END_VIEWER_LEFT, QWD_END_NODE_LOST};
#define NREASONS (sizeof reasons / sizeof reasons[0])
static const char *const limits[] = {"max_sessions", "max_vcpus", "max_memory_mib", "max_load"};
#define NLIMITS (sizeof limits / sizeof limits[0])
static const char *const kinds[] = {QWD_VIEWER_OWNER, QWD_VIEWER_CONTROL, QWD_VIEWER_VIEW};
#define NKINDS (sizeof kinds / sizeof kinds[0])

/* Start latency buckets (s): a restore answers in ~0.2 s, a cold boot's display within a few
 * seconds, a queued or slow one later. */
static const double latency_bounds[] = {0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300};

/* Allocated with malloc and freed when the session ends: the helper's pools live as long as
 * it does, so a few bytes from one per session would add up over a long run. */
typedef struct session_viewers {
    int count[NKINDS];
    char id[]; /* its key in viewers */
} session_viewers;

struct helper_metrics {
    apr_time_t started;
    unsigned long long starts[NBOOTS][2]; /* [boot][ok] */
    qwd_histogram latency[NBOOTS];
    unsigned long long ends[NREASONS + 1]; /* [NREASONS]: any other reason */
    unsigned long long refusals[NLIMITS + 1];
    apr_hash_t *viewers;                 /* session id → session_viewers (malloc'd) */
    unsigned long long connects[NKINDS]; /* viewers that joined, by kind */
    apr_pool_t *pool;
};

static int index_of(const char *const *list, size_t n, const char *word)
{
    for (size_t i = 0; word && i < n; i++) {
        if (!strcmp(list[i], word)) {
            return (int)i;
        }
    }
    return -1;
}

static apr_status_t free_viewers(void *data)
{
    helper_metrics *m = data;
    for (apr_hash_index_t *i = apr_hash_first(NULL, m->viewers); i; i = apr_hash_next(i)) {
        free(apr_hash_this_val(i));
    }
    return APR_SUCCESS;
}

void helper_metrics_init(helper *h)
{
    helper_metrics *m = apr_pcalloc(h->pool, sizeof *m);
    m->started = apr_time_now();
    for (size_t i = 0; i < NBOOTS; i++) {
        qwd_histogram_init(&m->latency[i], latency_bounds,
                           sizeof latency_bounds / sizeof latency_bounds[0]);
    }
    apr_pool_create(&m->pool, h->pool);
    m->viewers = apr_hash_make(m->pool);
    apr_pool_cleanup_register(m->pool, m, free_viewers, apr_pool_cleanup_null);
    h->metrics = m;
}

/* A boot kind's index (an unknown one counts as cold). */
static int boot_index(const char *boot)
{
    int i = index_of(boots, NBOOTS, boot);
    return i < 0 ? 0 : i;
}

void helper_metrics_start(helper *h, const char *boot, int ok)
{
    h->metrics->starts[boot_index(boot)][ok ? 1 : 0]++;
}

void helper_metrics_running(helper *h, const char *boot, double seconds)
{
    qwd_histogram_observe(&h->metrics->latency[boot_index(boot)], seconds < 0 ? 0 : seconds);
}

void helper_metrics_ended(helper *h, const char *session_id, const char *reason)
{
    int i = index_of(reasons, NREASONS, reason);
    h->metrics->ends[i < 0 ? NREASONS : (size_t)i]++;
    session_viewers *v = apr_hash_get(h->metrics->viewers, session_id, APR_HASH_KEY_STRING);
    if (v) {
        apr_hash_set(h->metrics->viewers, v->id, APR_HASH_KEY_STRING, NULL);
        free(v);
    }
}

void helper_metrics_refused(helper *h, const char *limit)
{
    int i = index_of(limits, NLIMITS, limit);
    h->metrics->refusals[i < 0 ? NLIMITS : (size_t)i]++;
}

int helper_metrics_viewer_kind_is_valid(const char *kind)
{
    return index_of(kinds, NKINDS, kind) >= 0;
}

int helper_metrics_viewer(helper *h, const char *session_id, const char *kind, int delta)
{
    int k = index_of(kinds, NKINDS, kind);
    session_viewers *v = apr_hash_get(h->metrics->viewers, session_id, APR_HASH_KEY_STRING);
    if (k < 0 || (delta < 0 && (!v || v->count[k] == 0))) {
        return -1;
    }
    if (!v) {
        /* kept until the session ends (helper_metrics_ended frees it) */
        size_t length = strlen(session_id);
        if (!(v = calloc(1, sizeof *v + length + 1))) {
            return -1;
        }
        memcpy(v->id, session_id, length + 1);
        apr_hash_set(h->metrics->viewers, v->id, APR_HASH_KEY_STRING, v);
    }
    v->count[k] += delta;
    if (delta > 0) {
        h->metrics->connects[k]++;
    }
    return 0;
}

/* The viewers of every session now, by kind. */
static void viewers_now(helper_metrics *m, unsigned long long *total)
{
    for (size_t k = 0; k < NKINDS; k++) {
        total[k] = 0;
        for (apr_hash_index_t *i = apr_hash_first(NULL, m->viewers); i; i = apr_hash_next(i)) {
            total[k] += ((session_viewers *)apr_hash_this_val(i))->count[k];
        }
    }
}

void helper_metrics_viewer_totals(helper *h, json_t *into)
{
    json_t *watching = json_object(), *connects = json_object();
    unsigned long long now[NKINDS];
    viewers_now(h->metrics, now);
    for (size_t k = 0; k < NKINDS; k++) {
        json_object_set_new(watching, kinds[k], json_integer((json_int_t)now[k]));
        json_object_set_new(connects, kinds[k], json_integer((json_int_t)h->metrics->connects[k]));
    }
    json_object_set_new(into, "viewers", watching);
    json_object_set_new(into, "viewer_connects", connects);
}

json_t *helper_metrics_families(helper *h)
{
    helper_metrics *m = h->metrics;
    json_t *families = json_array();
    json_t *f = qwd_metrics_family("qwd_session_starts_total", QWD_METRIC_COUNTER,
                                   "Session starts whose launch finished, by boot kind and result "
                                   "(ok: the VM runs; failed: it could not be started).");
    for (size_t b = 0; b < NBOOTS; b++) {
        qwd_metrics_add(f, (double)m->starts[b][1], "boot", boots[b], "result", "ok", NULL);
        qwd_metrics_add(f, (double)m->starts[b][0], "boot", boots[b], "result", "failed", NULL);
    }
    json_array_append_new(families, f);
    f = qwd_metrics_family("qwd_session_start_seconds", QWD_METRIC_HISTOGRAM,
                           "Seconds from the start request (the POST that created the session) "
                           "until the VM's display answered, by boot kind.");
    for (size_t b = 0; b < NBOOTS; b++) {
        qwd_metrics_add_histogram(f, &m->latency[b], "boot", boots[b], NULL);
    }
    json_array_append_new(families, f);
    f = qwd_metrics_family_by_label(families, "qwd_session_ends_total", QWD_METRIC_COUNTER,
                                    "Sessions that ended, by reason (the session's ended_reason).",
                                    "reason", reasons, m->ends, NREASONS);
    qwd_metrics_add(f, (double)m->ends[NREASONS], "reason", "other", NULL);
    qwd_metrics_family_by_label(
        families, "qwd_limit_refusals_total", QWD_METRIC_COUNTER,
        "Session starts refused by a limit: the helper's keys (max_sessions, ...) and "
        "the module's directives (QwdMaxSessions, ...).",
        "limit", limits, m->refusals, NLIMITS);
    unsigned long long now[NKINDS];
    viewers_now(m, now);
    qwd_metrics_family_by_label(
        families, "qwd_viewers", QWD_METRIC_GAUGE,
        "Viewers connected to sessions' displays now, by kind (owner: the session's "
        "own link; control, view: its shares), as the helper's relay counts them.",
        "kind", kinds, now, NKINDS);
    qwd_metrics_family_by_label(
        families, "qwd_viewer_connections_total", QWD_METRIC_COUNTER,
        "Viewers that connected to a session's display, by kind: the module's gate "
        "counts its links, the helper's relay owner, control and view.",
        "kind", kinds, m->connects, NKINDS);
    f = qwd_metrics_family("qwd_helper_start_time_seconds", QWD_METRIC_GAUGE,
                           "When qwd-helper started (Unix time): its counters count from then.");
    qwd_metrics_add(f, (double)apr_time_sec(m->started), NULL);
    json_array_append_new(families, f);
    return families;
}
