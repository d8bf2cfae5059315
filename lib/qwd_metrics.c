/* SPDX-License-Identifier: Apache-2.0 */
/* Families of samples in JSON and their Prometheus text format: one HELP and one TYPE per
 * family, label values escaped, histograms as cumulative _bucket lines with _sum and _count. */
#include "qwd_metrics.h"

#include <apr_strings.h>
#include <math.h> /* isnan, isinf: macros, no libm */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void qwd_histogram_init(qwd_histogram *h, const double *bounds, int nbounds)
{
    memset(h, 0, sizeof *h);
    h->nbounds = nbounds > QWD_HISTOGRAM_MAX_BUCKETS ? QWD_HISTOGRAM_MAX_BUCKETS : nbounds;
    memcpy(h->bounds, bounds, (size_t)h->nbounds * sizeof bounds[0]);
}

void qwd_histogram_observe(qwd_histogram *h, double value)
{
    int i = 0;
    while (i < h->nbounds && value > h->bounds[i]) {
        i++;
    }
    h->counts[i]++;
    h->sum += value;
    h->count++;
}

json_t *qwd_metrics_family(const char *name, const char *type, const char *help)
{
    return json_pack("{s:s, s:s, s:s, s:[]}", "name", name, "type", type, "help", help, "samples");
}

static json_t *labels_of(va_list args)
{
    json_t *labels = json_object();
    const char *key;
    while ((key = va_arg(args, const char *)) != NULL) {
        const char *value = va_arg(args, const char *);
        if (value) {
            json_object_set_new(labels, key, json_string(value));
        }
    }
    return labels;
}

void qwd_metrics_add(json_t *family, double value, ...)
{
    va_list args;
    va_start(args, value);
    json_t *labels = labels_of(args);
    va_end(args);
    json_array_append_new(json_object_get(family, "samples"),
                          json_pack("{s:o, s:f}", "labels", labels, "value", value));
}

void qwd_metrics_add_histogram(json_t *family, const qwd_histogram *h, ...)
{
    va_list args;
    va_start(args, h);
    json_t *labels = labels_of(args);
    va_end(args);
    json_t *buckets = json_array();
    unsigned long long cumulative = 0;
    for (int i = 0; i < h->nbounds; i++) {
        cumulative += h->counts[i];
        json_array_append_new(buckets, json_pack("[f, I]", h->bounds[i], (json_int_t)cumulative));
    }
    json_array_append_new(json_object_get(family, "samples"),
                          json_pack("{s:o, s:o, s:f, s:I}", "labels", labels, "buckets", buckets,
                                    "sum", h->sum, "count", (json_int_t)h->count));
}

static json_t *family_named(json_t *families, const char *name)
{
    size_t i;
    json_t *family;
    json_array_foreach (families, i, family) {
        const char *its = json_string_value(json_object_get(family, "name"));
        if (its && !strcmp(its, name)) {
            return family;
        }
    }
    return NULL;
}

json_t *qwd_metrics_family_by_label(json_t *families, const char *name, const char *type,
                                    const char *help, const char *label, const char *const *words,
                                    const unsigned long long *counts, size_t n)
{
    json_t *family = qwd_metrics_family(name, type, help);
    for (size_t i = 0; i < n; i++) {
        qwd_metrics_add(family, (double)counts[i], label, words[i], NULL);
    }
    json_array_append_new(families, family);
    return family;
}

void qwd_metrics_merge(json_t *families, json_t *more)
{
    size_t i, j;
    json_t *family, *sample;
    json_array_foreach (more, i, family) {
        const char *name = json_string_value(json_object_get(family, "name"));
        json_t *known = name ? family_named(families, name) : NULL;
        if (!known) {
            json_array_append(families, family);
            continue;
        }
        json_array_foreach (json_object_get(family, "samples"), j, sample) {
            json_array_append(json_object_get(known, "samples"), sample);
        }
    }
}

