/* SPDX-License-Identifier: Apache-2.0 */
/* Warm images: build (template VM on its own overlay, readiness from the serial console or a
 * delay, QMP migrate to a file), validation against QEMU, argv and master, and dropping. */
#include "helper_warm.h"
#include "helper_agent.h"
#include "helper_config.h"
#include "helper_fs.h"
#include "helper_launch.h"
#include "helper_load.h"
#include "helper_log.h"
#include "helper_proc.h"
#include "helper_session.h"
#include "helper_qmp.h"
#include "qwd_argv.h"
#include "qwd_image.h"
#include "qwd_screen.h"
#include "qwd_warm.h"

#include <apr_file_info.h>
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
#define WARM_QMP_TIMEOUT_MS 1000
#define QEMU_STATE_MAGIC "QEVM"

int helper_warm_recipe_shared(const helper *h)
{
    return !strcmp(h->config->warm_recipe, "shared");
}

const char *helper_warm_file(apr_pool_t *pool, const helper_warm *w, const char *name)
{
    return qwd_session_file(pool, w->dir, name);
}

static helper_warm *warm_new(helper *h, const char *machine, int cpu, int memory_mib,
                             const char *video)
{
    apr_pool_t *pool;
    apr_pool_create(&pool, h->pool);
    helper_warm *w = apr_pcalloc(pool, sizeof *w);
    w->pool = pool;
    w->h = h;
    w->machine = apr_pstrdup(pool, machine);
    w->video = apr_pstrdup(pool, video);
    w->cpu = cpu;
    w->memory_mib = memory_mib;
    w->key = qwd_warm_key(pool, machine, cpu, memory_mib, video);
    w->dir = apr_pstrcat(pool, h->warm_dir, "/", w->key, NULL);
    w->qmp_socket = qwd_session_file(pool, w->dir, QWD_SESSION_QMP_SOCKET);
    w->agent_fd = -1;
    apr_hash_set(h->warm, w->key, APR_HASH_KEY_STRING, w);
    return w;
}

static void close_agent(helper_warm *w)
{
    if (w->agent_fd >= 0) {
        close(w->agent_fd);
        w->agent_fd = -1;
    }
}

static void warm_forget(helper_warm *w)
{
    close_agent(w);
    apr_hash_set(w->h->warm, w->key, APR_HASH_KEY_STRING, NULL);
    json_decref(w->meta);
    apr_pool_destroy(w->pool);
}

/* The first line of `qemu -version`, read once (a ~20 ms run). */
static const char *qemu_version(helper *h)
{
    if (h->qemu_version) {
        return h->qemu_version;
    }
    int pipe_fds[2];
    if (pipe2(pipe_fds, O_CLOEXEC) != 0) {
        return "unknown";
    }
    const char *argv[] = {helper_config_qemu(h->config, "x86_64"), "-version", NULL};
    const char *problem;
    int rv = helper_run(h->pool, argv, pipe_fds[1], &problem);
    close(pipe_fds[1]);
    char text[512] = "";
    ssize_t n = rv == 0 ? read(pipe_fds[0], text, sizeof text - 1) : -1;
    close(pipe_fds[0]);
    if (n <= 0) {
        return "unknown";
    }
    text[n] = '\0';
    text[strcspn(text, "\n")] = '\0';
    h->qemu_version = apr_pstrdup(h->pool, text);
    return h->qemu_version;
}

/* size, mtime (ns) and inode: the master's identity (cheap, and any rewrite changes it). */
static json_t *file_identity(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        return NULL;
    }
    return json_pack("{s:I, s:I, s:I}", "size", (json_int_t)st.st_size, "mtime_ns",
                     (json_int_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec, "inode",
                     (json_int_t)st.st_ino);
}

