/* SPDX-License-Identifier: Apache-2.0 */
/* Metrics as data, shared by qwd-helper (its `metrics` op), mod_qwd (`SetHandler qwd-metrics`)
 * and qwdctl: families in JSON, merged by name, rendered in the Prometheus text format. */
#ifndef QWD_METRICS_H
#define QWD_METRICS_H

#include <apr_pools.h>
#include <jansson.h>

#define QWD_METRIC_COUNTER "counter"
#define QWD_METRIC_GAUGE "gauge"
#define QWD_METRIC_HISTOGRAM "histogram"

/* The content type of the text format (version 0.0.4), as Prometheus asks for it. */
#define QWD_METRICS_TEXT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* A histogram being counted: upper bounds (ascending, +Inf implied) and a count per bound
 * (not cumulative), their sum and count. */
#define QWD_HISTOGRAM_MAX_BUCKETS 16
typedef struct qwd_histogram {
    int nbounds;
    double bounds[QWD_HISTOGRAM_MAX_BUCKETS];
    unsigned long long counts[QWD_HISTOGRAM_MAX_BUCKETS + 1]; /* [nbounds]: above the last */
    double sum;
    unsigned long long count;
} qwd_histogram;

/* Sets up h with nbounds ascending bounds (at most QWD_HISTOGRAM_MAX_BUCKETS). */
void qwd_histogram_init(qwd_histogram *h, const double *bounds, int nbounds);
/* Counts one observation. */
void qwd_histogram_observe(qwd_histogram *h, double value);

/* A new family {"name", "type", "help", "samples": []} (a new reference). */
json_t *qwd_metrics_family(const char *name, const char *type, const char *help);

/* Adds a sample of value to family, with labels given as NULL-terminated pairs of key, value
 * strings (a value may be a NULL: that pair is left out). */
void qwd_metrics_add(json_t *family, double value, ...) __attribute__((sentinel));
/* Adds a histogram sample (cumulative buckets, sum, count) with labels as above. */
void qwd_metrics_add_histogram(json_t *family, const qwd_histogram *h, ...)
    __attribute__((sentinel));

/* Appends to families (an array) a new family with one sample per word of a fixed list:
 * counts[i], labelled label=words[i]. Returns the family, which families holds (more samples
 * may still be added to it). */
json_t *qwd_metrics_family_by_label(json_t *families, const char *name, const char *type,
                                    const char *help, const char *label, const char *const *words,
                                    const unsigned long long *counts, size_t n);

/* Appends the families of more (an array, borrowed) to families (an array): a family whose
 * name is there already gives its samples to that one, so each name has one HELP and TYPE. */
void qwd_metrics_merge(json_t *families, json_t *more);

/* The Prometheus text format of families (an array), in pool; NULL for a malformed family. */
char *qwd_metrics_text(apr_pool_t *pool, json_t *families);

#endif
