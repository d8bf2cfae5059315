/* SPDX-License-Identifier: Apache-2.0 */
/* The qwd-helper wire format (docs/protocol.md): constants, error codes and the JSON-lines
 * codec shared by qwd-helper, qwdctl and mod_qwd. Pure jansson + APR: no sockets, no policy. */
#ifndef QWD_PROTOCOL_H
#define QWD_PROTOCOL_H

#include <apr_pools.h>
#include <jansson.h>

#define QWD_PROTO_VERSION 1
/* Longest line (without its '\n') either side accepts; longer ones get QWD_ERR_TOO_LARGE. */
#define QWD_PROTO_MAX_MESSAGE 65536
/* A client that sends no complete line for this long is closed with QWD_ERR_TIMEOUT. */
#define QWD_PROTO_IDLE_TIMEOUT_MS 10000
#define QWD_PROTO_DEFAULT_SOCKET "/run/qwd/helper.sock"
#define QWD_PROTO_SOCKET_ENV "QWD_HELPER_SOCKET"

/* Ops (the "execute" values). */
#define QWD_OP_HELLO "hello"
#define QWD_OP_START "start"
#define QWD_OP_STOP "stop"
#define QWD_OP_STATUS "status"
#define QWD_OP_LIST "list"
#define QWD_OP_PURGE "purge"
#define QWD_OP_MACHINES "machines"
#define QWD_OP_LOAD "load"
#define QWD_OP_WARM "warm"           /* {machine, cpu?, memory_mib?, video?} → warm image */
#define QWD_OP_WARM_LIST "warm_list" /* {} → {"warm": [warm image, ...]} */
#define QWD_OP_WARM_DROP "warm_drop" /* {machine?, cpu?, memory_mib?, video?} → {"dropped": N} */
#define QWD_OP_SHARE "share"         /* {id, kind, expires?} → the share object */
#define QWD_OP_UNSHARE "unshare"     /* {id, share} → {"share", "closed": N} */
/* What an operator asks (docs/protocol.md, "Operations"). */
#define QWD_OP_METRICS "metrics" /* {} → {"families": [...]} (lib/qwd_metrics.h) */
#define QWD_OP_EVENTS "events"   /* {after?, limit?} → {"journal", "last", "events": [...]} */
#define QWD_OP_USAGE "usage"     /* {} → {"sessions": [{id, pid, cpu_seconds, ...}]} */
#define QWD_OP_EXTEND "extend"   /* {id, seconds, by?, audited?} → the session object */
/* {brief?} → list's answer + {"usage": [{id, cpu_percent, pss_bytes, disk_bytes}], "load",
 * "warm": [...]} */
#define QWD_OP_MONITOR "monitor"

/* A session's "state". */
#define QWD_STATE_QUEUED "queued"     /* its batch job waits for room (see "queued_reason") */
#define QWD_STATE_STARTING "starting" /* QEMU runs, its VNC socket does not answer yet */
#define QWD_STATE_RUNNING "running"   /* VNC answers */
#define QWD_STATE_ENDED "ended"       /* QEMU is gone; see "ended_reason" */

/* A session's "ended_reason". */
#define QWD_END_STOPPED "stopped"     /* stop */
#define QWD_END_EXPIRED "expired"     /* its lifetime ran out */
#define QWD_END_PURGED "purged"       /* purge */
#define QWD_END_POWEROFF "poweroff"   /* QEMU exited by itself with status 0 */
#define QWD_END_CRASHED "crashed"     /* any other exit */
#define QWD_END_NODE_LOST "node_lost" /* the cluster node it ran on was lost (Slurm NODE_FAIL) */
/* Ends the session's relay decides (helper_relay.c): */
#define QWD_END_IDLE "idle"               /* no viewer for the configured time */
#define QWD_END_VIEWER_LEFT "viewer_left" /* the one viewer of a one-shot session left */

/* A session's "boot". */
#define QWD_BOOT_COLD "cold"         /* booted from its disk or ISO */
#define QWD_BOOT_RESTORED "restored" /* restored from a warm image */

/* What a viewer of a session's display may do (a share's "kind", a viewer's "kind" in the
 * session object's "viewers", load's counts, the metrics and the journal's "viewed"). */
#define QWD_VIEWER_OWNER "owner"     /* the session's own link: keyboard and mouse */
#define QWD_VIEWER_CONTROL "control" /* a share whose viewers have keyboard and mouse too */
#define QWD_VIEWER_VIEW "view"       /* a share whose viewers only watch */
/* Shares a session has at once (lib/qwd_token.h: a share's id). */
#define QWD_PROTO_MAX_VIEWER_SHARES 32
/* A session's "backend": where its VM runs (start's optional "backend" argument). */
#define QWD_BACKEND_LOCAL "local" /* on the helper's host */
#define QWD_BACKEND_SLURM "slurm" /* on a cluster node, one Slurm batch job per session */

/* The "event" of a journal entry (the events op). */
#define QWD_EVENT_STARTED "started"   /* a session's VM was launched */
#define QWD_EVENT_ENDED "ended"       /* a session ended; "reason" is its ended_reason */
#define QWD_EVENT_EXTENDED "extended" /* a session's lifetime was extended */
#define QWD_EVENT_VIEWED "viewed"     /* a viewer left its display: "kind", "share", "seconds" */