static qwd_vm_spec template_spec(helper_warm *w, const helper_machine *machine,
                                 const char *disk_path)
{
    qwd_vm_spec spec =
        helper_launch_spec(w->h, machine, apr_pstrcat(w->pool, "warm-", w->key, NULL), w->dir,
                           w->cpu, w->memory_mib, w->video, disk_path);
    /* shared: the template's RAM is the file clones map later (written until the save). */
    spec.ram_path = w->shared ? helper_warm_file(w->pool, w, WARM_RAM) : NULL;
    spec.ram_shared = 1;
    return spec;
}

/* Reads the sidecar NAME.warm of machines_dir (lib/qwd_warm.c). Returns 0 when there is one;
 * its problems are logged, the good lines still count. */
static int read_sidecar(helper *h, apr_pool_t *pool, const char *machine, qwd_warm_sidecar *out)
{
    *out = (qwd_warm_sidecar){.ready_delay_s = -1,
                              .cpu = h->config->default_cpu,
                              .memory_mib = h->config->default_memory_mib,
                              .video = "std"};
    const char *problem;
    int rv = helper_machine_read_sidecar(pool, h->config->machines_dir, machine, out, &problem);
    if (problem) {
        helper_log_warn(QWDLOGNO(05050) "%s/%s%s: %s", h->config->machines_dir, machine,
                        QWD_WARM_SIDECAR_SUFFIX, problem);
    }
    return rv;
}

static void warm_fail(helper_warm *w, const char *problem)
{
    w->state = WARM_FAILED;
    w->problem = apr_pstrdup(w->pool, problem);
    helper_log_error(QWDLOGNO(05051) "warm %s: build failed: %s", w->key, problem);
    close_agent(w);
    if (w->pid > 0) {
        kill(w->pid, SIGKILL); /* reaped by the loop; helper_warm_child_exited ignores it */
    }
    int error = helper_fs_remove_tree(w->dir);
    if (error) {
        helper_log_error(QWDLOGNO(05052) "warm %s: cannot remove %s: %s", w->key, w->dir,
                         strerror(error));
    }
}

