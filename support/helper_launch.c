/* The master image is only ever a read-only backing file: every session writes to its own
 * qcow2 in its session directory, which goes away with the session. */
#include "helper_launch.h"
#include "helper_config.h"
#include "helper_log.h"
#include "helper_proc.h"
#include "helper_session.h"
#include "helper_websockify.h"
#include "qwd_argv.h"
#include "qwd_image.h"
#include "qwd_token.h"

#include <apr_strings.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* qemu-img takes ~12 ms: run synchronously; QEMU itself is never waited for. */
static int create_disk(helper *h, apr_pool_t *pool, helper_session *s,
                       const helper_machine *machine, const char *disk_path, int log_fd,
                       const char **problem)
{
    const char *argv[12];
    int argc = 0;
    argv[argc++] = h->config->qemu_img;
    argv[argc++] = "create";
    argv[argc++] = "-q";
    argv[argc++] = "-f";
    argv[argc++] = "qcow2";
    if (strcmp(machine->format, "iso")) {
        argv[argc++] = "-b";
        argv[argc++] = machine->path;
        argv[argc++] = "-F";
        argv[argc++] = qwd_image_qemu_format(machine->format);
        argv[argc++] = disk_path;
    } else {
        argv[argc++] = disk_path;
        argv[argc++] = h->config->iso_scratch_size;
    }
    argv[argc] = NULL;
    return helper_run(pool, argv, log_fd, problem);
}

static int spawn_qemu(helper *h, apr_pool_t *pool, helper_session *s, const helper_machine *machine,
                      const char *disk_path, int log_fd, const char **problem)
{
    qwd_vm_spec spec = {
        .qemu_binary = helper_config_qemu(h->config, "x86_64"),
        .session_id = s->id,
        .session_dir = s->dir,
        .accel = h->accel,
        .cpu = s->cpu,
        .memory_mib = s->memory_mib,
        .video = s->video,
        .nic_model = h->config->nic_model,
        .disk_path = disk_path,
        .cdrom_path = strcmp(machine->format, "iso") ? NULL : machine->path,
    };
    const char **argv;
    if ((*problem = qwd_argv_build(pool, &spec, &argv)))
        return -1;
    /* Its own session: VMs belong to users and outlive the helper and its terminal. */
    int error = helper_spawn(argv, log_fd, SPAWN_NEW_SESSION, &s->pid);
    if (error) {
        *problem = apr_psprintf(pool, "cannot run %s: %s", argv[0], strerror(error));
        return -1;
    }
    s->is_child = 1;
    return 0;
}

/* Fills and checks what can fail before anything touches the disk. */
static helper_session *new_session(helper *h, apr_pool_t *pool, const launch_request *request,
                                   const char **problem)
{
    char *id, *token;
    if (qwd_session_id_new(pool, &id) != APR_SUCCESS ||
        qwd_token_new(pool, &token) != APR_SUCCESS) {
        *problem = "no random bytes for the session id or token";
        return NULL;
    }
    helper_session *s = helper_session_new(h, id);
    s->token = apr_pstrdup(s->pool, token);
    s->machine = apr_pstrdup(s->pool, request->machine->name);
    s->owner = apr_pstrdup(s->pool, request->owner);
    s->video = apr_pstrdup(s->pool, request->video);
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
    if (!s)
        return NULL;
    const char *disk_path = qwd_session_file(pool, s->dir, QWD_SESSION_DISK);
    const char *log_path = qwd_session_file(pool, s->dir, QWD_SESSION_QEMU_LOG);
    int log_fd = -1;
    if (mkdir(s->dir, 0700) != 0 ||
        (log_fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600)) < 0) {
        *problem = apr_psprintf(pool, "cannot create %s: %s", log_fd < 0 ? log_path : s->dir,
                                strerror(errno));
        goto failed;
    }
    if (create_disk(h, pool, s, request->machine, disk_path, log_fd, problem) != 0 ||
        spawn_qemu(h, pool, s, request->machine, disk_path, log_fd, problem) != 0)
        goto failed;
    close(log_fd);
    log_fd = -1;
    int error = helper_session_write_record(s);
    if (!error)
        error = helper_token_write(h, s->token, s->vnc_socket);
    if (error) {
        /* QEMU runs already: end it the normal way, so the child is reaped and cleaned. */
        *problem =
            apr_psprintf(pool, "cannot write the session record or token: %s", strerror(error));
        helper_session_stop(s, "crashed");
        return NULL;
    }
    helper_log_info("session %s: QEMU pid %d started for %s (%s, %d cpu, %d MiB, %s)", s->id,
                    (int)s->pid, s->owner, s->machine, s->cpu, s->memory_mib, h->accel);
    return s;

failed:
    if (log_fd >= 0)
        close(log_fd);
    helper_log_error("session %s: start failed: %s", s->id, *problem);
    helper_session_log_qemu_output(s);
    helper_session_discard(s);
    return NULL;
}
