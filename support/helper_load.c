/* SPDX-License-Identifier: Apache-2.0 */
/* Reads /proc/loadavg and /proc/meminfo. */
#include "helper_load.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define MEMINFO_LINE_MAX 256
#define KIB_PER_MIB 1024

void helper_load_read(host_load *load)
{
    memset(load, 0, sizeof *load);
    load->cpus = (int)sysconf(_SC_NPROCESSORS_ONLN);
    FILE *file = fopen("/proc/loadavg", "r");
    if (file) {
        if (fscanf(file, "%lf %lf %lf", &load->load1, &load->load5, &load->load15) != 3) {
            load->load1 = load->load5 = load->load15 = 0;
        }
        fclose(file);
    }
    file = fopen("/proc/meminfo", "r");
    if (file) {
        char line[MEMINFO_LINE_MAX];
        long kib;
        while (fgets(line, sizeof line, file)) {
            if (sscanf(line, "MemTotal: %ld kB", &kib) == 1) {
                load->mem_total_mib = kib / KIB_PER_MIB;
            }
            else if (sscanf(line, "MemAvailable: %ld kB", &kib) == 1) {
                load->mem_available_mib = kib / KIB_PER_MIB;
            }
        }
        fclose(file);
    }
}