helper_warm *helper_warm_build(helper *h, const helper_machine *machine, int cpu, int memory_mib,
                               const char *video, const char **problem)
{
    apr_pool_t *scratch;
    apr_pool_create(&scratch, h->pool);
    const char *key = qwd_warm_key(scratch, machine->name, cpu, memory_mib, video);
    helper_warm *w = apr_hash_get(h->warm, key, APR_HASH_KEY_STRING);
    if (w && w->state != WARM_FAILED && w->state != WARM_READY) {
        apr_pool_destroy(scratch);
        return w; /* under way */
    }
    if (w) {
        helper_warm_drop(h, machine->name, cpu, memory_mib, video);
    }
    w = warm_new(h, machine->name, cpu, memory_mib, video);
    w->shared = helper_warm_recipe_shared(h);
    qwd_warm_sidecar sidecar;
    read_sidecar(h, scratch, machine->name, &sidecar);
    w->ready_serial = sidecar.ready_serial ? apr_pstrdup(w->pool, sidecar.ready_serial) : NULL;
    w->ready_delay_s = sidecar.ready_delay_s;
    w->ready_screen_still_s = sidecar.ready_screen_still_s;
    w->ready_agent = sidecar.ready_agent;
    if (!w->ready_serial && w->ready_delay_s < 0 && !w->ready_screen_still_s && !w->ready_agent) {
        w->ready_delay_s = WARM_DEFAULT_DELAY_S;
    }
    w->started = apr_time_now();
    w->deadline = w->started + apr_time_from_sec(WARM_BUILD_TIMEOUT_S);
    w->state = WARM_BUILDING;
    apr_pool_destroy(scratch);

    const char *base = helper_warm_file(w->pool, w, WARM_BASE);
    const char *log_path = helper_warm_file(w->pool, w, QWD_SESSION_QEMU_LOG);
    int log_fd = -1;
    if (mkdir(w->dir, 0700) != 0
        || (log_fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600)) < 0) {
        *problem = apr_psprintf(w->pool, "cannot create %s: %s", w->dir, strerror(errno));
        warm_fail(w, *problem);
        return NULL;
    }
    qwd_vm_spec spec = template_spec(w, machine, base);
    const char **argv;
    if (helper_disk_create(h, w->pool, machine, NULL, base, log_fd, problem) != 0
        || (*problem = qwd_argv_build(w->pool, &spec, &argv)) != NULL) {
        close(log_fd);
        warm_fail(w, *problem);
        return NULL;
    }
    int error = helper_spawn(argv, log_fd, SPAWN_NEW_SESSION, &w->pid);
    close(log_fd);
    if (error) {
        *problem = apr_psprintf(w->pool, "cannot run %s: %s", argv[0], strerror(error));
        w->pid = 0;
        warm_fail(w, *problem);
        return NULL;
    }
    /* What the image depends on, recorded now, checked before every restore. */
    w->meta = json_pack(
        "{s:s, s:i, s:i, s:s, s:s, s:s, s:s, s:s, s:o*}", "machine", w->machine, "cpu", w->cpu,
        "memory_mib", w->memory_mib, "video", w->video, "qemu_binary", spec.qemu_binary,
        "qemu_version", qemu_version(h), "machine_type", QWD_MACHINE_TYPE, "argv_hash",
        qwd_argv_profile_hash(w->pool, &spec), "master", file_identity(machine->path));
    json_object_set_new(w->meta, "master_path", json_string(machine->path));
    json_object_set_new(w->meta, "recipe", json_string(w->shared ? "shared" : "stream"));
    helper_log_info(
        QWDLOGNO(05053) "warm %s: building (%s recipe), template QEMU pid %d (ready on%s%s%s%s)",
        w->key, w->shared ? "shared" : "stream", (int)w->pid, w->ready_serial ? " serial text" : "",
        w->ready_delay_s >= 0 ? " delay" : "", w->ready_screen_still_s ? " still screen" : "",
        w->ready_agent ? " guest agent" : "");
    return w;
}

/* The template's screen, once a second: when it differs from the one of the last change by
 * more than a blinking cursor or a clock (lib/qwd_screen.c), it changed now. */
static int screen_still(helper_warm *w, apr_time_t now)
{
    if (now >= w->next_screendump) {
        w->next_screendump = now + apr_time_from_sec(1);
        const char *file = helper_warm_file(w->pool, w, WARM_SCREEN);
        apr_pool_t *pool;
        apr_pool_create(&pool, w->pool);
        apr_size_t length = 0;
        char *image = helper_qmp_screendump(w->qmp_socket, file, WARM_QMP_TIMEOUT_MS) == 0
                          ? helper_fs_read_length(pool, file, 256 * 1024 * 1024, &length)
                          : NULL;
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
            w->screen_changed = now;
        }
        else {
            apr_pool_destroy(pool);
        }
    }
    return w->screen_pool && now - w->screen_changed >= apr_time_from_sec(w->ready_screen_still_s);
}

/* Whether the guest agent has answered a guest-ping: one in flight at a time, sent again
 * every 2 s (the agent starts late in the boot; until then QEMU holds the request). */
static int agent_answers(helper_warm *w, apr_time_t now)
{
    if (w->agent_answered) {
        return 1;
    }
    if (w->agent_fd >= 0) {
        int answer = helper_agent_answer(w->agent_fd);
        if (answer == 1) {
            w->agent_answered = 1;
        }
        if (answer != 0 || now - w->agent_sent > apr_time_from_sec(2)) {
            close_agent(w);
        }
        return w->agent_answered;
    }
    w->agent_fd =
        helper_agent_send(helper_warm_file(w->pool, w, QWD_SESSION_AGENT_SOCKET), AGENT_PING);
    w->agent_sent = now;
    return 0;
}

