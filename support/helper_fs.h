/* SPDX-License-Identifier: Apache-2.0 */
/* File-system chores of qwd-helper: atomic writes (temp file + rename), recursive removal of a
 * session directory, mkdir -p. */
#ifndef QWD_HELPER_FS_H
#define QWD_HELPER_FS_H

#include <apr_pools.h>

/* Writes data to tmp_dir/NAME then renames it to path (same file system), so readers see the
 * whole old or the whole new file. tmp_dir NULL: path's own directory. Returns 0 or errno. */
int helper_fs_write_atomic(apr_pool_t *pool, const char *path, const char *tmp_dir,
                           const char *data, int mode);

/* Reads a whole (small) file, at most max_len bytes of it, into pool, NUL-terminated; NULL on
 * error. _length also says how many bytes were read (binary files). */
char *helper_fs_read(apr_pool_t *pool, const char *path, apr_size_t max_len);
char *helper_fs_read_length(apr_pool_t *pool, const char *path, apr_size_t max_len,
                            apr_size_t *length);

/* Removes dir and everything below it (no symlink is followed). Returns 0 or errno. */
int helper_fs_remove_tree(const char *dir);

/* mkdir -p with mode for the directories it creates. Returns 0 or errno. */
int helper_fs_mkdirs(apr_pool_t *pool, const char *dir, int mode);

/* MiB available to the helper in the file system of dir, or -1 when statvfs fails. */
long helper_fs_free_mib(const char *dir);

#endif
