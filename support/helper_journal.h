/* SPDX-License-Identifier: Apache-2.0 */
/* The journal of what happened to sessions (started, ended with its reason and who asked,
 * extended), numbered, for the events op: mod_qwd reads it into its audit trail. */
#ifndef QWD_HELPER_JOURNAL_H
#define QWD_HELPER_JOURNAL_H

#include <jansson.h>

#include "helper.h"

/* Entries kept: older ones are dropped first (a reader that fell this far behind is told by
 * the "first" of the events op). */
#define HELPER_JOURNAL_KEEP 4096
/* Entries one events reply carries at most (a reader asks again from its "last"). */
#define HELPER_JOURNAL_PAGE 200

void helper_journal_init(helper *h);

/* Adds an entry: event (stolen) gets "seq" and "time" (Unix seconds, fractional). */
void helper_journal_add(helper *h, json_t *event);

/* {"journal": ID, "first": SEQ, "last": SEQ, "events": [entries after `after`, at most
 * limit]} (a new reference). ID is new each time the helper starts: sequence numbers count
 * from 1 again then. */
json_t *helper_journal_json(helper *h, long long after, int limit);

/* {"journal": ID, "last": SEQ}: what a reader compares with its own to know whether to ask. */
json_t *helper_journal_position(helper *h);

#endif
