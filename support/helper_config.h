/* SPDX-License-Identifier: Apache-2.0 */
/* qwd-helper's configuration: defaults, the key = value file, --set overrides, and the checks
 * run once at startup so a bad value stops the helper with the key's name. */
#ifndef QWD_HELPER_CONFIG_H
#define QWD_HELPER_CONFIG_H

#include "helper.h"

#define HELPER_DEFAULT_CONFIG "/etc/qwd/qwd-helper.conf"

/* A configuration holding every default. */
helper_config *helper_config_defaults(apr_pool_t *pool);

/* Applies one "key = value" (or "key=value") setting; returns NULL or an error message. */
const char *helper_config_set(apr_pool_t *pool, helper_config *config, const char *setting);

/* Reads path: "key = value" lines, '#' comments, blank lines. Returns NULL or an error
 * message naming the file and line. */
const char *helper_config_read(apr_pool_t *pool, helper_config *config, const char *path);

/* Checks values and fills derived defaults (token_dir). Returns NULL or an error message. */
const char *helper_config_check(apr_pool_t *pool, helper_config *config);

/* The QEMU binary for arch, or NULL when no qemu_<arch> key names one. */
const char *helper_config_qemu(const helper_config *config, const char *arch);

#endif
