/* SPDX-License-Identifier: Apache-2.0 */
/* Connecting to a VM's Unix sockets, and listening on the relay's. Unix connect() does not
 * block on a listening socket, so non-blocking mode only matters for the reads that follow. */
#include "helper_unix.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

/* A non-blocking stream socket and path's address, or -1 with errno (ENAMETOOLONG: path does
 * not fit in sun_path). */
static int unix_socket(const char *path, struct sockaddr_un *addr)
{
    *addr = (struct sockaddr_un){.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof addr->sun_path) {
        errno = ENAMETOOLONG;
        return -1;
    }
    strcpy(addr->sun_path, path);
    return socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
}

/* Closes fd keeping the errno of what failed; returns -1. */
static int close_failed(int fd)
{
    int error = errno;
    close(fd);
    errno = error;
    return -1;
}

int helper_unix_connect(const char *path)
{
    struct sockaddr_un addr;
    int fd = unix_socket(path, &addr);
    if (fd < 0) {
        return -1;
    }
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
        return close_failed(fd);
    }
    return fd;
}

int helper_unix_listen(const char *path, int backlog)
{
    struct sockaddr_un addr;
    int fd = unix_socket(path, &addr);
    if (fd < 0) {
        return -1;
    }
    unlink(path); /* a socket file of a helper that was killed */
    if (bind(fd, (struct sockaddr *)&addr, sizeof addr) != 0 || listen(fd, backlog) != 0) {
        return close_failed(fd);
    }
    return fd;
}
