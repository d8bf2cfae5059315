/* SPDX-License-Identifier: Apache-2.0 */
/* The few QMP exchanges the helper needs with a VM: "is it really ours and alive" when
 * re-adopting, and "quit" when stopping. Short, bounded, blocking exchanges (~1 ms). */
#ifndef QWD_HELPER_QMP_H
#define QWD_HELPER_QMP_H

/* Whether the QMP socket at path sends its greeting within timeout_ms. */
int helper_qmp_answers(const char *path, int timeout_ms);

/* Negotiates capabilities and sends "quit". Returns 0 when the command was sent. */
int helper_qmp_quit(const char *path, int timeout_ms);

/* Saves the VM's state into state_fd: passes the fd with getfd (SCM_RIGHTS) and starts
 * "migrate fd:". ignore_shared: sets x-ignore-shared first (RAM in a share=on file is not
 * sent). Returns 0 when QEMU accepted the migration (it runs in QEMU's own thread). */
int helper_qmp_save(const char *path, int state_fd, int ignore_shared, int timeout_ms);

/* Restores a VM started with -incoming defer: sets x-ignore-shared, passes state_fd with
 * getfd and starts "migrate-incoming fd:". Returns 0 when QEMU accepted it (it loads in the
 * background; a failed load makes QEMU exit). */
int helper_qmp_restore(const char *path, int state_fd, int timeout_ms);

/* Whether a VM started with -incoming defer still waits for its migrate-incoming: 1 yes
 * (status inmigrate and no incoming migration under way), 0 no, -1 no answer. */
int helper_qmp_restore_pending(const char *path, int timeout_ms);

/* Writes the VM's screen to file (PPM) with screendump. Returns 0 when QEMU wrote it. */
int helper_qmp_screendump(const char *path, const char *file, int timeout_ms);

/* query-migrate: 1 completed, 0 still under way, -1 failed, cancelled or no answer. */
int helper_qmp_migration_done(const char *path, int timeout_ms);

#endif
