/* SPDX-License-Identifier: Apache-2.0 */
/* Warm images: build (template VM on its own overlay, readiness from the serial console, a delay,
 * the screen or the guest agent, QMP migrate to a file), validation against QEMU, argv and
 * master, and dropping. Every exchange with a template is a step of the loop: at most one QMP
 * conversation per template at a time (QMP serves one client). */
#include "helper_warm.h"
#include "helper_agent.h"
#include "helper_config.h"
#include "helper_fs.h"
#include "helper_load.h"
#include "helper_log.h"
#include "helper_machines.h"
#include "helper_proc.h"
#include "helper_qemu.h"
#include "helper_qmp.h"
#include "helper_shares.h"
#include "qwd_screen.h"
#include "qwd_warm.h"

#include <apr_file_info.h>
#include <apr_hash.h>
#include <apr_strings.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define WARM_BUILD_TIMEOUT_S 300
#define WARM_DEFAULT_DELAY_S 30
/* A template busy saving (or loaded by its guest) may answer QMP slower than a session. */
#define WARM_QMP_TIMEOUT_MS 1000
/* ready_screen_still: a screendump this often. */
#define WARM_SCREENDUMP_INTERVAL_S 1
/* ready_agent: a guest-ping unanswered this long is sent again. */
#define WARM_AGENT_RETRY_S 2
/* Reading limits: a template's screendump and serial log, an image's meta.json. */
#define WARM_SCREEN_MAX (256 * 1024 * 1024)
#define WARM_SERIAL_MAX (4 * 1024 * 1024)
#define WARM_META_MAX 65536
#define QEMU_STATE_MAGIC "QEVM"
#define MIB (1024 * 1024)
#define QEMU_VERSION_MAX 512
#define STAT_BLOCK_BYTES 512 /* st_blocks counts these */

typedef enum {
    WARM_PREPARING, /* its overlay is being made (qemu-img) */
    WARM_BUILDING,  /* the template boots until it is ready */
    WARM_SAVING,
    WARM_QUITTING,
    WARM_READY,
    WARM_FAILED
} warm_state;

/* One warm image: its template VM while it is built, then its metadata. */
typedef struct warm_image {
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
    const char *problem;   /* why it failed */
    helper_qemu *template; /* the template QEMU while building */
    helper_qmp *qmp;       /* the conversation with it under way, or NULL */
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
} warm_image;

struct helper_warm_images {
    apr_hash_t *images;        /* key → warm_image */
    const char *dir;           /* STATE/warm */
    apr_hash_t *qemu_versions; /* QEMU binary → its version (read at startup) */
};

static int recipe_shared(const helper *h)
{
    return !strcmp(h->config->warm_recipe, "shared");
}

static const char *warm_file(apr_pool_t *pool, const warm_image *w, const char *name)
{
    return qwd_session_file(pool, w->dir, name);
}

static const char *profile_key(apr_pool_t *pool, const qwd_vm_profile *profile)
{
    return qwd_warm_key(pool, profile->machine, profile->cpu, profile->memory_mib, profile->video);
}

static warm_image *find(helper *h, apr_pool_t *pool, const qwd_vm_profile *profile)
{
    return apr_hash_get(h->warm->images, profile_key(pool, profile), APR_HASH_KEY_STRING);
}

/* meta goes with the image's pool, also when the helper frees everything at exit. */
static apr_status_t free_meta(void *data)
{
    warm_image *w = data;
    json_decref(w->meta);
    w->meta = NULL;
    return APR_SUCCESS;
}

static warm_image *warm_new(helper *h, const char *machine, int cpu, int memory_mib,
                            const char *video)
{
    apr_pool_t *pool;
    apr_pool_create(&pool, h->pool);
    warm_image *w = apr_pcalloc(pool, sizeof *w);
    w->pool = pool;
    w->h = h;
    w->machine = apr_pstrdup(pool, machine);
    w->video = apr_pstrdup(pool, video);
    w->cpu = cpu;
    w->memory_mib = memory_mib;
    w->key = qwd_warm_key(pool, machine, cpu, memory_mib, video);
    w->dir = apr_pstrcat(pool, h->warm->dir, "/", w->key, NULL);
    w->qmp_socket = qwd_session_file(pool, w->dir, QWD_SESSION_QMP_SOCKET);
    w->agent_fd = -1;
    apr_pool_cleanup_register(pool, w, free_meta, apr_pool_cleanup_null);
    apr_hash_set(h->warm->images, w->key, APR_HASH_KEY_STRING, w);
    return w;
}

static void close_agent(warm_image *w)
{
    if (w->agent_fd >= 0) {
        close(w->agent_fd);
        w->agent_fd = -1;
    }
}

/* Ends whatever runs for w: the QMP conversation, the agent request, the template (killed;
 * its exit is reaped unheard). */
static void stop_template(warm_image *w)
{
    helper_qmp_cancel(w->qmp);
    w->qmp = NULL;
    close_agent(w);
    if (w->template) {
        helper_qemu_kill(w->template, SIGKILL);
        helper_qemu_free(w->template);
        w->template = NULL;
    }
}

static void remove_dir(warm_image *w)
{
    int error = helper_fs_remove_tree(w->dir);
    if (error && error != ENOENT) {
        helper_log_error(QWDLOGNO(05052) "warm %s: cannot remove %s: %s", w->key, w->dir,
                         strerror(error));
    }
}

