/* SPDX-License-Identifier: Apache-2.0 */
/* Atomic file writes and tree removal for the state directory: session records and websockify
 * token files must never be seen half-written, and an ended session leaves nothing behind. */
#include "helper_fs.h"

#include <apr_strings.h>
#include <dirent.h>
#include <errno.h>
#include <sys/statvfs.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int helper_fs_write_atomic(apr_pool_t *pool, const char *path, const char *tmp_dir,
                           const char *data, int mode)
{
    const char *slash = strrchr(path, '/');
    const char *name = slash ? slash + 1 : path;
    const char *tmp_path =
        tmp_dir ? apr_pstrcat(pool, tmp_dir, "/", name, NULL)
                : apr_pstrcat(pool, apr_pstrndup(pool, path, (apr_size_t)(name - path)), ".", name,
                              ".tmp", NULL);
    int fd = open(tmp_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);
    if (fd < 0) {
        return errno;
    }
    apr_size_t len = strlen(data);
    ssize_t written = write(fd, data, len);
    int error = written == (ssize_t)len ? 0 : (written < 0 ? errno : EIO);
    if (close(fd) != 0 && !error) {
        error = errno;
    }
    if (!error && rename(tmp_path, path) != 0) {
        error = errno;
    }
    if (error) {
        unlink(tmp_path);
    }
    return error;
}

char *helper_fs_read_length(apr_pool_t *pool, const char *path, apr_size_t max_len,
                            apr_size_t *length)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    struct stat st;
    if (fd < 0) {
        return NULL;
    }
    if (fstat(fd, &st) != 0) {
        close(fd);
        return NULL;
    }
    /* Sized by the file, not by max_len: callers poll files (a serial log, a screendump). */
    apr_size_t size = (apr_size_t)st.st_size < max_len ? (apr_size_t)st.st_size : max_len;
    char *data = apr_palloc(pool, size + 1);
    apr_size_t len = 0;
    ssize_t n;
    while (len < size && (n = read(fd, data + len, size - len)) > 0) {
        len += (apr_size_t)n;
    }
    close(fd);
    data[len] = '\0';
    if (length) {
        *length = len;
    }
    return data;
}

char *helper_fs_read(apr_pool_t *pool, const char *path, apr_size_t max_len)
{
    return helper_fs_read_length(pool, path, max_len, NULL);
}

/* Removes everything inside the directory dir_fd refers to; closes dir_fd. */
static int remove_children(int dir_fd)
{
    DIR *dir = fdopendir(dir_fd);
    if (!dir) {
        close(dir_fd);
        return errno;
    }
    int error = 0;
    struct dirent *entry;
    while ((entry = readdir(dir))) {
        if (!strcmp(entry->d_name, ".") || !strcmp(entry->d_name, "..")) {
            continue;
        }
        if (unlinkat(dirfd(dir), entry->d_name, 0) == 0) {
            continue;
        }
        if (errno != EISDIR) {
            error = errno;
            continue;
        }
        int child =
            openat(dirfd(dir), entry->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        int child_error = child < 0 ? errno : remove_children(child);
        if (!child_error && unlinkat(dirfd(dir), entry->d_name, AT_REMOVEDIR) != 0) {
            child_error = errno;
        }
        if (child_error) {
            error = child_error;
        }
    }
    closedir(dir);
    return error;
}

int helper_fs_remove_tree(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        return errno == ENOENT ? 0 : errno;
    }
    int error = remove_children(fd);
    if (rmdir(dir) != 0 && !error) {
        error = errno;
    }
    return error;
}

int helper_fs_mkdirs(apr_pool_t *pool, const char *dir, int mode)
{
    char *path = apr_pstrdup(pool, dir);
    for (char *slash = strchr(path + 1, '/');; slash = strchr(slash + 1, '/')) {
        if (slash) {
            *slash = '\0';
        }
        if (mkdir(path, (mode_t)mode) != 0 && errno != EEXIST) {
            return errno;
        }
        if (!slash) {
            return 0;
        }
        *slash = '/';
    }
}

long helper_fs_free_mib(const char *dir)
{
    struct statvfs fs;
    if (statvfs(dir, &fs) != 0) {
        return -1;
    }
    return (long)((unsigned long long)fs.f_bavail * fs.f_frsize / (1024 * 1024));
}
