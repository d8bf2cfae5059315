/* SPDX-License-Identifier: Apache-2.0 */
/* Reads PCI devices and IOMMU groups the way the kernel shows them (bus/pci/devices/ADDR with
 * its class, driver and iommu_group links; kernel/iommu_groups/N/devices/), all below
 * sysfs_root. vfio needs every device of a group bound to vfio-pci (bridges excepted), and
 * QEMU then takes them all: a GPU's audio function goes with it. */
#include "helper_gpu.h"
#include "helper_fs.h"
#include "helper_log.h"
#include "qwd_argv.h"

#include <apr_strings.h>
#include <dirent.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PCI_CLASS_DISPLAY 0x03  /* class >> 16: VGA, 3D and other display controllers */
#define PCI_CLASS_BRIDGE 0x0604 /* class >> 8: a PCI-to-PCI bridge, left to the host */
#define CLASS_TEXT_MAX 32

int helper_gpu_configured(const char *gpu_devices)
{
    return gpu_devices && *gpu_devices;
}

static const char *device_path(apr_pool_t *pool, const char *root, const char *address,
                               const char *name)
{
    return apr_pstrcat(pool, root, "/bus/pci/devices/", address, name ? "/" : "", name, NULL);
}

/* The last component of the link path points to, or NULL. */
static const char *link_target_name(apr_pool_t *pool, const char *path)
{
    char target[PATH_MAX];
    ssize_t length = readlink(path, target, sizeof target - 1);
    if (length <= 0) {
        return NULL;
    }
    target[length] = '\0';
    const char *slash = strrchr(target, '/');
    return apr_pstrdup(pool, slash ? slash + 1 : target);
}

static unsigned long device_class(apr_pool_t *pool, const char *root, const char *address)
{
    char *text = helper_fs_read(pool, device_path(pool, root, address, "class"), CLASS_TEXT_MAX);
    return text ? strtoul(text, NULL, 16) : 0;
}

static int by_address(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The PCI addresses that are entries of dir, sorted. */
static apr_array_header_t *addresses_in(apr_pool_t *pool, const char *dir)
{
    apr_array_header_t *addresses = apr_array_make(pool, 4, sizeof(const char *));
    DIR *handle = opendir(dir);
    if (!handle) {
        return addresses;
    }
    struct dirent *entry;
    while ((entry = readdir(handle))) {
        if (qwd_argv_pci_address_is_valid(entry->d_name)) {
            APR_ARRAY_PUSH(addresses, const char *) = apr_pstrdup(pool, entry->d_name);
        }
    }
    closedir(handle);
    qsort(addresses->elts, (size_t)addresses->nelts, sizeof(const char *), by_address);
    return addresses;
}

/* The devices that may be given, in order. */
static apr_array_header_t *candidates(apr_pool_t *pool, const char *gpu_devices, const char *root)
{
    if (!strcmp(gpu_devices, GPU_ALL_VFIO)) {
        apr_array_header_t *bound =
            addresses_in(pool, apr_pstrcat(pool, root, "/bus/pci/drivers/" VFIO_DRIVER, NULL));
        apr_array_header_t *displays = apr_array_make(pool, bound->nelts, sizeof(const char *));
        for (int i = 0; i < bound->nelts; i++) {
            const char *address = APR_ARRAY_IDX(bound, i, const char *);
            if (device_class(pool, root, address) >> 16 == PCI_CLASS_DISPLAY) {
                APR_ARRAY_PUSH(displays, const char *) = address;
            }
        }
        return displays;
    }
    apr_array_header_t *listed = apr_array_make(pool, 4, sizeof(const char *));
    char *copy = apr_pstrdup(pool, gpu_devices), *state;
    for (char *address = apr_strtok(copy, " ,", &state); address;
         address = apr_strtok(NULL, " ,", &state)) {
        APR_ARRAY_PUSH(listed, const char *) = address;
    }
    return listed;
}

/* The devices of address's IOMMU group to pass (address first), or NULL with *problem. */
static apr_array_header_t *group_devices(apr_pool_t *pool, const char *root, const char *address,
                                         const char **problem)
{
    const char *group = link_target_name(pool, device_path(pool, root, address, "iommu_group"));
    if (!group) {
        *problem = "it has no IOMMU group (is the IOMMU on, and the device there?)";
        return NULL;
    }
    apr_array_header_t *members = addresses_in(
        pool, apr_pstrcat(pool, root, "/kernel/iommu_groups/", group, "/devices", NULL));
    apr_array_header_t *devices = apr_array_make(pool, members->nelts + 1, sizeof(const char *));
    APR_ARRAY_PUSH(devices, const char *) = address;
    int found = 0;
    for (int i = 0; i < members->nelts; i++) {
        const char *member = APR_ARRAY_IDX(members, i, const char *);
        if (device_class(pool, root, member) >> 8 == PCI_CLASS_BRIDGE) {
            continue;
        }
        const char *driver = link_target_name(pool, device_path(pool, root, member, "driver"));
        if (!driver || strcmp(driver, VFIO_DRIVER)) {
            *problem =
                apr_psprintf(pool, "%s of its IOMMU group %s is bound to %s, not " VFIO_DRIVER,
                             member, group, driver ? driver : "no driver");
            return NULL;
        }
        if (!strcmp(member, address)) {
            found = 1;
        }
        else {
            APR_ARRAY_PUSH(devices, const char *) = member;
        }
    }
    if (!found) {
        *problem = apr_psprintf(pool, "it is not in its own IOMMU group %s", group);
        return NULL;
    }
    return devices;
}

int helper_gpu_pick(apr_pool_t *pool, const char *gpu_devices, const char *sysfs_root,
                    apr_hash_t *in_use, apr_array_header_t **devices)
{
    if (!helper_gpu_configured(gpu_devices)) {
        return -1;
    }
    apr_array_header_t *listed = candidates(pool, gpu_devices, sysfs_root);
    for (int i = 0; i < listed->nelts; i++) {
        const char *address = APR_ARRAY_IDX(listed, i, const char *);
        const char *problem = NULL;
        apr_array_header_t *group = group_devices(pool, sysfs_root, address, &problem);
        if (!group) {
            helper_log_warn(QWDLOGNO(05400) "gpu %s: cannot be passed through: %s", address,
                            problem);
            continue;
        }
        int taken = 0;
        for (int k = 0; k < group->nelts && !taken; k++) {
            taken = apr_hash_get(in_use, APR_ARRAY_IDX(group, k, const char *), APR_HASH_KEY_STRING)
                    != NULL;
        }
        if (!taken) {
            *devices = group;
            return 0;
        }
    }
    return -1;
}