static void warm_forget(warm_image *w)
{
    stop_template(w);
    apr_hash_set(w->h->warm->images, w->key, APR_HASH_KEY_STRING, NULL);
    apr_pool_destroy(w->pool); /* and meta */
}

/* The first line of `QEMU -version` (a ~20 ms run, at startup: the loop never waits for it). */
static const char *read_qemu_version(helper *h, const char *qemu)
{
    int pipe_fds[2];
    if (!qemu || access(qemu, X_OK) != 0 || pipe2(pipe_fds, O_CLOEXEC) != 0) {
        return "unknown";
    }
    const char *argv[] = {qemu, "-version", NULL};
    const char *problem;
    int rv = helper_run(h->pool, argv, pipe_fds[1], &problem);
    close(pipe_fds[1]);
    char text[QEMU_VERSION_MAX] = "";
    ssize_t n = rv == 0 ? read(pipe_fds[0], text, sizeof text - 1) : -1;
    close(pipe_fds[0]);
    if (n <= 0) {
        return "unknown";
    }
    text[n] = '\0';
    text[strcspn(text, "\n")] = '\0';
    return apr_pstrdup(h->pool, text);
}

/* The version of the QEMU binary (one per guest arch), as read at startup. */
static const char *qemu_version(helper *h, const char *qemu)
{
    const char *version =
        qemu ? apr_hash_get(h->warm->qemu_versions, qemu, APR_HASH_KEY_STRING) : NULL;
    return version ? version : "unknown";
}

/* Whether path still has the identity recorded under name in meta. */
static int same_identity(json_t *meta, const char *name, const char *path)
{
    json_t *identity = qwd_warm_file_identity(path);
    int same = identity && json_equal(identity, json_object_get(meta, name));
    json_decref(identity);
    return same;
}

/* The argv hash of a clone of profile (what a session's plan computes). */
static const char *clone_hash(helper *h, apr_pool_t *pool, const qwd_vm_profile *profile)
{
    qwd_vm_spec spec = qwd_vm_spec_make(&h->host, profile, "ID", "/DIR", "/DIR/disk");
    spec.ram_path = recipe_shared(h) ? "/WARM/ram" : NULL;
    return qwd_argv_profile_hash(pool, &spec);
}

/* Reads the sidecar NAME.warm of machines_dir (lib/qwd_warm.c). Returns 0 when there is one;
 * its problems are logged, the good lines still count. */
static int read_sidecar(helper *h, apr_pool_t *pool, const char *machine, qwd_warm_sidecar *out)
{
    *out = (qwd_warm_sidecar){.ready_delay_s = -1,
                              .cpu = h->config->default_cpu,
                              .memory_mib = h->config->default_memory_mib};
    const char *problem;
    int rv = helper_machine_read_sidecar(pool, h->config->machines_dir, machine, out, &problem);
    if (!out->video) {
        out->video = qwd_argv_default_video(out->arch);
    }
    if (problem) {
        helper_log_warn(QWDLOGNO(05050) "%s/%s%s: %s", h->config->machines_dir, machine,
                        QWD_WARM_SIDECAR_SUFFIX, problem);
    }
    return rv;
}

static void warm_fail(warm_image *w, const char *problem)
{
    w->state = WARM_FAILED;
    w->problem = apr_pstrdup(w->pool, problem);
    helper_log_error(QWDLOGNO(05051) "warm %s: build failed: %s", w->key, problem);
    stop_template(w);
    remove_dir(w);
}

static void on_template(void *data, const helper_qemu_report *report);

/* Starts building the image of profile: its sidecar's readiness, then the template's overlay
 * (the template runs once qemu-img is done). A ready or failed image of the profile is dropped
 * first; one under way is returned as it is. NULL with *problem (in pool). */
