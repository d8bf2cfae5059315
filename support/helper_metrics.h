/* SPDX-License-Identifier: Apache-2.0 */
/* The helper's counters for the metrics op: starts by boot kind and result, the start latency
 * (the client's request → the VM's display answers) by boot kind, ends by reason, limit
 * refusals, and the viewers each session has now. A part below the sessions and the ops: they
 * count here, the metrics op reads. */
#ifndef QWD_HELPER_METRICS_H
#define QWD_HELPER_METRICS_H

#include <apr_time.h>
#include <jansson.h>

#include "helper.h"

void helper_metrics_init(helper *h);

/* A start's launch is over: ok (its VM runs) or not, with the boot it was planned with. */
void helper_metrics_start(helper *h, const char *boot, int ok);
/* A session's display answered for the first time, seconds after its start was asked for. */
void helper_metrics_running(helper *h, const char *boot, double seconds);
/* A session ended for reason (QWD_END_*); its viewers are forgotten. */
void helper_metrics_ended(helper *h, const char *session_id, const char *reason);
/* A start was refused by the helper-wide limit (max_sessions, max_vcpus, ...). */
void helper_metrics_refused(helper *h, const char *limit);

/* A viewer of kind (QWD_VIEWER_*) joined (delta 1) or left (-1) session_id. Returns 0, or -1
 * for an unknown kind or a leave without a join. */
int helper_metrics_viewer(helper *h, const char *session_id, const char *kind, int delta);
/* Sets into's "viewers" (watching now) and "viewer_connects" (joined since the helper started),
 * each {"owner": N, "control": N, "view": N}, over every session (the load op's). */
void helper_metrics_viewer_totals(helper *h, json_t *into);
/* Whether kind is one of QWD_VIEWER_*. */
int helper_metrics_viewer_kind_is_valid(const char *kind);

/* The families of these counters (a new reference): qwd_session_starts_total,
 * qwd_session_start_seconds, qwd_session_ends_total, qwd_limit_refusals_total, qwd_viewers,
 * qwd_viewer_connections_total,
 * qwd_helper_start_time_seconds. */
json_t *helper_metrics_families(helper *h);

#endif
