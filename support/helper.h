/* SPDX-License-Identifier: Apache-2.0 */
/* qwd-helper's shared state: the configuration, the session table and the client list that
 * the event loop, the ops and the session code all work on. */
#ifndef QWD_HELPER_H
#define QWD_HELPER_H

#include <apr_hash.h>
#include <apr_pools.h>
#include <apr_tables.h>
#include <apr_time.h>
#include <jansson.h>
#include <sys/types.h>

#include "qwd_screen.h"

typedef struct helper_config {
    const char *socket;
    int socket_mode;
    const char *socket_group;
    const char *machines_dir;
    const char *state_dir;
    const char *user;
    apr_table_t *qemu_binaries; /* arch ("x86_64") → QEMU binary, from the qemu_<arch> keys */
    const char *qemu_img;
    const char *accel;     /* as configured: auto, kvm or tcg */
    const char *cpu_model; /* -cpu; NULL: host under kvm, max under tcg */
    const char *websockify;
    const char *websockify_listen;
    const char *websockify_web;
    const char *token_dir;
    const char *nic_model;
    int max_sessions;
    int max_vcpus;
    int max_memory_mib;
    double max_load;
    int max_cpu;
    int max_session_memory_mib;
    int default_cpu;
    int default_memory_mib;
    int default_lifetime;
    int max_lifetime;
    const char *iso_scratch_size;
    const char *allowed_group;
    const char *log_file;
    int expiry_interval;
    int client_timeout;
    int ended_keep;
    int warm_auto;            /* build a warm image after a profile's first cold start */
    const char *warm_recipe;  /* "shared" (RAM in a file clones map copy-on-write) or "stream" */
    int warm_clone_hugepages; /* restored clones may use transparent huge pages */
    int warm_budget_mib;      /* disk for ready warm images; 0: no limit */
} helper_config;

typedef enum { SESSION_STARTING, SESSION_RUNNING, SESSION_ENDED } session_state;

typedef struct helper helper;

typedef struct helper_session {
    apr_pool_t *pool; /* everything of the session; destroyed when it is forgotten */
    helper *h;
    const char *id;
    const char *token;
    const char *machine;
    const char *owner;
    const char *ref; /* the client's own name for the session (start's "ref"), or NULL */
    const char *video;
    const char *boot;
    int cpu;
    int memory_mib;
    int oneshot;
    session_state state;
    pid_t pid;
    int is_child; /* ours to waitpid(); otherwise adopted and watched through pidfd */
    int pidfd;
    apr_time_t created;
    apr_time_t expires;
    apr_time_t ended_at;
    const char *ended_reason;
    const char *dir;
    const char *vnc_socket;
    const char *qmp_socket;
    /* While a stop is under way: why, and when to escalate to SIGTERM / SIGKILL. */
    const char *stop_reason;
    apr_time_t sigterm_at;
    apr_time_t sigkill_at;
    /* The VNC probe that turns "starting" into "running". */
    int probe_fd;
    apr_time_t next_probe;
    /* A shared-recipe restore still to drive over QMP (-incoming defer): the state file, and
     * when to give up (the session then falls back to a cold boot). */
    const char *restore_state;
    apr_time_t restore_deadline;
    /* Its machine has the guest agent channel: a restored clone's clock is set through it
     * (guest-set-time) once it runs. clock: NULL (not applicable), "syncing", "synced" or
     * "not synced". */
    int guest_agent;
    int agent_fd;
    apr_time_t agent_deadline;
    const char *clock;
} helper_session;

typedef enum { WARM_BUILDING, WARM_SAVING, WARM_QUITTING, WARM_READY, WARM_FAILED } warm_state;

/* A warm image (helper_warm.c): its template VM while it is built, then its metadata. */
typedef struct helper_warm {
    apr_pool_t *pool;
    helper *h;
    const char *key; /* MACHINE-CPUc-MEMm-VIDEO, also its directory name under STATE/warm */
    const char *machine;
    const char *video;
    int cpu;
    int memory_mib;
    const char *dir;
    int shared; /* warm_recipe shared: RAM in ram.bin, state saved with x-ignore-shared */
    warm_state state;
    const char *problem; /* why it failed */
    pid_t pid;           /* the template QEMU while building */
    const char *qmp_socket;
    /* Readiness (every condition set must hold; qwd_warm_sidecar): */
    const char *ready_serial; /* this text on the serial console */
    int ready_delay_s;        /* this many seconds after exec (< 0: not a condition) */
    int ready_screen_still_s; /* the screen unchanged this long (0: not a condition) */
    int ready_agent;          /* the guest agent answered a guest-ping */
    int agent_answered;
    int agent_fd; /* a guest-ping waiting for its answer, or -1 */
    apr_time_t agent_sent;
    qwd_screen screen; /* the screen since its last change (in screen_pool), and when */
    apr_pool_t *screen_pool;
    apr_time_t screen_changed;
    apr_time_t next_screendump;
    apr_time_t started;
    apr_time_t save_started;
    apr_time_t last_used; /* ready: its last restore (warm_budget_mib drops the oldest) */
    apr_time_t deadline;
    json_t *meta; /* meta.json once ready */
} helper_warm;

typedef struct helper_client {
    apr_pool_t *pool;
    helper *h;
    int fd;
    pid_t peer_pid;
    uid_t peer_uid;
    char *inbuf;
    apr_size_t inbuf_len;
    char *outbuf; /* malloc'd: replies not yet written */
    apr_size_t outbuf_len;
    int said_hello;
    int close_when_flushed;
    apr_time_t line_deadline; /* a complete request line must arrive before this */
    /* A stop/purge whose reply waits for its sessions to end (requests stay in order). */
    apr_array_header_t *waiting_for; /* helper_session * */
    json_t *waiting_id;
    int waiting_is_purge;
    struct helper_client *next;
} helper_client;

struct helper {
    apr_pool_t *pool;
    helper_config *config;
    const char *accel;     /* resolved: kvm or tcg */
    const char *cpu_model; /* resolved: the -cpu of every VM */
    const char *sessions_dir;
    const char *token_tmp_dir;
    int listen_fd;
    int signal_pipe[2];
    int allowed_gid_set;
    gid_t allowed_gid;
    apr_hash_t *sessions; /* id → helper_session, ended ones kept ended_keep seconds */
    helper_client *clients;
    pid_t websockify_pid;
    int websockify_output_fd;     /* read end of websockify's stdout+stderr, or -1 */
    char websockify_output[1024]; /* a line read in part */
    size_t websockify_output_len;
    apr_time_t websockify_started;
    apr_time_t websockify_restart_at;
    int websockify_backoff_s;
    apr_time_t next_expiry_check;
    const char *warm_dir;     /* STATE/warm */
    apr_hash_t *warm;         /* key → helper_warm */
    const char *qemu_version; /* first line of `qemu -version`, read once */
    int stopping;
};

#define HELPER_VERSION_STRING "qwd-helper 0.1.0"

#endif