static warm_image *build(helper *h, apr_pool_t *pool, const qwd_vm_profile *profile,
                         const char **problem)
{
    warm_image *w = find(h, pool, profile);
    if (w && w->state != WARM_FAILED && w->state != WARM_READY) {
        return w; /* under way */
    }
    if ((*problem = qwd_argv_profile_unsaveable(profile))) {
        return NULL;
    }
    if (w) {
        helper_warm_drop(h, w->machine, w->cpu, w->memory_mib, w->video);
    }
    w = warm_new(h, profile->machine, profile->cpu, profile->memory_mib, profile->video);
    /* The template's argv is spawned after qemu-img: everything it points to lives in w. Its
     * host folders' devices point to an empty directory: it never mounts them (a mounted 9p
     * device cannot be saved), and it is nobody's session. */
    qwd_vm_profile own = qwd_vm_profile_copy(w->pool, profile);
    for (int i = 0; i < own.share_count; i++) {
        ((qwd_vm_share *)own.shares)[i].path = h->empty_dir;
    }
    profile = &own;
    w->shared = recipe_shared(h);
    qwd_warm_sidecar sidecar;
    read_sidecar(h, w->pool, profile->machine, &sidecar);
    w->ready_serial = sidecar.ready_serial;
    w->ready_delay_s = sidecar.ready_delay_s;
    w->ready_screen_still_s = sidecar.ready_screen_still_s;
    w->ready_agent = sidecar.ready_agent;
    if (!w->ready_serial && w->ready_delay_s < 0 && !w->ready_screen_still_s && !w->ready_agent) {
        w->ready_delay_s = WARM_DEFAULT_DELAY_S;
    }
    w->started = helper_clock_now();
    w->deadline = w->started + apr_time_from_sec(WARM_BUILD_TIMEOUT_S);
    w->state = WARM_PREPARING;

    const char *base = warm_file(w->pool, w, WARM_BASE);
    qwd_vm_spec spec = qwd_vm_spec_make(&h->host, profile,
                                        apr_pstrcat(w->pool, "warm-", w->key, NULL), w->dir, base);
    /* shared: the template's RAM is the file clones map later (written until the save). */
    spec.ram_path = w->shared ? warm_file(w->pool, w, WARM_RAM) : NULL;
    spec.ram_shared = 1;
    const char **argv;
    if ((*problem = qwd_argv_build(w->pool, &spec, &argv)) == NULL) {
        /* Its own session, like a session's VM: not killed with the helper's terminal. */
        helper_qemu_launch launch = {
            .dir = w->dir,
            .log_path = warm_file(w->pool, w, QWD_SESSION_QEMU_LOG),
            .disk_argv = qwd_disk_argv(w->pool, h->config->qemu_img, profile, NULL, base,
                                       h->config->iso_scratch_size),
            .disk_path = base,
            .argv = argv,
            .flags = SPAWN_NEW_SESSION,
        };
        w->template = helper_qemu_start(h->events, w->pool, &launch, on_template, w, problem);
    }
    if (!w->template) {
        *problem = apr_pstrdup(pool, *problem);
        warm_fail(w, *problem);
        return NULL;
    }
    /* What the image depends on, recorded now, checked before every restore. */
    w->meta = json_pack(
        "{s:s, s:i, s:i, s:s, s:s, s:s, s:s, s:s, s:o*}", "machine", w->machine, "cpu", w->cpu,
        "memory_mib", w->memory_mib, "video", w->video, "qemu_binary", spec.qemu_binary,
        "qemu_version", qemu_version(h, spec.qemu_binary), "machine_type",
        qwd_argv_machine_type(spec.arch), "argv_hash", qwd_argv_profile_hash(w->pool, &spec),
        "master", qwd_warm_file_identity(profile->image_path));
    json_object_set_new(w->meta, "master_path", json_string(profile->image_path));
    json_object_set_new(w->meta, "recipe", json_string(w->shared ? "shared" : "stream"));
    return w;
}

/* Drops the image of profile and builds it anew; a build that cannot start is logged. */
static void rebuild(helper *h, apr_pool_t *pool, const qwd_vm_profile *profile)
{
    const char *problem;
    helper_warm_drop(h, profile->machine, profile->cpu, profile->memory_mib, profile->video);
    if (!build(h, pool, profile, &problem)) {
        helper_log_warn(QWDLOGNO(05059) "warm rebuild of %s failed: %s", profile->machine, problem);
    }
}

void helper_warm_rebuild(helper *h, const qwd_vm_profile *profile)
{
    apr_pool_t *scratch;
    apr_pool_create(&scratch, h->pool);
    rebuild(h, scratch, profile);
    apr_pool_destroy(scratch);
}

static void on_screendump(void *data, helper_qmp_result result, json_t *answer)
{
    warm_image *w = data;
    w->qmp = NULL;
    if (result != QMP_OK) {
        return; /* no screen this time: the next screendump will tell */
    }
    apr_pool_t *pool;
    apr_pool_create(&pool, w->pool);
    apr_size_t length = 0;
    char *image =
        helper_fs_read_length(pool, warm_file(pool, w, WARM_SCREEN), WARM_SCREEN_MAX, &length);
    qwd_screen screen;
    if (image && !qwd_screen_from_ppm(pool, (unsigned char *)image, length, &screen)
        && (!w->screen_pool
            || qwd_screen_tiles_changed(&w->screen, &screen) > QWD_SCREEN_SAME_TILES)) {
        /* The new reference: keep its pool, drop the old one. */
        if (w->screen_pool) {
            apr_pool_destroy(w->screen_pool);
        }
        w->screen_pool = pool;
        w->screen = screen;
        w->screen_changed = helper_clock_now();
        return;
    }
    apr_pool_destroy(pool);
}

/* The template's screen, once a second: when it differs from the one of the last change by
 * more than a blinking cursor or a clock (lib/qwd_screen.c), it changed now. */
static int screen_still(warm_image *w, apr_time_t now)
{
    if (now >= w->next_screendump && !w->qmp) {
        w->next_screendump = now + apr_time_from_sec(WARM_SCREENDUMP_INTERVAL_S);
        json_t *command = json_pack("{s:s, s:{s:s}}", "execute", "screendump", "arguments",
                                    "filename", warm_file(w->pool, w, WARM_SCREEN));
        char *line = command ? json_dumps(command, JSON_COMPACT) : NULL;
        json_decref(command);
        if (line) {
            helper_qmp_command screendump = {line, -1};
            w->qmp = helper_qmp_start(w->h->events, w->qmp_socket, &screendump, 1,
                                      WARM_QMP_TIMEOUT_MS, on_screendump, w);
        }
        free(line);
    }
    return w->screen_pool && now - w->screen_changed >= apr_time_from_sec(w->ready_screen_still_s);
}

/* Whether the guest agent has answered a guest-ping: one in flight at a time, sent again
 * every WARM_AGENT_RETRY_S (the agent starts late in the boot; until then QEMU holds it). */