/* A number as Prometheus reads it: integers without a point, +Inf/-Inf/NaN by name. */
static const char *number(apr_pool_t *pool, double value)
{
    if (isnan(value)) {
        return "NaN";
    }
    if (isinf(value)) {
        return value > 0 ? "+Inf" : "-Inf";
    }
    if (value > -1e15 && value < 1e15 && value == (double)(long long)value) {
        return apr_psprintf(pool, "%.0f", value);
    }
    /* the shortest of 15 or 17 digits that reads back as value (APR's %g drops a leading 0) */
    char digits[32];
    snprintf(digits, sizeof digits, "%.15g", value);
    if (strtod(digits, NULL) != value) {
        snprintf(digits, sizeof digits, "%.17g", value);
    }
    return apr_pstrdup(pool, digits);
}

/* text with backslash, newline and (for label values) double quote escaped. */
static const char *escape(apr_pool_t *pool, const char *text, int quote)
{
    char *out = apr_palloc(pool, 2 * strlen(text) + 1), *o = out;
    for (const char *c = text; *c; c++) {
        if (*c == '\\' || (quote && *c == '"')) {
            *o++ = '\\';
            *o++ = *c;
        }
        else if (*c == '\n') {
            *o++ = '\\';
            *o++ = 'n';
        }
        else {
            *o++ = *c;
        }
    }
    *o = '\0';
    return out;
}

/* {k="v",...} of labels plus one more pair (extra_key may be NULL); "" without labels. */
static const char *label_text(apr_pool_t *pool, json_t *labels, const char *extra_key,
                              const char *extra_value)
{
    const char *text = "", *key;
    json_t *value;
    json_object_foreach (labels, key, value) {
        if (!json_is_string(value)) {
            continue;
        }
        text = apr_pstrcat(pool, text, *text ? "," : "", key, "=\"",
                           escape(pool, json_string_value(value), 1), "\"", NULL);
    }
    if (extra_key) {
        text = apr_pstrcat(pool, text, *text ? "," : "", extra_key, "=\"", extra_value, "\"", NULL);
    }
    return *text ? apr_pstrcat(pool, "{", text, "}", NULL) : "";
}

static int valid_name(const char *name)
{
    if (!name || !*name || (name[0] >= '0' && name[0] <= '9')) {
        return 0;
    }
    return strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_:")
           == strlen(name);
}

static char *histogram_lines(apr_pool_t *pool, const char *name, json_t *sample)
{
    json_t *labels = json_object_get(sample, "labels"), *bucket;
    char *lines = apr_pstrdup(pool, "");
    size_t i;
    json_array_foreach (json_object_get(sample, "buckets"), i, bucket) {
        lines = apr_pstrcat(pool, lines, name, "_bucket",
                            label_text(pool, labels, "le",
                                       number(pool, json_number_value(json_array_get(bucket, 0)))),
                            " ", number(pool, json_number_value(json_array_get(bucket, 1))), "\n",
                            NULL);
    }
    const char *count = number(pool, json_number_value(json_object_get(sample, "count")));
    return apr_pstrcat(pool, lines, name, "_bucket", label_text(pool, labels, "le", "+Inf"), " ",
                       count, "\n", name, "_sum", label_text(pool, labels, NULL, NULL), " ",
                       number(pool, json_number_value(json_object_get(sample, "sum"))), "\n", name,
                       "_count", label_text(pool, labels, NULL, NULL), " ", count, "\n", NULL);
}

char *qwd_metrics_text(apr_pool_t *pool, json_t *families)
{
    char *text = apr_pstrdup(pool, "");
    size_t i, j;
    json_t *family, *sample;
    json_array_foreach (families, i, family) {
        const char *name = json_string_value(json_object_get(family, "name"));
        const char *type = json_string_value(json_object_get(family, "type"));
        const char *help = json_string_value(json_object_get(family, "help"));
        int histogram = type && !strcmp(type, QWD_METRIC_HISTOGRAM);
        if (!valid_name(name) || !type || !help) {
            return NULL;
        }
        text = apr_pstrcat(pool, text, "# HELP ", name, " ", escape(pool, help, 0), "\n# TYPE ",
                           name, " ", type, "\n", NULL);
        json_array_foreach (json_object_get(family, "samples"), j, sample) {
            text = histogram
                       ? apr_pstrcat(pool, text, histogram_lines(pool, name, sample), NULL)
                       : apr_pstrcat(
                           pool, text, name,
                           label_text(pool, json_object_get(sample, "labels"), NULL, NULL), " ",
                           number(pool, json_number_value(json_object_get(sample, "value"))), "\n",
                           NULL);
        }
    }
    return text;
}