/* Whether the template is ready to be saved: every condition its sidecar sets holds. */
static int template_ready(helper_warm *w, apr_time_t now)
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
        char *log = helper_fs_read(scratch, helper_warm_file(scratch, w, QWD_SESSION_SERIAL_LOG),
                                   4 * 1024 * 1024);
        int found = log && strstr(log, w->ready_serial);
        apr_pool_destroy(scratch);
        if (!found) {
            return 0;
        }
    }
    return 1;
}

static void start_save(helper_warm *w)
{
    close_agent(w);
    if (w->screen_pool) {
        apr_pool_destroy(w->screen_pool);
        w->screen_pool = NULL;
    }
    const char *state_path = helper_warm_file(w->pool, w, WARM_STATE);
    int fd = open(state_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        warm_fail(w, apr_psprintf(w->pool, "cannot create %s: %s", state_path, strerror(errno)));
        return;
    }
    /* The VM keeps running while it is saved: when the migration completes QEMU pauses it,
     * so clones resume running by themselves (no QMP cont needed). */
    /* shared: x-ignore-shared leaves the RAM out of the stream; it stays in ram.bin, which
     * nothing writes once the template has quit. */
    int rv = helper_qmp_save(w->qmp_socket, fd, w->shared, WARM_QMP_TIMEOUT_MS);
    close(fd);
    if (rv != 0) {
        warm_fail(w, "QMP migrate to the state file failed");
        return;
    }
    w->state = WARM_SAVING;
    w->save_started = apr_time_now();
    helper_log_info(QWDLOGNO(05054) "warm %s: ready after %.1f s, saving", w->key,
                    (double)(w->save_started - w->started) / APR_USEC_PER_SEC);
}

/* Bytes the image's files take on disk (allocated blocks: the frozen base is sparse). */
static json_int_t disk_usage(apr_pool_t *pool, const helper_warm *w)
{
    const char *files[] = {WARM_BASE, WARM_STATE, WARM_META, WARM_RAM};
    json_int_t total = 0;
    struct stat st;
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        if (stat(helper_warm_file(pool, w, files[i]), &st) == 0) {
            total += (json_int_t)st.st_blocks * 512;
        }
    }
    return total;
}

/* warm_budget_mib: while the ready images take more disk than that, the least recently used
 * one other than keep goes. keep alone over the budget fails (kept as failed, so warm_auto
 * does not rebuild it at every cold start). */
static void enforce_budget(helper *h, helper_warm *keep)
{
    json_int_t budget = (json_int_t)h->config->warm_budget_mib * 1024 * 1024;
    if (budget <= 0) {
        return;
    }
    apr_pool_t *scratch;
    apr_pool_create(&scratch, h->pool);
    for (;;) {
        json_int_t total = 0;
        helper_warm *oldest = NULL;
        for (apr_hash_index_t *i = apr_hash_first(scratch, h->warm); i; i = apr_hash_next(i)) {
            helper_warm *w = apr_hash_this_val(i);
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
                                         (apr_int64_t)(total / (1024 * 1024)),
                                         h->config->warm_budget_mib));
        }
        break;
    }
    apr_pool_destroy(scratch);
}

