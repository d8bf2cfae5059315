/* SPDX-License-Identifier: Apache-2.0 */
/* The master image is only ever a read-only backing file: every session writes to its own
 * qcow2 in its session directory, which goes away with the session. */
#include "helper_launch.h"
#include "helper_config.h"
#include "helper_log.h"
#include "helper_proc.h"
#include "helper_session.h"
#include "helper_warm.h"
#include "helper_websockify.h"
#include "qwd_argv.h"
#include "qwd_image.h"
#include "qwd_token.h"
#include "qwd_protocol.h"

#include <apr_strings.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* qemu-img takes ~12 ms: run synchronously; QEMU itself is never waited for. */
int helper_disk_create(helper *h, apr_pool_t *pool, const helper_machine *machine, const char *base,
                       const char *disk_path, int log_fd, const char **problem)
{
    const char *argv[12];
    int argc = 0;
    argv[argc++] = h->config->qemu_img;
    argv[argc++] = "create";
    argv[argc++] = "-q";
    argv[argc++] = "-f";
    argv[argc++] = "qcow2";
    if (base) {
        argv[argc++] = "-b";
        argv[argc++] = base;
        argv[argc++] = "-F";
        argv[argc++] = "qcow2";
        argv[argc++] = disk_path;
    }
    else if (strcmp(machine->format, "iso")) {
        argv[argc++] = "-b";
        argv[argc++] = machine->path;
        argv[argc++] = "-F";
        argv[argc++] = qwd_image_qemu_format(machine->format);
        argv[argc++] = disk_path;
    }
    else {
        argv[argc++] = disk_path;
        argv[argc++] = h->config->iso_scratch_size;
    }
    argv[argc] = NULL;
    return helper_run(pool, argv, log_fd, problem);
}

qwd_vm_spec helper_launch_spec(helper *h, const helper_machine *machine, const char *id,
                               const char *dir, int cpu, int memory_mib, const char *video,
                               const char *disk_path)
{
    qwd_vm_spec spec = {
        .qemu_binary = helper_config_qemu(h->config, "x86_64"),
        .session_id = id,
        .session_dir = dir,
        .accel = h->accel,
        .cpu_model = h->cpu_model,
        .cpu = cpu,
        .memory_mib = memory_mib,
        .video = video,
        .nic_model = h->config->nic_model,
        .disk_path = disk_path,
        .cdrom_path = strcmp(machine->format, "iso") ? NULL : machine->path,
        .guest_agent = machine->guest_agent,
    };
    return spec;
}

/* warm: the VM restores that image instead of booting. stream recipe: -incoming fd:N on
 * state_fd; shared recipe: RAM is the image's file mapped copy-on-write (share=off) and
 * QEMU waits (-incoming defer) for helper_sessions_tick to send the state over QMP. */
static int spawn_qemu(helper *h, apr_pool_t *pool, helper_session *s, const helper_machine *machine,
                      const char *disk_path, helper_warm *warm, int state_fd, int log_fd,
                      const char **problem)
{
    qwd_vm_spec spec =
        helper_launch_spec(h, machine, s->id, s->dir, s->cpu, s->memory_mib, s->video, disk_path);
    if (warm && warm->shared) {
        spec.ram_path = helper_warm_file(pool, warm, WARM_RAM);
        spec.ram_shared = 0;
    }
    const char **argv;
    if ((*problem = qwd_argv_build(pool, &spec, &argv))) {
        return -1;
    }
    s->restore_state = NULL;
    if (warm) {
        int argc = 0;
        while (argv[argc]) {
            argc++;
        }
        const char **restoring = apr_pcalloc(pool, (size_t)(argc + 3) * sizeof *restoring);
        memcpy(restoring, argv, (size_t)argc * sizeof *argv);
        restoring[argc] = "-incoming";
        restoring[argc + 1] = warm->shared ? "defer" : apr_psprintf(pool, "fd:%d", state_fd);
        argv = restoring;
        if (warm->shared) {
            s->restore_state = helper_warm_file(s->pool, warm, WARM_STATE);
            s->restore_deadline = apr_time_now() + apr_time_from_sec(RESTORE_QMP_DEADLINE_S);
            state_fd = -1;
        }
    }
    /* Its own session: VMs belong to users and outlive the helper and its terminal. An idle
     * clone's own memory is mostly TCG code and video RAM touched a little at a time: without
     * huge pages each costs what it uses (about 6 MiB less per clone, docs/instant-on.md). */
    int flags = SPAWN_NEW_SESSION;
    if (warm && !h->config->warm_clone_hugepages) {
        flags |= SPAWN_NO_HUGEPAGES;
    }
    int error = helper_spawn_keeping(argv, log_fd, flags, state_fd, &s->pid);
    if (error) {
        *problem = apr_psprintf(pool, "cannot run %s: %s", argv[0], strerror(error));
        return -1;
    }
    s->is_child = 1;
    return 0;
}

