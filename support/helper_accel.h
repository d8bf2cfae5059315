/* SPDX-License-Identifier: Apache-2.0 */
/* Choosing the accelerator and CPU model at startup: accel = auto takes KVM only when /dev/kvm
 * is usable and a short probe QEMU with the configured CPU model starts under it. */
#ifndef QWD_HELPER_ACCEL_H
#define QWD_HELPER_ACCEL_H

#include "helper.h"

/* Sets h->host.accel (kvm or tcg) and h->host.cpu_model from the configuration, probing KVM for
 * accel = auto (at most ACCEL_PROBE_TIMEOUT_MS; QEMU 7.2 aborts with some models under
 * some hosts' KVM, e.g. "failed to set MSR 0x10a" for host and max), and logs the choice. */
void helper_accel_resolve(helper *h);

#endif
