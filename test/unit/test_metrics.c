/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of the metrics families and their Prometheus text format (lib/qwd_metrics.c):
 * one HELP/TYPE per family after a merge, escaped labels, cumulative histogram buckets. */
#include "unit.h"

#include "qwd_metrics.h"

UNIT_TEST(metrics_text_renders_counters_gauges_and_escapes)
{
    apr_pool_t *pool;
    apr_pool_create(&pool, NULL);
    json_t *families = json_array();
    json_t *counter = qwd_metrics_family("qwd_x_total", QWD_METRIC_COUNTER, "Things.\nMore");
    qwd_metrics_add(counter, 3, "reason", "a\"b\\c\nd", "skipped", NULL, NULL);
    qwd_metrics_add(counter, 0.5, NULL);
    json_array_append_new(families, counter);
    json_t *gauge = qwd_metrics_family("qwd_up", QWD_METRIC_GAUGE, "Up.");
    qwd_metrics_add(gauge, 1, NULL);
    json_array_append_new(families, gauge);
    CHECK_STR(qwd_metrics_text(pool, families),
              "# HELP qwd_x_total Things.\\nMore\n# TYPE qwd_x_total counter\n"
              "qwd_x_total{reason=\"a\\\"b\\\\c\\nd\"} 3\nqwd_x_total 0.5\n"
              "# HELP qwd_up Up.\n# TYPE qwd_up gauge\nqwd_up 1\n");
    json_decref(families);
    apr_pool_destroy(pool);
}

UNIT_TEST(metrics_merge_keeps_one_family_per_name)
{
    apr_pool_t *pool;
    apr_pool_create(&pool, NULL);
    json_t *mine = json_array(), *theirs = json_array();
    json_t *family = qwd_metrics_family("qwd_limit_refusals_total", QWD_METRIC_COUNTER, "R.");
    qwd_metrics_add(family, 1, "limit", "QwdMaxSessions", NULL);
    json_array_append_new(mine, family);
    family = qwd_metrics_family("qwd_limit_refusals_total", QWD_METRIC_COUNTER, "R.");
    qwd_metrics_add(family, 2, "limit", "max_vcpus", NULL);
    json_array_append_new(theirs, family);
    family = qwd_metrics_family("qwd_other", QWD_METRIC_GAUGE, "O.");
    json_array_append_new(theirs, family);
    qwd_metrics_merge(mine, theirs);
    CHECK_INT(json_array_size(mine), 2);
    CHECK_STR(qwd_metrics_text(pool, mine),
              "# HELP qwd_limit_refusals_total R.\n# TYPE qwd_limit_refusals_total counter\n"
              "qwd_limit_refusals_total{limit=\"QwdMaxSessions\"} 1\n"
              "qwd_limit_refusals_total{limit=\"max_vcpus\"} 2\n"
              "# HELP qwd_other O.\n# TYPE qwd_other gauge\n");
    json_decref(mine);
    json_decref(theirs);
    apr_pool_destroy(pool);
}

UNIT_TEST(metrics_histogram_buckets_are_cumulative)
{
    apr_pool_t *pool;
    apr_pool_create(&pool, NULL);
    static const double bounds[] = {0.5, 1, 2.5};
    qwd_histogram h;
    qwd_histogram_init(&h, bounds, 3);
    qwd_histogram_observe(&h, 0.25);
    qwd_histogram_observe(&h, 0.5); /* le is inclusive */
    qwd_histogram_observe(&h, 2);
    qwd_histogram_observe(&h, 9);
    json_t *families = json_array();
    json_t *family = qwd_metrics_family("qwd_s_seconds", QWD_METRIC_HISTOGRAM, "S.");
    qwd_metrics_add_histogram(family, &h, "boot", "cold", NULL);
    json_array_append_new(families, family);
    CHECK_STR(qwd_metrics_text(pool, families),
              "# HELP qwd_s_seconds S.\n# TYPE qwd_s_seconds histogram\n"
              "qwd_s_seconds_bucket{boot=\"cold\",le=\"0.5\"} 2\n"
              "qwd_s_seconds_bucket{boot=\"cold\",le=\"1\"} 2\n"
              "qwd_s_seconds_bucket{boot=\"cold\",le=\"2.5\"} 3\n"
              "qwd_s_seconds_bucket{boot=\"cold\",le=\"+Inf\"} 4\n"
              "qwd_s_seconds_sum{boot=\"cold\"} 11.75\n"
              "qwd_s_seconds_count{boot=\"cold\"} 4\n");
    json_decref(families);
    apr_pool_destroy(pool);
}

UNIT_TEST(metrics_text_refuses_a_bad_name)
{
    apr_pool_t *pool;
    apr_pool_create(&pool, NULL);
    json_t *families = json_array();
    json_array_append_new(families, qwd_metrics_family("9bad name", QWD_METRIC_GAUGE, "B."));
    CHECK(qwd_metrics_text(pool, families) == NULL);
    json_decref(families);
    apr_pool_destroy(pool);
}

UNIT_TEST(metrics_family_by_label_has_a_sample_per_word)
{
    apr_pool_t *pool;
    apr_pool_create(&pool, NULL);
    json_t *families = json_array();
    static const char *const states[] = {"starting", "running"};
    const unsigned long long counts[] = {0, 3};
    json_t *family = qwd_metrics_family_by_label(families, "qwd_sessions", QWD_METRIC_GAUGE, "S.",
                                                 "state", states, counts, 2);
    CHECK(json_array_size(families) == 1 && json_array_get(families, 0) == family);
    qwd_metrics_add(family, 1, "state", "other", NULL);
    CHECK_STR(qwd_metrics_text(pool, families),
              "# HELP qwd_sessions S.\n# TYPE qwd_sessions gauge\n"
              "qwd_sessions{state=\"starting\"} 0\nqwd_sessions{state=\"running\"} 3\n"
              "qwd_sessions{state=\"other\"} 1\n");
    json_decref(families);
    apr_pool_destroy(pool);
}