/* "by" of stop, purge, extend and start: who asked, ≤ this many characters. */
#define QWD_PROTO_BY_MAX 64

/* Bounds of start's arguments. */
#define QWD_PROTO_MIN_MEMORY_MIB 64 /* memory_mib of any VM (and of max/default keys) */
#define QWD_PROTO_OWNER_MAX 64      /* characters of owner */
#define QWD_PROTO_REF_MAX 64        /* characters of ref, of QWD_PROTO_REF_CHARS */
#define QWD_PROTO_REF_CHARS "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._:-"
/* Sessions for data analysis (docs/data-sessions.md): start's shares, script, script_text,
 * scratch_gib and gpu. */
#define QWD_PROTO_SHARES_MAX 16         /* names in shares (the optional shares chosen) */
#define QWD_PROTO_SCRIPT_NAME_MAX 64    /* characters of script (an admin script's name) */
#define QWD_PROTO_SCRIPT_TEXT_MAX 16384 /* bytes of script_text, after which: bad_argument */
#define QWD_PROTO_MIN_SCRATCH_GIB 1     /* scratch_gib of an ISO session: 1..max_scratch_gib */
/* A session's "setup": how its host folders and start-up script reach the guest. */
#define QWD_SETUP_SEEDED "seeded"   /* cold boot: in the NoCloud seed its guest reads at boot */
#define QWD_SETUP_WAITING "waiting" /* restored: waits for the guest agent */
#define QWD_SETUP_RUNNING "running" /* restored: guest-exec started it, it has not ended */
#define QWD_SETUP_DONE "done"       /* restored: it ended with status 0 */
#define QWD_SETUP_FAILED "failed"   /* restored: another status, or the agent refused it */
/* The "limit" of limit_reached when no passthrough device is free. */
#define QWD_LIMIT_GPU "gpu"

/* Stable error codes (the "code" of an error reply). */
#define QWD_ERR_BAD_JSON "bad_json"
#define QWD_ERR_TOO_LARGE "too_large"
#define QWD_ERR_TIMEOUT "timeout"
#define QWD_ERR_FORBIDDEN "forbidden"
#define QWD_ERR_NO_HELLO "no_hello"
#define QWD_ERR_BAD_VERSION "bad_version"
#define QWD_ERR_UNKNOWN_OP "unknown_op"
#define QWD_ERR_BAD_ARGUMENT "bad_argument"
#define QWD_ERR_UNKNOWN_MACHINE "unknown_machine"
#define QWD_ERR_UNUSABLE_MACHINE "unusable_machine" /* listed, but with a problem */
#define QWD_ERR_LIMIT_REACHED "limit_reached"
#define QWD_ERR_NOT_FOUND "not_found"
#define QWD_ERR_START_FAILED "start_failed"
#define QWD_ERR_NO_SPACE "no_space" /* the state directory is (nearly) full */
/* The place a session runs in refused its longer lifetime (Slurm: scontrol update TimeLimit). */
#define QWD_ERR_EXTEND_FAILED "extend_failed"
#define QWD_ERR_INTERNAL "internal"
/* Client-side only (never sent by the helper): the helper could not be reached or spoke
 * something that is not this protocol. */
#define QWD_ERR_UNREACHABLE "unreachable"
#define QWD_ERR_PROTOCOL "protocol"

/* Ties a jansson value to a pool: it is decref'd when the pool is cleared. Returns value. */
json_t *qwd_json_pool_bind(apr_pool_t *pool, json_t *value);

/* {"execute": op, "arguments": arguments, "id": id}. Steals arguments (NULL → {}) and id
 * (NULL → no id). */
json_t *qwd_proto_request(const char *op, json_t *arguments, json_t *id);

/* {"return": result, "id": id}. Steals result (NULL → {}); borrows id (may be NULL). */
json_t *qwd_proto_reply(json_t *result, json_t *id);

/* {"error": {"code": code, "message": message, ...extra}, "id": id}. Steals extra (may be
 * NULL: its fields are merged into the error object), borrows id. */
json_t *qwd_proto_error(const char *code, const char *message, json_t *extra, json_t *id);

/* The compact one-line encoding of message, '\n' included, allocated in pool. Returns NULL
 * when it cannot be encoded or would exceed QWD_PROTO_MAX_MESSAGE. Borrows message. */
char *qwd_proto_encode(apr_pool_t *pool, json_t *message);

/* Parses one line (len bytes, a trailing "\n" or "\r\n" allowed) into a JSON object, bound to
 * pool. On failure returns NULL and sets *error_code to QWD_ERR_TOO_LARGE or QWD_ERR_BAD_JSON
 * and *error_message to a readable reason. */
json_t *qwd_proto_parse_line(apr_pool_t *pool, const char *line, apr_size_t len,
                             const char **error_code, const char **error_message);

/* A request's parts, borrowed from a parsed line. Returns QWD_ERR_BAD_JSON (with *message) when
 * "execute" is missing or not a string or "arguments" is not an object; else NULL. A missing
 * "arguments" yields an empty object owned by request. */
const char *qwd_proto_request_parts(json_t *request, const char **op, json_t **arguments,
                                    json_t **id, const char **message);

#endif