/* The template is gone after a completed save: drop its run-time files, write meta.json. */
static void finish(helper_warm *w)
{
    const char *leftovers[] = {QWD_SESSION_QMP_SOCKET,    QWD_SESSION_VNC_SOCKET,
                               QWD_SESSION_SERIAL_SOCKET, QWD_SESSION_SERIAL_LOG,
                               QWD_SESSION_AGENT_SOCKET,  WARM_SCREEN};
    for (size_t i = 0; i < sizeof leftovers / sizeof leftovers[0]; i++) {
        unlink(helper_warm_file(w->pool, w, leftovers[i]));
    }
    json_t *state = file_identity(helper_warm_file(w->pool, w, WARM_STATE));
    if (!state) {
        warm_fail(w, "the state file vanished");
        return;
    }
    json_object_set_new(w->meta, "state", state);
    if (w->shared) {
        json_t *ram = file_identity(helper_warm_file(w->pool, w, WARM_RAM));
        if (!ram) {
            warm_fail(w, "the RAM file vanished");
            return;
        }
        json_object_set_new(w->meta, "ram", ram);
    }
    json_object_set_new(w->meta, "created", json_integer(apr_time_sec(apr_time_now())));
    json_object_set_new(w->meta, "build_ms",
                        json_integer(apr_time_as_msec(apr_time_now() - w->started)));
    char *text = json_dumps(w->meta, JSON_INDENT(1));
    int error = text ? helper_fs_write_atomic(w->pool, helper_warm_file(w->pool, w, WARM_META),
                                              NULL, text, 0600)
                     : ENOMEM;
    free(text);
    if (error) {
        warm_fail(w, apr_psprintf(w->pool, "cannot write %s: %s", WARM_META, strerror(error)));
        return;
    }
    unlink(helper_warm_file(w->pool, w, QWD_SESSION_QEMU_LOG));
    w->state = WARM_READY;
    w->last_used = apr_time_now();
    helper_log_info(QWDLOGNO(05056) "warm %s: ready (%" JSON_INTEGER_FORMAT " bytes of state)",
                    w->key, json_integer_value(json_object_get(state, "size")));
    enforce_budget(w->h, w);
}

int helper_warm_child_exited(helper *h, pid_t pid, int status)
{
    for (apr_hash_index_t *i = apr_hash_first(NULL, h->warm); i; i = apr_hash_next(i)) {
        helper_warm *w = apr_hash_this_val(i);
        if (w->pid != pid) {
            continue;
        }
        w->pid = 0;
        if (w->state == WARM_QUITTING) {
            finish(w);
        }
        else if (w->state == WARM_BUILDING || w->state == WARM_SAVING) {
            warm_fail(w, apr_psprintf(w->pool, "the template QEMU ended (%s)",
                                      helper_describe_status(w->pool, status)));
        }
        return 1;
    }
    return 0;
}

int helper_warm_busy(helper *h)
{
    for (apr_hash_index_t *i = apr_hash_first(NULL, h->warm); i; i = apr_hash_next(i)) {
        helper_warm *w = apr_hash_this_val(i);
        if (w->state == WARM_BUILDING || w->state == WARM_SAVING || w->state == WARM_QUITTING) {
            return 1;
        }
    }
    return 0;
}

void helper_warm_tick(helper *h)
{
    apr_time_t now = apr_time_now();
    for (apr_hash_index_t *i = apr_hash_first(NULL, h->warm); i; i = apr_hash_next(i)) {
        helper_warm *w = apr_hash_this_val(i);
        if (w->state != WARM_BUILDING && w->state != WARM_SAVING && w->state != WARM_QUITTING) {
            continue;
        }
        if (now > w->deadline) {
            warm_fail(w, "the template was not ready and saved in time");
            continue;
        }
        if (w->state == WARM_BUILDING && template_ready(w, now)) {
            start_save(w);
        }
        else if (w->state == WARM_SAVING) {
            int done = helper_qmp_migration_done(w->qmp_socket, WARM_QMP_TIMEOUT_MS);
            if (done < 0) {
                warm_fail(w, "saving the state failed (query-migrate)");
            }
            else if (done > 0) {
                w->state = WARM_QUITTING;
                helper_log_info(QWDLOGNO(05057) "warm %s: saved in %.2f s, stopping the template",
                                w->key,
                                (double)(apr_time_now() - w->save_started) / APR_USEC_PER_SEC);
                if (helper_qmp_quit(w->qmp_socket, WARM_QMP_TIMEOUT_MS) != 0) {
                    kill(w->pid, SIGTERM);
                }
            }
        }
    }
}