int helper_launch_cold_again(helper_session *s)
{
    helper *h = s->h;
    apr_pool_t *pool;
    apr_pool_create(&pool, s->pool);
    const char *problem = "the machine is gone";
    apr_array_header_t *machines = helper_machines_scan(pool, h->config->machines_dir);
    const helper_machine *machine = helper_machines_find(machines, s->machine);
    const char *disk_path = qwd_session_file(pool, s->dir, QWD_SESSION_DISK);
    const char *log_path = qwd_session_file(pool, s->dir, QWD_SESSION_QEMU_LOG);
    int log_fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    int rv = -1;
    helper_log_warn(QWDLOGNO(05008) "session %s: restoring the warm image failed, booting cold",
                    s->id);
    helper_session_log_qemu_output(s);
    if (machine) {
        const char *warm_problem;
        helper_warm_drop(h, machine->name, s->cpu, s->memory_mib, s->video);
        if (!helper_warm_build(h, machine, s->cpu, s->memory_mib, s->video, &warm_problem)) {
            helper_log_warn(QWDLOGNO(05009) "warm rebuild of %s failed: %s", machine->name,
                            warm_problem);
        }
        unlink(disk_path);
        if (log_fd >= 0
            && helper_disk_create(h, pool, machine, NULL, disk_path, log_fd, &problem) == 0
            && spawn_qemu(h, pool, s, machine, disk_path, NULL, -1, log_fd, &problem) == 0) {
            rv = 0;
        }
    }
    if (log_fd >= 0) {
        close(log_fd);
    }
    if (rv == 0) {
        s->boot = QWD_BOOT_COLD;
        s->state = SESSION_STARTING;
        helper_session_write_record(s);
        helper_log_info(QWDLOGNO(05010) "session %s: QEMU pid %d started cold", s->id, (int)s->pid);
    }
    else {
        helper_log_error(QWDLOGNO(05011) "session %s: cold boot failed too: %s", s->id, problem);
    }
    apr_pool_destroy(pool);
    return rv;
}

/* Fills and checks what can fail before anything touches the disk. */
static helper_session *new_session(helper *h, apr_pool_t *pool, const launch_request *request,
                                   const char **problem)
{
    char *id, *token;
    if (qwd_session_id_new(pool, &id) != APR_SUCCESS
        || qwd_token_new(pool, &token) != APR_SUCCESS) {
        *problem = "no random bytes for the session id or token";
        return NULL;
    }
    helper_session *s = helper_session_new(h, id);
    s->token = apr_pstrdup(s->pool, token);
    s->machine = apr_pstrdup(s->pool, request->machine->name);
    s->owner = apr_pstrdup(s->pool, request->owner);
    s->ref = request->ref && *request->ref ? apr_pstrdup(s->pool, request->ref) : NULL;
    s->video = apr_pstrdup(s->pool, request->video);
    s->guest_agent = request->machine->guest_agent;
    s->cpu = request->cpu;
    s->memory_mib = request->memory_mib;
    s->oneshot = request->oneshot;
    s->expires = s->created + apr_time_from_sec(request->lifetime_s);
    if (strlen(s->qmp_socket) >= QWD_UNIX_PATH_MAX) {
        *problem = apr_psprintf(pool,
                                "the socket path %s is %d bytes or longer: use a shorter "
                                "state_dir",
                                s->qmp_socket, QWD_UNIX_PATH_MAX);
        helper_session_discard(s);
        return NULL;
    }
    return s;
}

helper_session *helper_launch(helper *h, apr_pool_t *pool, const launch_request *request,
                              const char **problem)
{
    helper_session *s = new_session(h, pool, request, problem);
    if (!s) {
        return NULL;
    }
    const char *disk_path = qwd_session_file(pool, s->dir, QWD_SESSION_DISK);
    const char *log_path = qwd_session_file(pool, s->dir, QWD_SESSION_QEMU_LOG);
    int log_fd = -1, state_fd = -1;
    if (mkdir(s->dir, 0700) != 0
        || (log_fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600)) < 0) {
        *problem = apr_psprintf(pool, "cannot create %s: %s", log_fd < 0 ? log_path : s->dir,
                                strerror(errno));
        goto failed;
    }
    /* A valid warm image of this profile: the session's overlay goes over its frozen base and
     * QEMU restores its state. Anything wrong with it (checked first) means a cold boot. */
    helper_warm *warm = helper_warm_usable(h, request->machine, s->cpu, s->memory_mib, s->video);
    const char *state_path = warm ? helper_warm_file(pool, warm, WARM_STATE) : NULL;
    if (state_path && (state_fd = open(state_path, O_RDONLY | O_CLOEXEC)) < 0) {
        helper_log_warn(QWDLOGNO(05012) "session %s: cannot open %s (%s), cold boot", s->id,
                        state_path, strerror(errno));
        warm = NULL;
    }
    s->boot = warm ? QWD_BOOT_RESTORED : QWD_BOOT_COLD;
    if (helper_disk_create(h, pool, request->machine,
                           warm ? helper_warm_file(pool, warm, WARM_BASE) : NULL, disk_path, log_fd,
                           problem)
            != 0
        || spawn_qemu(h, pool, s, request->machine, disk_path, warm, warm ? state_fd : -1, log_fd,
                      problem)
               != 0) {
        goto failed;
    }
    close(log_fd);
    log_fd = -1;
    if (state_fd >= 0) {
        close(state_fd);
    }
    state_fd = -1;
    int error = helper_session_write_record(s);
    if (!error) {
        error = helper_token_write(h, s->token, s->vnc_socket);
    }
    if (error) {
        /* QEMU runs already: end it the normal way, so the child is reaped and cleaned. */
        *problem =
            apr_psprintf(pool, "cannot write the session record or token: %s", strerror(error));
        helper_session_stop(s, QWD_END_CRASHED);
        return NULL;
    }
    helper_log_info(
        QWDLOGNO(05013) "session %s: QEMU pid %d started for %s (%s, %d cpu, %d MiB, %s, %s)",
        s->id, (int)s->pid, s->owner, s->machine, s->cpu, s->memory_mib, h->accel, s->boot);
    if (!warm) {
        helper_warm_auto(h, request->machine, s->cpu, s->memory_mib, s->video);
    }
    return s;

failed:
    if (log_fd >= 0) {
        close(log_fd);
    }
    if (state_fd >= 0) {
        close(state_fd);
    }
    helper_log_error(QWDLOGNO(05014) "session %s: start failed: %s", s->id, *problem);
    helper_session_log_qemu_output(s);
    helper_session_discard(s);
    return NULL;
}