static int agent_answers(warm_image *w, apr_time_t now)
{
    if (w->agent_answered) {
        return 1;
    }
    if (w->agent_fd >= 0) {
        int answer = helper_agent_answer(w->agent_fd);
        if (answer == 1) {
            w->agent_answered = 1;
        }
        if (answer != 0 || now - w->agent_sent > apr_time_from_sec(WARM_AGENT_RETRY_S)) {
            close_agent(w);
        }
        return w->agent_answered;
    }
    w->agent_fd = helper_agent_send(warm_file(w->pool, w, QWD_SESSION_AGENT_SOCKET), AGENT_PING);
    w->agent_sent = now;
    return 0;
}

/* Whether the template is ready to be saved: every condition its sidecar sets holds. */
static int template_ready(warm_image *w, apr_time_t now)
{
    if (w->ready_delay_s >= 0 && now - w->started < apr_time_from_sec(w->ready_delay_s)) {
        return 0;
    }
    if (w->ready_agent && !agent_answers(w, now)) {
        return 0;
    }
    if (w->ready_screen_still_s && !screen_still(w, now)) {
        return 0;
    }
    if (w->ready_serial) {
        apr_pool_t *scratch;
        apr_pool_create(&scratch, w->pool);
        char *log =
            helper_fs_read(scratch, warm_file(scratch, w, QWD_SESSION_SERIAL_LOG), WARM_SERIAL_MAX);
        int found = log && strstr(log, w->ready_serial);
        apr_pool_destroy(scratch);
        if (!found) {
            return 0;
        }
    }
    return 1;
}

static void on_save_started(void *data, helper_qmp_result result, json_t *answer)
{
    warm_image *w = data;
    w->qmp = NULL;
    if (result != QMP_OK) {
        warm_fail(w, "QMP migrate to the state file failed");
        return;
    }
    w->state = WARM_SAVING;
}

/* The VM keeps running while it is saved: when the migration completes QEMU pauses it, so
 * clones resume running by themselves (no QMP cont needed). shared: x-ignore-shared leaves
 * the RAM out of the stream; it stays in ram.bin, which nothing writes once the template has
 * quit. */
static void start_save(warm_image *w)
{
    close_agent(w);
    if (w->screen_pool) {
        apr_pool_destroy(w->screen_pool);
        w->screen_pool = NULL;
    }
    const char *state_path = warm_file(w->pool, w, WARM_STATE);
    int fd = open(state_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        warm_fail(w, apr_psprintf(w->pool, "cannot create %s: %s", state_path, strerror(errno)));
        return;
    }
    helper_qmp_command save[] = {
        {QMP_IGNORE_SHARED, -1}, {QMP_GETFD_STATE, fd}, {QMP_MIGRATE_TO_STATE, -1}};
    int skip = w->shared ? 0 : 1;
    w->qmp = helper_qmp_start(w->h->events, w->qmp_socket, save + skip, 3 - skip,
                              WARM_QMP_TIMEOUT_MS, on_save_started, w);
    close(fd); /* the conversation holds its own copy until it is passed */
    if (!w->qmp) {
        warm_fail(w, "QMP migrate to the state file failed");
        return;
    }
    w->save_started = helper_clock_now();
    helper_log_info(QWDLOGNO(05054) "warm %s: ready after %.1f s, saving", w->key,
                    (double)(w->save_started - w->started) / APR_USEC_PER_SEC);
}

static void on_quit_sent(void *data, helper_qmp_result result, json_t *answer)
{
    warm_image *w = data;
    w->qmp = NULL;
    if (result == QMP_FAILED && w->template) {
        helper_qemu_kill(w->template, SIGTERM);
    }
}

static void on_migration(void *data, helper_qmp_result result, json_t *answer)
{
    warm_image *w = data;
    w->qmp = NULL;
    /* setup and active mean under way; failed, cancelled or no answer end it. */
    const char *status = json_string_value(json_object_get(answer, "status"));
    if (result != QMP_OK
        || (status && (!strcmp(status, "failed") || !strcmp(status, "cancelled")))) {
        warm_fail(w, "saving the state failed (query-migrate)");
        return;
    }
    if (!status || strcmp(status, "completed")) {
        return;
    }
    w->state = WARM_QUITTING;
    helper_log_info(QWDLOGNO(05057) "warm %s: saved in %.2f s, stopping the template", w->key,
                    (double)(helper_clock_now() - w->save_started) / APR_USEC_PER_SEC);
    helper_qmp_command quit = {QMP_QUIT, -1};
    w->qmp = helper_qmp_start(w->h->events, w->qmp_socket, &quit, 1, WARM_QMP_TIMEOUT_MS,
                              on_quit_sent, w);
    if (!w->qmp) {
        helper_qemu_kill(w->template, SIGTERM);
    }
}

/* Bytes the image's files take on disk (allocated blocks: the frozen base is sparse). */
static json_int_t disk_usage(apr_pool_t *pool, const warm_image *w)
{
    const char *files[] = {WARM_BASE, WARM_STATE, WARM_META, WARM_RAM};
    json_int_t total = 0;
    struct stat st;
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        if (stat(warm_file(pool, w, files[i]), &st) == 0) {
            total += (json_int_t)st.st_blocks * STAT_BLOCK_BYTES;
        }
    }
    return total;
}

/* warm_budget_mib: while the ready images take more disk than that, the least recently used
 * one other than keep goes. keep alone over the budget fails (kept as failed, so warm_auto
 * does not rebuild it at every cold start). */
