/* SPDX-License-Identifier: Apache-2.0 */
/* GPU passthrough (docs/data-sessions.md): which PCI devices may be given to a session, read
 * from sysfs (sysfs_root, so that tests can build one), and the choice of a free device whose
 * whole IOMMU group is bound to vfio-pci. Which device a session holds is in its record: a
 * device is free when no live session holds it, so ending a session (or re-adopting it after a
 * restart) needs no bookkeeping of its own. */
#ifndef QWD_HELPER_GPU_H
#define QWD_HELPER_GPU_H

#include <apr_hash.h>
#include <apr_pools.h>
#include <apr_tables.h>

/* gpu_devices = vfio: every display controller bound to vfio-pci. */
#define GPU_ALL_VFIO "vfio"
#define VFIO_DRIVER "vfio-pci"

/* Whether gpu_devices is set: the helper passes GPUs through at all. */
int helper_gpu_configured(const char *gpu_devices);

/* Picks a device for a session: the first of gpu_devices (or, for "vfio", of the display
 * controllers bound to vfio-pci) that no address of in_use (a set of PCI addresses) holds and
 * whose IOMMU group (below sysfs_root) is bound to vfio-pci but for its PCI bridges. Sets
 * *devices to the addresses to pass (the device first, then the rest of its group) and returns
 * 0; -1 when none is free (each device skipped for another reason than use is logged). */
int helper_gpu_pick(apr_pool_t *pool, const char *gpu_devices, const char *sysfs_root,
                    apr_hash_t *in_use, apr_array_header_t **devices);

#endif
