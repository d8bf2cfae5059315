/* SPDX-License-Identifier: Apache-2.0 */
/* The QEMU guest agent (qemu-ga) of VMs whose machine has its channel (qga.sock): one request
 * at a time, never blocking the loop. The request is written at once (qemu-ga's answer can
 * take as long as the guest likes: the agent may not be running yet); the answer is read when
 * the socket is readable. */
#ifndef QWD_HELPER_AGENT_H
#define QWD_HELPER_AGENT_H

#include <jansson.h>

/* Connects to the agent socket and writes one request line. Returns the non-blocking fd to
 * wait on, or -1 (no socket yet, or QEMU closed it). */
int helper_agent_send(const char *socket_path, const char *request_line);

/* Reads what has arrived on fd: 1 a "return" line (success), 0 nothing complete yet, -1 an
 * "error" answer, EOF or a read error. */
int helper_agent_answer(int fd);

/* Reads what has arrived on fd: 1 a complete answer line (*answer: its JSON object, a new
 * reference), 0 nothing complete yet, -1 EOF, a read error or a line that is no JSON object. */
int helper_agent_read(int fd, json_t **answer);

/* Request lines. guest-set-time takes nanoseconds since the epoch. */
#define AGENT_PING "{\"execute\":\"guest-ping\"}\n"
#define AGENT_SET_TIME_FMT "{\"execute\":\"guest-set-time\",\"arguments\":{\"time\":%lld}}\n"

#endif