static void enforce_budget(helper *h, warm_image *keep)
{
    json_int_t budget = (json_int_t)h->config->warm_budget_mib * MIB;
    if (budget <= 0) {
        return;
    }
    apr_pool_t *scratch;
    apr_pool_create(&scratch, h->pool);
    for (;;) {
        json_int_t total = 0;
        warm_image *oldest = NULL;
        for (apr_hash_index_t *i = apr_hash_first(scratch, h->warm->images); i;
             i = apr_hash_next(i)) {
            warm_image *w = apr_hash_this_val(i);
            if (w->state != WARM_READY) {
                continue;
            }
            total += disk_usage(scratch, w);
            if (w != keep && (!oldest || w->last_used < oldest->last_used)) {
                oldest = w;
            }
        }
        if (total <= budget) {
            break;
        }
        if (oldest) {
            helper_log_info(
                QWDLOGNO(05055) "warm %s: dropped, least recently used, to keep warm images under "
                                "warm_budget_mib (%d MiB)",
                oldest->key, h->config->warm_budget_mib);
            helper_warm_drop(h, oldest->machine, oldest->cpu, oldest->memory_mib, oldest->video);
            continue;
        }
        if (keep) {
            warm_fail(keep, apr_psprintf(scratch,
                                         "%" APR_INT64_T_FMT " MiB on disk, more "
                                         "than warm_budget_mib (%d MiB)",
                                         (apr_int64_t)(total / MIB), h->config->warm_budget_mib));
        }
        break;
    }
    apr_pool_destroy(scratch);
}

/* The template is gone after a completed save: drop its run-time files, write meta.json. */
static void finish(warm_image *w)
{
    const char *leftovers[] = {QWD_SESSION_QMP_SOCKET,    QWD_SESSION_VNC_SOCKET,
                               QWD_SESSION_SERIAL_SOCKET, QWD_SESSION_SERIAL_LOG,
                               QWD_SESSION_AGENT_SOCKET,  WARM_SCREEN};
    for (size_t i = 0; i < sizeof leftovers / sizeof leftovers[0]; i++) {
        unlink(warm_file(w->pool, w, leftovers[i]));
    }
    json_t *state = qwd_warm_file_identity(warm_file(w->pool, w, WARM_STATE));
    if (!state) {
        warm_fail(w, "the state file vanished");
        return;
    }
    json_object_set_new(w->meta, "state", state);
    if (w->shared) {
        json_t *ram = qwd_warm_file_identity(warm_file(w->pool, w, WARM_RAM));
        if (!ram) {
            warm_fail(w, "the RAM file vanished");
            return;
        }
        json_object_set_new(w->meta, "ram", ram);
    }
    json_object_set_new(w->meta, "created", json_integer(apr_time_sec(apr_time_now())));
    json_object_set_new(w->meta, "build_ms",
                        json_integer(apr_time_as_msec(helper_clock_now() - w->started)));
    char *text = json_dumps(w->meta, JSON_INDENT(1));
    int error =
        text ? helper_fs_write_atomic(w->pool, warm_file(w->pool, w, WARM_META), NULL, text, 0600)
             : ENOMEM;
    free(text);
    if (error) {
        warm_fail(w, apr_psprintf(w->pool, "cannot write %s: %s", WARM_META, strerror(error)));
        return;
    }
    unlink(warm_file(w->pool, w, QWD_SESSION_QEMU_LOG));
    w->state = WARM_READY;
    w->last_used = apr_time_now();
    helper_log_info(QWDLOGNO(05056) "warm %s: ready (%" JSON_INTEGER_FORMAT " bytes of state)",
                    w->key, json_integer_value(json_object_get(state, "size")));
    enforce_budget(w->h, w);
}

static void on_template(void *data, const helper_qemu_report *report)
{
    warm_image *w = data;
    if (report->event == QEMU_STARTED) {
        w->state = WARM_BUILDING;
        helper_log_info(
            QWDLOGNO(05053) "warm %s: building (%s recipe), template QEMU pid %d (ready "
                            "on%s%s%s%s)",
            w->key, w->shared ? "shared" : "stream", (int)helper_qemu_pid(w->template),
            w->ready_serial ? " serial text" : "", w->ready_delay_s >= 0 ? " delay" : "",
            w->ready_screen_still_s ? " still screen" : "", w->ready_agent ? " guest agent" : "");
        return;
    }
    helper_qemu_free(w->template);
    w->template = NULL;
    if (report->event == QEMU_FAILED) {
        warm_fail(w, report->problem);
    }
    else if (w->state == WARM_QUITTING) {
        helper_qmp_cancel(w->qmp);
        w->qmp = NULL;
        finish(w);
    }
    else {
        warm_fail(w, apr_psprintf(w->pool, "the template QEMU ended (%s)",
                                  helper_describe_status(w->pool, report->status)));
    }
}

static int under_way(const warm_image *w)
{
    return w->state != WARM_READY && w->state != WARM_FAILED;
}

int helper_warm_tick(helper *h)
{
    apr_time_t now = helper_clock_now();
    int busy = 0;
    for (apr_hash_index_t *i = apr_hash_first(NULL, h->warm->images); i; i = apr_hash_next(i)) {
        warm_image *w = apr_hash_this_val(i);
        if (!under_way(w)) {
            continue;
        }
        busy = 1;
        if (now > w->deadline) {
            warm_fail(w, "the template was not ready and saved in time");
        }
        else if (w->state == WARM_BUILDING && template_ready(w, now) && !w->qmp) {
            start_save(w);
        }
        else if (w->state == WARM_SAVING && !w->qmp) {
            helper_qmp_command query = {QMP_QUERY_MIGRATE, -1};
            w->qmp = helper_qmp_start(h->events, w->qmp_socket, &query, 1, WARM_QMP_TIMEOUT_MS,
                                      on_migration, w);
            if (!w->qmp) {
                warm_fail(w, "saving the state failed (query-migrate)");
            }
        }
    }
    return busy;
}

