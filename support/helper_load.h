/* SPDX-License-Identifier: Apache-2.0 */
/* The host's load and memory as /proc reports them, for the load op and the max_load limit. */
#ifndef QWD_HELPER_LOAD_H
#define QWD_HELPER_LOAD_H

typedef struct host_load {
    int cpus;
    double load1, load5, load15;
    long mem_total_mib;
    long mem_available_mib;
} host_load;

/* Fills load; fields that cannot be read stay 0. */
void helper_load_read(host_load *load);

#endif