/* The argv hash of a session of this profile (what a clone's launch computes). */
static const char *profile_hash(helper *h, apr_pool_t *pool, const helper_machine *machine, int cpu,
                                int memory_mib, const char *video)
{
    qwd_vm_spec spec =
        helper_launch_spec(h, machine, "ID", "/DIR", cpu, memory_mib, video, "/DIR/disk");
    spec.ram_path = helper_warm_recipe_shared(h) ? "/WARM/ram" : NULL;
    return qwd_argv_profile_hash(pool, &spec);
}

/* Why a ready image cannot serve this profile any more, or NULL. */
static const char *mismatch(helper_warm *w, apr_pool_t *pool, const helper_machine *machine,
                            const char *clone_hash)
{
    json_t *meta = w->meta;
    const char *text;
    if (!(text = json_string_value(json_object_get(meta, "recipe")))
        || strcmp(text, w->h->config->warm_recipe)) {
        return "the warm recipe changed";
    }
    if (!(text = json_string_value(json_object_get(meta, "qemu_version")))
        || strcmp(text, qemu_version(w->h))) {
        return "the QEMU version changed";
    }
    if (!(text = json_string_value(json_object_get(meta, "argv_hash")))
        || strcmp(text, clone_hash)) {
        return "the QEMU command line changed";
    }
    if (!(text = json_string_value(json_object_get(meta, "master_path")))
        || strcmp(text, machine->path)) {
        return "the master image is another file";
    }
    json_t *master = file_identity(machine->path);
    int same_master = master && json_equal(master, json_object_get(meta, "master"));
    json_decref(master);
    if (!same_master) {
        return "the master image changed (size, mtime or inode)";
    }
    json_t *state = file_identity(helper_warm_file(pool, w, WARM_STATE));
    int same_state = state && json_equal(state, json_object_get(meta, "state"));
    json_decref(state);
    if (!same_state) {
        return "the state file is missing or was modified";
    }
    char magic[4];
    int fd = open(helper_warm_file(pool, w, WARM_STATE), O_RDONLY | O_CLOEXEC);
    ssize_t n = fd >= 0 ? pread(fd, magic, sizeof magic, 0) : -1;
    if (fd >= 0) {
        close(fd);
    }
    if (n != 4 || memcmp(magic, QEMU_STATE_MAGIC, 4)) {
        return "the state file is not a QEMU state stream";
    }
    if (access(helper_warm_file(pool, w, WARM_BASE), R_OK) != 0) {
        return "the frozen base disk is missing";
    }
    if (w->shared) {
        json_t *ram = file_identity(helper_warm_file(pool, w, WARM_RAM));
        int same_ram = ram && json_equal(ram, json_object_get(meta, "ram"));
        json_decref(ram);
        if (!same_ram) {
            return "the RAM file is missing or was modified";
        }
    }
    return NULL;
}

helper_warm *helper_warm_usable(helper *h, const helper_machine *machine, int cpu, int memory_mib,
                                const char *video)
{
    apr_pool_t *scratch;
    apr_pool_create(&scratch, h->pool);
    helper_warm *w = apr_hash_get(
        h->warm, qwd_warm_key(scratch, machine->name, cpu, memory_mib, video), APR_HASH_KEY_STRING);
    const char *clone_hash = profile_hash(h, scratch, machine, cpu, memory_mib, video);
    const char *problem = w && w->state == WARM_READY
                              ? mismatch(w, scratch, machine, clone_hash ? clone_hash : "")
                              : NULL;
    if (w && w->state == WARM_READY && !problem) {
        apr_pool_destroy(scratch);
        w->last_used = apr_time_now();
        return w;
    }
    if (problem) {
        /* Never load it: drop it and build a fresh one in the background. */
        helper_log_warn(QWDLOGNO(05058) "warm %s: refused (%s), rebuilding", w->key, problem);
        const char *build_problem;
        if (!helper_warm_build(h, machine, cpu, memory_mib, video, &build_problem)) {
            helper_log_warn(QWDLOGNO(05059) "warm rebuild of %s failed: %s", machine->name,
                            build_problem);
        }
    }
    apr_pool_destroy(scratch);
    return NULL;
}