/* Why a ready image cannot serve profile any more, or NULL. */
static const char *mismatch(warm_image *w, apr_pool_t *pool, const qwd_vm_profile *profile,
                            const char *hash)
{
    json_t *meta = w->meta;
    const char *text;
    if (!(text = json_string_value(json_object_get(meta, "recipe")))
        || strcmp(text, w->h->config->warm_recipe)) {
        return "the warm recipe changed";
    }
    if (!(text = json_string_value(json_object_get(meta, "qemu_version")))
        || strcmp(text,
                  qemu_version(w->h, json_string_value(json_object_get(meta, "qemu_binary"))))) {
        return "the QEMU version changed";
    }
    if (!(text = json_string_value(json_object_get(meta, "argv_hash"))) || strcmp(text, hash)) {
        return "the QEMU command line changed";
    }
    if (!(text = json_string_value(json_object_get(meta, "master_path")))
        || strcmp(text, profile->image_path)) {
        return "the master image is another file";
    }
    if (!same_identity(meta, "master", profile->image_path)) {
        return "the master image changed (size, mtime or inode)";
    }
    if (!same_identity(meta, "state", warm_file(pool, w, WARM_STATE))) {
        return "the state file is missing or was modified";
    }
    char magic[sizeof QEMU_STATE_MAGIC - 1];
    int fd = open(warm_file(pool, w, WARM_STATE), O_RDONLY | O_CLOEXEC);
    ssize_t n = fd >= 0 ? pread(fd, magic, sizeof magic, 0) : -1;
    if (fd >= 0) {
        close(fd);
    }
    if (n != (ssize_t)sizeof magic || memcmp(magic, QEMU_STATE_MAGIC, sizeof magic)) {
        return "the state file is not a QEMU state stream";
    }
    if (access(warm_file(pool, w, WARM_BASE), R_OK) != 0) {
        return "the frozen base disk is missing";
    }
    if (w->shared && !same_identity(meta, "ram", warm_file(pool, w, WARM_RAM))) {
        return "the RAM file is missing or was modified";
    }
    return NULL;
}

int helper_warm_usable(helper *h, apr_pool_t *pool, const qwd_vm_profile *profile,
                       helper_warm_files *files)
{
    warm_image *w = find(h, pool, profile);
    if (!w || w->state != WARM_READY) {
        return 0;
    }
    const char *hash = clone_hash(h, pool, profile);
    const char *problem = mismatch(w, pool, profile, hash ? hash : "");
    if (problem) {
        /* Never load it: drop it and build a fresh one in the background. */
        helper_log_warn(QWDLOGNO(05058) "warm %s: refused (%s), rebuilding", w->key, problem);
        rebuild(h, pool, profile);
        return 0;
    }
    w->last_used = apr_time_now();
    files->base = warm_file(pool, w, WARM_BASE);
    files->state = warm_file(pool, w, WARM_STATE);
    files->ram = w->shared ? warm_file(pool, w, WARM_RAM) : NULL;
    return 1;
}

/* STATE/warm (known before helper_warm_init: adoption comes first). */
static const char *images_dir(apr_pool_t *pool, helper *h)
{
    return apr_pstrcat(pool, h->config->state_dir, "/warm", NULL);
}

const char *helper_warm_state_path(helper *h, apr_pool_t *pool, const qwd_vm_profile *profile)
{
    return apr_pstrcat(pool, images_dir(pool, h), "/", profile_key(pool, profile), "/", WARM_STATE,
                       NULL);
}

int helper_warm_drop(helper *h, const char *machine, int cpu, int memory_mib, const char *video)
{
    int dropped = 0;
    for (apr_hash_index_t *i = apr_hash_first(NULL, h->warm->images); i; i = apr_hash_next(i)) {
        warm_image *w = apr_hash_this_val(i);
        if (machine
            && (strcmp(w->machine, machine)
                || (cpu
                    && (w->cpu != cpu || w->memory_mib != memory_mib
                        || strcmp(w->video, video))))) {
            continue;
        }
        stop_template(w);
        remove_dir(w);
        helper_log_info(QWDLOGNO(05061) "warm %s: dropped", w->key);
        warm_forget(w);
        dropped++;
    }
    return dropped;
}

static const char *state_name(warm_state state)
{
    switch (state) {
    case WARM_PREPARING:
    case WARM_BUILDING: return "building";
    case WARM_SAVING:
    case WARM_QUITTING: return "saving";
    case WARM_READY: return "ready";
    case WARM_FAILED: return "failed";
    }
    return "failed";
}

