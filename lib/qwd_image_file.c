/* SPDX-License-Identifier: Apache-2.0 */
/* Inspects a master image and the files its header refers to, reading only their first and
 * last bytes: a file named for one format is never opened as another, and no reference leads
 * QEMU out of the machines directory. */
#include "qwd_image_file.h"
#include "qwd_image.h"

#include <apr_strings.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct image_bytes {
    unsigned char head[QWD_IMAGE_HEAD_SIZE];
    unsigned char footer[QWD_IMAGE_FOOTER_SIZE];
    apr_size_t head_len, footer_len;
    apr_uint64_t size;
} image_bytes;

/* Reads the head and footer of path into *bytes; returns NULL or why not (in pool). */
static const char *read_bytes(apr_pool_t *pool, const char *path, image_bytes *bytes)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return apr_psprintf(pool, "cannot open it: %s", strerror(errno));
    }
    struct stat info;
    ssize_t head_len = fstat(fd, &info) == 0 ? pread(fd, bytes->head, sizeof bytes->head, 0) : -1;
    ssize_t footer_len = 0;
    if (head_len >= 0 && info.st_size >= (off_t)sizeof bytes->footer) {
        footer_len = pread(fd, bytes->footer, sizeof bytes->footer,
                           info.st_size - (off_t)sizeof bytes->footer);
    }
    int error = errno;
    close(fd);
    if (head_len < 0 || footer_len < 0) {
        return apr_psprintf(pool, "cannot read it: %s", strerror(error));
    }
    bytes->head_len = (apr_size_t)head_len;
    bytes->footer_len = (apr_size_t)footer_len;
    bytes->size = (apr_uint64_t)info.st_size;
    return NULL;
}

/* The resolved path of a reference of the file at from (resolved), if it is a regular file
 * inside real_dir; else NULL with *problem. QEMU reads relative names from the referring file's
 * directory, and "proto:..." names (json:, nbd:, file:...) as protocols. */
static const char *resolve_reference(apr_pool_t *pool, const char *real_dir, const char *from,
                                     const qwd_image_ref *ref, const char **problem)
{
    if (!*ref->name || strchr(ref->name, ':')) {
        *problem =
            apr_psprintf(pool, "its %s \"%s\" is not a plain file name", ref->role, ref->name);
        return NULL;
    }
    const char *joined = ref->name;
    if (ref->name[0] != '/') {
        const char *slash = strrchr(from, '/');
        joined = apr_pstrcat(pool, apr_pstrndup(pool, from, (apr_size_t)(slash - from)), "/",
                             ref->name, NULL);
    }
    char resolved[PATH_MAX];
    struct stat info;
    if (!realpath(joined, resolved)) {
        *problem = apr_psprintf(pool, "its %s \"%s\" does not exist", ref->role, ref->name);
        return NULL;
    }
    size_t dir_len = strlen(real_dir);
    if (strncmp(resolved, real_dir, dir_len) || resolved[dir_len] != '/') {
        *problem = apr_psprintf(pool, "its %s \"%s\" is outside the machines directory", ref->role,
                                ref->name);
        return NULL;
    }
    if (stat(resolved, &info) != 0 || !S_ISREG(info.st_mode)) {
        *problem = apr_psprintf(pool, "its %s \"%s\" is not a regular file", ref->role, ref->name);
        return NULL;
    }
    return apr_pstrdup(pool, resolved);
}

/* Checks the references of the image at path, whose bytes are in bytes and which is attached
 * as format, and those of the whole images it refers to, depth levels deep at most. */
static const char *check_references(apr_pool_t *pool, const char *real_dir, const char *path,
                                    const char *format, const image_bytes *bytes, int depth)
{
    apr_array_header_t *refs;
    const char *problem = qwd_image_references(pool, format, bytes->head, bytes->head_len,
                                               bytes->footer, bytes->footer_len, &refs);
    for (int i = 0; !problem && i < refs->nelts; i++) {
        const qwd_image_ref *ref = &APR_ARRAY_IDX(refs, i, qwd_image_ref);
        const char *target = resolve_reference(pool, real_dir, path, ref, &problem);
        if (!target || !ref->is_image) {
            continue;
        }
        if (depth >= QWD_IMAGE_CHAIN_MAX) {
            return apr_psprintf(pool, "its chain of backing files is longer than %d",
                                QWD_IMAGE_CHAIN_MAX);
        }
        image_bytes *next = apr_palloc(pool, sizeof *next);
        if ((problem = read_bytes(pool, target, next))) {
            return apr_psprintf(pool, "its %s \"%s\": %s", ref->role, ref->name, problem);
        }
        const char *content =
            qwd_image_format(next->head, next->head_len, next->footer, next->footer_len);
        /* a stated backing format must be what the file is; an unstated one is probed by QEMU,
         * which finds what qwd_image_format finds */
        if (ref->format && strcmp(ref->format, qwd_image_qemu_format(content))) {
            return apr_psprintf(pool, "its %s \"%s\" is declared %s but its bytes are %s",
                                ref->role, ref->name, ref->format, content);
        }
        const char *next_problem = check_references(
            pool, real_dir, target, qwd_image_qemu_format(content), next, depth + 1);
        if (next_problem) {
            return apr_psprintf(pool, "its %s \"%s\": %s", ref->role, ref->name, next_problem);
        }
    }
    return problem;
}

int qwd_image_inspect(apr_pool_t *pool, const char *real_dir, const char *name, const char *path,
                      qwd_image_inspection *out)
{
    *out = (qwd_image_inspection){0};
    image_bytes *bytes = apr_palloc(pool, sizeof *bytes);
    if ((out->problem = read_bytes(pool, path, bytes))) {
        return -1;
    }
    out->content_format =
        qwd_image_format(bytes->head, bytes->head_len, bytes->footer, bytes->footer_len);
    out->virtual_size = qwd_image_virtual_size(out->content_format, bytes->head, bytes->head_len,
                                               bytes->footer, bytes->footer_len, bytes->size);
    const char *name_format = qwd_image_name_format(name);
    if (!name_format) {
        out->problem = "its name has no image extension";
        return 0;
    }
    const char *format =
        qwd_image_attach_format(pool, name_format, out->content_format, &out->problem);
    if (format
        && !(out->problem =
                 check_references(pool, real_dir, path, qwd_image_qemu_format(format), bytes, 0))) {
        out->format = format;
    }
    return 0;
}
