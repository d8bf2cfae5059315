/* SPDX-License-Identifier: Apache-2.0 */
/* `SetHandler qwd-metrics`: the Prometheus text format (or ?format=json) of the module's
 * counters and the helper's metrics, and mod_qwd's section of mod_status' server-status. */
#ifndef QWD_SCRAPE_H
#define QWD_SCRAPE_H

#include <httpd.h>

/* The module's version, for qwd_build_info (configure.ac's AC_INIT says the same). */
#define QWD_MODULE_VERSION "0.1.0"
#define QWD_METRICS_HANDLER "qwd-metrics"

/* post_config: the counters' shared memory, and the helper socket the metrics and status
 * use where their own section names none. */
int qwd_metrics_post_config(apr_pool_t *pconf, server_rec *s);

void qwd_metrics_register_hooks(apr_pool_t *pool);

#endif