/* One image as warm_list shows it. */
static json_t *image_json(warm_image *w)
{
    json_t *item = json_pack("{s:s, s:s, s:i, s:i, s:s, s:s}", "key", w->key, "machine", w->machine,
                             "cpu", w->cpu, "memory_mib", w->memory_mib, "video", w->video, "state",
                             state_name(w->state));
    if (w->problem) {
        json_object_set_new(item, "problem", json_string(w->problem));
    }
    json_object_set_new(item, "recipe", json_string(w->shared ? "shared" : "stream"));
    if (w->state == WARM_READY && w->meta) {
        json_t *state = json_object_get(w->meta, "state");
        json_object_set(item, "state_bytes", json_object_get(state, "size"));
        json_object_set_new(item, "size_bytes", json_integer(disk_usage(w->pool, w)));
        json_object_set(item, "created", json_object_get(w->meta, "created"));
        json_object_set_new(item, "last_used", json_integer(apr_time_sec(w->last_used)));
        json_object_set(item, "build_ms", json_object_get(w->meta, "build_ms"));
        json_object_set(item, "qemu_version", json_object_get(w->meta, "qemu_version"));
        json_object_set(item, "argv_hash", json_object_get(w->meta, "argv_hash"));
    }
    return item;
}

json_t *helper_warm_list_json(helper *h)
{
    json_t *list = json_array();
    for (apr_hash_index_t *i = apr_hash_first(NULL, h->warm->images); i; i = apr_hash_next(i)) {
        json_array_append_new(list, image_json(apr_hash_this_val(i)));
    }
    return json_pack("{s:o}", "warm", list);
}

json_t *helper_warm_request(helper *h, apr_pool_t *pool, const qwd_vm_profile *profile,
                            int rebuild_it, const char **problem)
{
    helper_warm_files files;
    warm_image *w = NULL;
    if (!rebuild_it && helper_warm_usable(h, pool, profile, &files)) {
        w = find(h, pool, profile);
    }
    if (!w) {
        w = build(h, pool, profile, problem);
    }
    return w ? image_json(w) : NULL;
}

void helper_warm_auto(helper *h, const qwd_vm_profile *profile, int vcpus, int memory_mib)
{
    if (!h->config->warm_auto) {
        return;
    }
    apr_pool_t *scratch;
    apr_pool_create(&scratch, h->pool);
    /* Any entry (ready, under way, or failed: not retried until dropped) means nothing to do;
     * one build at a time keeps the host's CPUs for the sessions. */
    int skip = find(h, scratch, profile) != NULL;
    const char *unsaveable = skip ? NULL : qwd_argv_profile_unsaveable(profile);
    if (unsaveable) {
        helper_log_info(QWDLOGNO(05500) "warm %s: not built automatically: %s", profile->machine,
                        unsaveable);
        skip = 1;
    }
    for (apr_hash_index_t *i = apr_hash_first(scratch, h->warm->images); i && !skip;
         i = apr_hash_next(i)) {
        skip = under_way(apr_hash_this_val(i));
    }
    /* A template is a VM like a session: built only when it fits under the helper-wide
     * limits beside the live sessions; else skipped (a later cold start tries again). */
    host_load load;
    const helper_config *config = h->config;
    if (!skip
        && (vcpus + profile->cpu > config->max_vcpus
            || memory_mib + profile->memory_mib > config->max_memory_mib
            || (config->max_load > 0
                && (helper_load_read(&load), load.load1 > config->max_load)))) {
        helper_log_info(QWDLOGNO(05062) "warm %s: not built automatically now, the host is full",
                        profile->machine);
        skip = 1;
    }
    long free_mib = skip ? -1 : helper_fs_free_mib(config->state_dir);
    if (free_mib >= 0 && free_mib < (long)config->min_free_mib + profile->memory_mib) {
        helper_log_warn(QWDLOGNO(05901) "warm %s: not built automatically, %s has %ld MiB free "
                                        "(min_free_mib %d + %d MiB of memory)",
                        profile->machine, config->state_dir, free_mib, config->min_free_mib,
                        profile->memory_mib);
        skip = 1;
    }
    const char *problem;
    warm_image *w = skip ? NULL : build(h, scratch, profile, &problem);
    if (w) {
        helper_log_info(
            QWDLOGNO(05063) "warm %s: building automatically after a cold start (warm_auto)",
            w->key);
    }
    else if (!skip) {
        helper_log_warn(QWDLOGNO(05064) "warm %s: automatic build failed: %s", profile->machine,
                        problem);
    }
    apr_pool_destroy(scratch);
}

int helper_warm_machine_is_warm(helper *h, const char *machine)
{
    for (apr_hash_index_t *i = apr_hash_first(NULL, h->warm->images); i; i = apr_hash_next(i)) {
        warm_image *w = apr_hash_this_val(i);
        if (w->state == WARM_READY && !strcmp(w->machine, machine)) {
            return 1;
        }
    }
    return 0;
}

/* One directory of STATE/warm at startup: a complete image is loaded, anything else goes. */
static void load_one(helper *h, apr_pool_t *scratch, const char *name)
{
    const char *dir = apr_pstrcat(scratch, h->warm->dir, "/", name, NULL);
    char *text = helper_fs_read(scratch, qwd_session_file(scratch, dir, WARM_META), WARM_META_MAX);
    json_t *meta = text ? json_loads(text, 0, NULL) : NULL;
    const char *machine = NULL, *video = NULL;
    int cpu = 0, memory_mib = 0;
    if (meta
        && json_unpack(meta, "{s:s, s:i, s:i, s:s}", "machine", &machine, "cpu", &cpu, "memory_mib",
                       &memory_mib, "video", &video)
               == 0
        && !strcmp(name, qwd_warm_key(scratch, machine, cpu, memory_mib, video))) {
        warm_image *w = warm_new(h, machine, cpu, memory_mib, video);
        const char *recipe = json_string_value(json_object_get(meta, "recipe"));
        w->shared = recipe && !strcmp(recipe, "shared");
        w->meta = meta;
        w->state = WARM_READY;
        /* Uses are not recorded on disk: after a restart, older images count as less used. */
        w->last_used = apr_time_from_sec(json_integer_value(json_object_get(meta, "created")));
        helper_log_info(QWDLOGNO(05065) "warm %s: loaded", w->key);
        return;
    }
    json_decref(meta);
    helper_log_info(QWDLOGNO(05066) "warm %s: incomplete, removed", name);
    helper_fs_remove_tree(dir);
}