int helper_warm_drop(helper *h, const char *machine, int cpu, int memory_mib, const char *video)
{
    int dropped = 0;
    for (apr_hash_index_t *i = apr_hash_first(NULL, h->warm); i; i = apr_hash_next(i)) {
        helper_warm *w = apr_hash_this_val(i);
        if (machine
            && (strcmp(w->machine, machine)
                || (cpu
                    && (w->cpu != cpu || w->memory_mib != memory_mib
                        || strcmp(w->video, video))))) {
            continue;
        }
        if (w->pid > 0) {
            kill(w->pid, SIGKILL); /* reaped by the loop as an unknown child */
        }
        int error = helper_fs_remove_tree(w->dir);
        if (error && error != ENOENT) {
            helper_log_error(QWDLOGNO(05060) "warm %s: cannot remove %s: %s", w->key, w->dir,
                             strerror(error));
        }
        helper_log_info(QWDLOGNO(05061) "warm %s: dropped", w->key);
        warm_forget(w);
        dropped++;
    }
    return dropped;
}

static const char *state_name(warm_state state)
{
    switch (state) {
    case WARM_BUILDING: return "building";
    case WARM_SAVING:
    case WARM_QUITTING: return "saving";
    case WARM_READY: return "ready";
    case WARM_FAILED: return "failed";
    }
    return "failed";
}

json_t *helper_warm_list_json(helper *h)
{
    json_t *list = json_array();
    for (apr_hash_index_t *i = apr_hash_first(NULL, h->warm); i; i = apr_hash_next(i)) {
        helper_warm *w = apr_hash_this_val(i);
        json_t *item = json_pack("{s:s, s:s, s:i, s:i, s:s, s:s}", "key", w->key, "machine",
                                 w->machine, "cpu", w->cpu, "memory_mib", w->memory_mib, "video",
                                 w->video, "state", state_name(w->state));
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
        json_array_append_new(list, item);
    }
    return json_pack("{s:o}", "warm", list);
}

void helper_warm_auto(helper *h, const helper_machine *machine, int cpu, int memory_mib,
                      const char *video)
{
    if (!h->config->warm_auto) {
        return;
    }
    apr_pool_t *scratch;
    apr_pool_create(&scratch, h->pool);
    const char *key = qwd_warm_key(scratch, machine->name, cpu, memory_mib, video);
    /* Any entry (ready, under way, or failed: not retried until dropped) means nothing to do;
     * one build at a time keeps the host's CPUs for the sessions. */
    int known = apr_hash_get(h->warm, key, APR_HASH_KEY_STRING) != NULL;
    apr_pool_destroy(scratch);
    if (known || helper_warm_busy(h)) {
        return;
    }
    /* A template is a VM like a session: built only when it fits under the helper-wide
     * limits beside the live sessions; else skipped (a later cold start tries again). */
    int sessions, vcpus, memory;
    helper_sessions_usage(h, &sessions, &vcpus, &memory);
    host_load load;
    const helper_config *config = h->config;
    if (vcpus + cpu > config->max_vcpus || memory + memory_mib > config->max_memory_mib
        || (config->max_load > 0 && (helper_load_read(&load), load.load1 > config->max_load))) {
        helper_log_info(QWDLOGNO(05062) "warm %s: not built automatically now, the host is full",
                        machine->name);
        return;
    }
    const char *problem;
    helper_warm *w = helper_warm_build(h, machine, cpu, memory_mib, video, &problem);
    if (w) {
        helper_log_info(
            QWDLOGNO(05063) "warm %s: building automatically after a cold start (warm_auto)",
            w->key);
    }
    else {
        helper_log_warn(QWDLOGNO(05064) "warm %s: automatic build failed: %s", machine->name,
                        problem);
    }
}

