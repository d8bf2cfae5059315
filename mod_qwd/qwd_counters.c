/* SPDX-License-Identifier: Apache-2.0 */
/* The counters in shared memory. Why shared memory, not SQLite or the helper: an increment is
 * one atomic add with no lock, no I/O and no helper round trip, so counting never slows or
 * fails a request (an authentication failure is counted even with the database down), and the
 * parent keeps the segment across graceful restarts (it lives in the process pool, not the
 * configuration's). A full stop starts them again at zero, which Prometheus' rate() reads as a
 * counter reset. */
#include "qwd_counters.h"
#include "qwd_logno.h"
#include "qwd_metrics.h"

#include <apr_atomic.h>
#include <apr_shm.h>
#include <apr_strings.h>
#include <http_log.h>

APLOG_USE_MODULE(qwd);

#define SHM_KEY "qwd_counters_shm"
/* Changes when the layout does: a segment of another layout (an upgrade's graceful restart)
 * is replaced by a fresh one. */
#define SHM_MAGIC 0x7177643031434e54ULL

typedef struct counters_shm {
    apr_uint64_t magic;
    apr_uint64_t count;
    apr_uint64_t journal_hash, journal_seq;
    apr_uint64_t values[QWD_COUNTER_COUNT];
} counters_shm;

static counters_shm *shared;

int qwd_counters_post_config(server_rec *s)
{
    apr_pool_t *process_pool = s->process->pool;
    apr_shm_t *shm = NULL;
    apr_pool_userdata_get((void **)&shm, SHM_KEY, process_pool);
    if (shm && apr_shm_size_get(shm) >= sizeof(counters_shm)) {
        counters_shm *found = apr_shm_baseaddr_get(shm);
        if (found->magic == SHM_MAGIC && found->count == QWD_COUNTER_COUNT) {
            shared = found;
            return OK;
        }
    }
    apr_status_t rv = apr_shm_create(&shm, sizeof(counters_shm), NULL, process_pool);
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, rv, s,
                     QWDLOGNO(03801) "no shared memory for the metrics' counters: the module's "
                                     "counters stay at 0");
        shared = NULL;
        return OK;
    }
    shared = apr_shm_baseaddr_get(shm);
    memset(shared, 0, sizeof *shared);
    shared->magic = SHM_MAGIC;
    shared->count = QWD_COUNTER_COUNT;
    apr_pool_userdata_set(shm, SHM_KEY, apr_pool_cleanup_null, process_pool);
    return OK;
}

void qwd_counter_inc(qwd_counter_t counter)
{
    if (shared && counter < QWD_COUNTER_COUNT) {
        apr_atomic_inc64(&shared->values[counter]);
    }
}

/* Each counter's family, label and label value, from the table. */
typedef struct counter_row {
    const char *family, *label, *value;
} counter_row;
#define COUNTER_ROW_(ID, family, label, value) {family, label, value},
static const counter_row rows[QWD_COUNTER_COUNT] = {QWD_COUNTERS(COUNTER_ROW_)};
#undef COUNTER_ROW_

int qwd_counter_of_limit(const char *directive)
{
    for (int i = 0; directive && i < QWD_COUNTER_COUNT; i++) {
        if (rows[i].label && !strcmp(rows[i].label, "limit") && !strcmp(rows[i].value, directive)) {
            return i;
        }
    }
    return -1;
}

json_t *qwd_counters_families(void)
{
    json_t *families = json_array(), *family;
    size_t i;
#define FAMILY_(name, help) \
    json_array_append_new(families, qwd_metrics_family(name, QWD_METRIC_COUNTER, help));
    QWD_COUNTER_FAMILIES(FAMILY_)
#undef FAMILY_
    for (int c = 0; c < QWD_COUNTER_COUNT; c++) {
        json_array_foreach (families, i, family) {
            if (!strcmp(json_string_value(json_object_get(family, "name")), rows[c].family)) {
                qwd_metrics_add(family, shared ? (double)apr_atomic_read64(&shared->values[c]) : 0,
                                rows[c].label, rows[c].value, NULL);
            }
        }
    }
    return families;
}

void qwd_counters_journal_hint(apr_uint64_t *journal_hash, apr_uint64_t *seq)
{
    *journal_hash = shared ? apr_atomic_read64(&shared->journal_hash) : 0;
    *seq = shared ? apr_atomic_read64(&shared->journal_seq) : 0;
}

void qwd_counters_set_journal_hint(apr_uint64_t journal_hash, apr_uint64_t seq)
{
    if (shared) {
        apr_atomic_set64(&shared->journal_hash, journal_hash);
        apr_atomic_set64(&shared->journal_seq, seq);
    }
}