/* Machines marked warm_at_start get their image now, unless a valid one is there. */
static void build_at_start(helper *h, apr_pool_t *scratch, apr_array_header_t *machines)
{
    for (int i = 0; i < machines->nelts; i++) {
        const helper_machine *machine = &APR_ARRAY_IDX(machines, i, helper_machine);
        qwd_warm_sidecar sidecar;
        if (machine->problem || read_sidecar(h, scratch, machine->name, &sidecar) != 0
            || !sidecar.at_start) {
            continue;
        }
        qwd_vm_profile profile =
            helper_machine_profile(machine, sidecar.cpu, sidecar.memory_mib, sidecar.video);
        helper_shares_profile(scratch, h->config->shares, h->empty_dir, &profile);
        helper_warm_files files;
        const char *problem;
        if (!helper_warm_usable(h, scratch, &profile, &files) && !find(h, scratch, &profile)
            && !build(h, scratch, &profile, &problem)) {
            helper_log_error(QWDLOGNO(05068) "warm %s: %s", machine->name, problem);
        }
    }
}

void helper_warm_init(helper *h)
{
    h->warm = apr_pcalloc(h->pool, sizeof *h->warm);
    h->warm->images = apr_hash_make(h->pool);
    h->warm->dir = images_dir(h->pool, h);
    h->warm->qemu_versions = apr_hash_make(h->pool);
    const char *binaries[] = {h->host.qemu_x86_64, h->host.qemu_aarch64};
    for (size_t i = 0; i < sizeof binaries / sizeof binaries[0]; i++) {
        if (binaries[i]) {
            apr_hash_set(h->warm->qemu_versions, binaries[i], APR_HASH_KEY_STRING,
                         read_qemu_version(h, binaries[i]));
        }
    }
    int error = helper_fs_mkdirs(h->pool, h->warm->dir, 0700);
    if (error) {
        helper_log_error(QWDLOGNO(05067) "cannot create %s: %s", h->warm->dir, strerror(error));
    }
    apr_pool_t *scratch;
    apr_pool_create(&scratch, h->pool);
    apr_dir_t *dir;
    apr_finfo_t entry;
    if (apr_dir_open(&dir, h->warm->dir, scratch) == APR_SUCCESS) {
        while (apr_dir_read(&entry, APR_FINFO_NAME | APR_FINFO_TYPE, dir) == APR_SUCCESS) {
            if (entry.filetype == APR_DIR && entry.name[0] != '.') {
                load_one(h, scratch, entry.name);
            }
        }
        apr_dir_close(dir);
    }
    enforce_budget(h, NULL);
    build_at_start(h, scratch, helper_machines_scan(scratch, h->config->machines_dir, &h->host));
    apr_pool_destroy(scratch);
}

void helper_warm_rescan(helper *h)
{
    apr_pool_t *scratch;
    apr_pool_create(&scratch, h->pool);
    apr_array_header_t *machines = helper_machines_scan(scratch, h->config->machines_dir, &h->host);
    /* Ready images of machines that are gone, refused or replaced go now, not at their next
     * use: their disk is freed at once. (The dropping iterates too: drop one, search again.) */
    for (;;) {
        warm_image *stale = NULL;
        const char *why = NULL;
        for (apr_hash_index_t *i = apr_hash_first(NULL, h->warm->images); i && !stale;
             i = apr_hash_next(i)) {
            warm_image *w = apr_hash_this_val(i);
            const helper_machine *machine = helper_machines_find(machines, w->machine);
            if (w->state != WARM_READY) {
                continue;
            }
            if (!machine || machine->problem) {
                why = machine ? machine->problem : "the machine is gone";
            }
            else {
                qwd_vm_profile profile =
                    helper_machine_profile(machine, w->cpu, w->memory_mib, w->video);
                helper_shares_profile(scratch, h->config->shares, h->empty_dir, &profile);
                const char *hash = clone_hash(h, scratch, &profile);
                why = mismatch(w, scratch, &profile, hash ? hash : "");
            }
            stale = why ? w : NULL;
        }
        if (!stale) {
            break;
        }
        helper_log_info(QWDLOGNO(05501) "warm %s: dropped by a rescan (%s)", stale->key, why);
        helper_warm_drop(h, stale->machine, stale->cpu, stale->memory_mib, stale->video);
    }
    build_at_start(h, scratch, machines);
    apr_pool_destroy(scratch);
}

void helper_warm_shutdown(helper *h)
{
    /* apr_hash_first(NULL, ...) shares one iterator per hash, and dropping iterates too: find
     * one template, drop it, search again. */
    for (;;) {
        warm_image *building = NULL;
        for (apr_hash_index_t *i = apr_hash_first(NULL, h->warm->images); i && !building;
             i = apr_hash_next(i)) {
            warm_image *w = apr_hash_this_val(i);
            if (under_way(w)) {
                building = w;
            }
        }
        if (!building) {
            return;
        }
        helper_warm_drop(h, building->machine, building->cpu, building->memory_mib,
                         building->video);
    }
}