int helper_warm_machine_is_warm(helper *h, const char *machine)
{
    for (apr_hash_index_t *i = apr_hash_first(NULL, h->warm); i; i = apr_hash_next(i)) {
        helper_warm *w = apr_hash_this_val(i);
        if (w->state == WARM_READY && !strcmp(w->machine, machine)) {
            return 1;
        }
    }
    return 0;
}

/* One directory of STATE/warm at startup: a complete image is loaded, anything else goes. */
static void load_one(helper *h, apr_pool_t *scratch, const char *name)
{
    const char *dir = apr_pstrcat(scratch, h->warm_dir, "/", name, NULL);
    char *text = helper_fs_read(scratch, apr_pstrcat(scratch, dir, "/", WARM_META, NULL), 65536);
    json_t *meta = text ? json_loads(text, 0, NULL) : NULL;
    const char *machine = NULL, *video = NULL;
    int cpu = 0, memory_mib = 0;
    if (meta
        && json_unpack(meta, "{s:s, s:i, s:i, s:s}", "machine", &machine, "cpu", &cpu, "memory_mib",
                       &memory_mib, "video", &video)
               == 0
        && !strcmp(name, qwd_warm_key(scratch, machine, cpu, memory_mib, video))) {
        helper_warm *w = warm_new(h, machine, cpu, memory_mib, video);
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

void helper_warm_init(helper *h)
{
    h->warm = apr_hash_make(h->pool);
    h->warm_dir = apr_pstrcat(h->pool, h->config->state_dir, "/warm", NULL);
    int error = helper_fs_mkdirs(h->pool, h->warm_dir, 0700);
    if (error) {
        helper_log_error(QWDLOGNO(05067) "cannot create %s: %s", h->warm_dir, strerror(error));
    }
    apr_pool_t *scratch;
    apr_pool_create(&scratch, h->pool);
    apr_dir_t *dir;
    apr_finfo_t entry;
    if (apr_dir_open(&dir, h->warm_dir, scratch) == APR_SUCCESS) {
        while (apr_dir_read(&entry, APR_FINFO_NAME | APR_FINFO_TYPE, dir) == APR_SUCCESS) {
            if (entry.filetype == APR_DIR && entry.name[0] != '.') {
                load_one(h, scratch, entry.name);
            }
        }
        apr_dir_close(dir);
    }
    enforce_budget(h, NULL);
    /* Machines marked warm_at_start get their image now, unless a valid one is there. */
    apr_array_header_t *machines = helper_machines_scan(scratch, h->config->machines_dir);
    for (int i = 0; i < machines->nelts; i++) {
        const helper_machine *machine = &APR_ARRAY_IDX(machines, i, helper_machine);
        qwd_warm_sidecar sidecar;
        if (read_sidecar(h, scratch, machine->name, &sidecar) != 0 || !sidecar.at_start) {
            continue;
        }
        const char *problem;
        if (!helper_warm_usable(h, machine, sidecar.cpu, sidecar.memory_mib, sidecar.video)
            && !helper_warm_build(h, machine, sidecar.cpu, sidecar.memory_mib, sidecar.video,
                                  &problem)
            && problem) {
            helper_log_error(QWDLOGNO(05068) "warm %s: %s", machine->name, problem);
        }
    }
    apr_pool_destroy(scratch);
}

void helper_warm_shutdown(helper *h)
{
    /* apr_hash_first(NULL, ...) shares one iterator per hash, and dropping iterates too: find
     * one template, drop it, search again. */
    for (;;) {
        helper_warm *building = NULL;
        for (apr_hash_index_t *i = apr_hash_first(NULL, h->warm); i && !building;
             i = apr_hash_next(i)) {
            helper_warm *w = apr_hash_this_val(i);
            if (w->state != WARM_READY && w->state != WARM_FAILED) {
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
