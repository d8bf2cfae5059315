/* SPDX-License-Identifier: Apache-2.0 */
/* A ring of the last HELPER_JOURNAL_KEEP entries, in memory: a restarted helper begins a new
 * journal (a new id), so a reader never mistakes its numbers for the old one's. */
#include "helper_journal.h"
#include "qwd_token.h"

#include <apr_strings.h>

struct helper_journal {
    const char *id;
    long long last; /* seq of the newest entry, 0: none yet */
    json_t *ring[HELPER_JOURNAL_KEEP];
};

/* The ring's entries are jansson's (malloc), not the pool's: give them back with the pool, so
 * LeakSanitizer's report at the helper's exit lists only what was really lost. */
static apr_status_t journal_free(void *data)
{
    helper_journal *j = data;
    int i;
    for (i = 0; i < HELPER_JOURNAL_KEEP; i++) {
        json_decref(j->ring[i]);
        j->ring[i] = NULL;
    }
    return APR_SUCCESS;
}

void helper_journal_init(helper *h)
{
    helper_journal *j = apr_pcalloc(h->pool, sizeof *j);
    char *id = NULL;
    if (qwd_session_id_new(h->pool, &id) != APR_SUCCESS) {
        /* no randomness: the start time still tells journals apart */
        id = apr_psprintf(h->pool, "t%" APR_TIME_T_FMT, apr_time_now());
    }
    j->id = id;
    h->journal = j;
    apr_pool_cleanup_register(h->pool, j, journal_free, apr_pool_cleanup_null);
}

void helper_journal_add(helper *h, json_t *event)
{
    helper_journal *j = h->journal;
    j->last++;
    json_object_set_new(event, "seq", json_integer(j->last));
    json_object_set_new(event, "time", json_real((double)apr_time_now() / APR_USEC_PER_SEC));
    json_t **slot = &j->ring[j->last % HELPER_JOURNAL_KEEP];
    json_decref(*slot);
    *slot = event;
}

static long long first_kept(const helper_journal *j)
{
    return j->last > HELPER_JOURNAL_KEEP ? j->last - HELPER_JOURNAL_KEEP + 1 : 1;
}

json_t *helper_journal_json(helper *h, long long after, int limit)
{
    helper_journal *j = h->journal;
    json_t *events = json_array();
    long long seq = after + 1 < first_kept(j) ? first_kept(j) : after + 1;
    for (; seq <= j->last && (int)json_array_size(events) < limit; seq++) {
        json_array_append(events, j->ring[seq % HELPER_JOURNAL_KEEP]);
    }
    return json_pack("{s:s, s:I, s:I, s:o}", "journal", j->id, "first", (json_int_t)first_kept(j),
                     "last", (json_int_t)j->last, "events", events);
}

json_t *helper_journal_position(helper *h)
{
    return json_pack("{s:s, s:I}", "journal", h->journal->id, "last", (json_int_t)h->journal->last);
}
