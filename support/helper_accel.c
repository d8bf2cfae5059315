/* SPDX-License-Identifier: Apache-2.0 */
/* The host's architecture and the accelerator of its guests, chosen once at startup. /dev/kvm
 * being openable is not enough: a CPU model the host's KVM cannot run makes QEMU abort at
 * machine creation, so auto probes. Guests of another architecture always run under TCG. */
#include "helper_accel.h"
#include "helper_config.h"
#include "helper_log.h"
#include "helper_proc.h"
#include "qwd_argv.h"

#include <apr_strings.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define ACCEL_PROBE_TIMEOUT_MS 5000
/* How often the probe is looked at, and how much of its output is kept for the log. */
#define ACCEL_PROBE_POLL_MS 20
#define ACCEL_PROBE_OUTPUT_MAX 4096
#define READ_CHUNK 1024

static long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

/* Runs QEMU with KVM and cpu_model, paused (-S), told to quit over QMP on its stdin: a model
 * KVM cannot run aborts while the machine is created, before QMP is served. Returns NULL when
 * QEMU quit cleanly, else why not (in pool). */
static const char *probe_kvm(apr_pool_t *pool, const char *qemu, const char *machine_type,
                             const char *cpu_model)
{
    static const char commands[] = "{\"execute\":\"qmp_capabilities\"}\n"
                                   "{\"execute\":\"quit\"}\n";
    int input[2], output[2];
    if (pipe2(input, O_CLOEXEC) != 0) {
        return apr_psprintf(pool, "pipe: %s", strerror(errno));
    }
    if (pipe2(output, O_CLOEXEC) != 0) {
        close(input[0]);
        close(input[1]);
        return apr_psprintf(pool, "pipe: %s", strerror(errno));
    }
    /* a pipe holds far more than the two commands: written before QEMU even starts */
    ssize_t written = write(input[1], commands, sizeof commands - 1);
    close(input[1]);
    const char *argv[] = {
        qemu,          "-accel",          "kvm",      "-cpu", cpu_model, "-machine", machine_type,
        "-nodefaults", "-no-user-config", "-display", "none", "-S",      "-qmp",     "stdio",
        NULL};
    pid_t pid = written == (ssize_t)(sizeof commands - 1) ? fork() : -1;
    if (pid == 0) {
        dup2(input[0], STDIN_FILENO);
        dup2(output[1], STDOUT_FILENO);
        dup2(output[1], STDERR_FILENO);
        execv(argv[0], (char *const *)argv);
        _exit(SPAWN_EXEC_FAILED);
    }
    close(input[0]);
    close(output[1]);
    if (pid < 0) {
        close(output[0]);
        return "cannot start the probe";
    }
    /* Drain the output (QMP replies, warnings, the abort message) until QEMU closes it. */
    fcntl(output[0], F_SETFL, O_NONBLOCK);
    char text[ACCEL_PROBE_OUTPUT_MAX];
    size_t length = 0;
    int status = 0, exited = 0;
    long deadline = now_ms() + ACCEL_PROBE_TIMEOUT_MS;
    while (!exited && now_ms() < deadline) {
        char chunk[READ_CHUNK];
        ssize_t n;
        while ((n = read(output[0], chunk, sizeof chunk)) > 0) {
            size_t room = sizeof text - 1 - length;
            size_t take = (size_t)n < room ? (size_t)n : room;
            memcpy(text + length, chunk, take);
            length += take;
        }
        exited = waitpid(pid, &status, WNOHANG) == pid;
        if (!exited) {
            usleep(ACCEL_PROBE_POLL_MS * 1000);
        }
    }
    close(output[0]);
    if (!exited) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        return apr_psprintf(pool, "the probe did not quit within %d ms", ACCEL_PROBE_TIMEOUT_MS);
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        return NULL;
    }
    text[length] = '\0';
    /* the first "error" line says why (e.g. "failed to set MSR 0x10a to 0x69") */
    const char *line = strstr(text, "error");
    if (!line) {
        line = strstr(text, "qemu-system");
    }
    char *reason = apr_pstrdup(pool, line ? line : "");
    reason[strcspn(reason, "\n")] = '\0';
    const char *how = WIFEXITED(status) ? apr_psprintf(pool, "exited with %d", WEXITSTATUS(status))
                                        : apr_psprintf(pool, "died of signal %d", WTERMSIG(status));
    return apr_psprintf(pool, "QEMU %s%s%s", how, *reason ? ": " : "", reason);
}

/* The host's architecture in the words of guests' arch (uname's machine: "arm64" on some
 * systems is aarch64); another name is kept as it is and has no guests of its own. */
static const char *host_arch(apr_pool_t *pool)
{
    struct utsname names;
    if (uname(&names) != 0) {
        return "unknown";
    }
    if (!strcmp(names.machine, "arm64")) {
        return QWD_ARCH_AARCH64;
    }
    return apr_pstrdup(pool, names.machine);
}

void helper_accel_resolve(helper *h)
{
    const helper_config *config = h->config;
    const char *why;
    h->host.arch = host_arch(h->pool);
    const char *qemu =
        qwd_argv_arch_is_valid(h->host.arch) ? helper_config_qemu(config, h->host.arch) : NULL;
    if (strcmp(config->accel, "auto")) {
        h->host.accel = config->accel;
        why = "configured";
    }
    else if (!qemu) {
        h->host.accel = "tcg";
        why = apr_psprintf(h->pool, "auto: no QEMU for %s guests", h->host.arch);
    }
    else {
        int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
        if (fd < 0) {
            h->host.accel = "tcg";
            why = apr_psprintf(h->pool, "auto: /dev/kvm: %s", strerror(errno));
        }
        else {
            close(fd);
            const char *model = qwd_argv_cpu_model("kvm", config->cpu_model);
            const char *problem =
                probe_kvm(h->pool, qemu, qwd_argv_machine_type(h->host.arch), model);
            h->host.accel = problem ? "tcg" : "kvm";
            why = problem
                      ? apr_psprintf(h->pool, "auto: KVM with -cpu %s fails (%s)", model, problem)
                      : apr_psprintf(h->pool, "auto: KVM with -cpu %s works", model);
            if (problem) {
                helper_log_warn(
                    QWDLOGNO(05001) "accel %s; using TCG (set cpu_model, e.g. qemu64, to use KVM)",
                    why);
            }
        }
    }
    h->host.cpu_model = qwd_argv_cpu_model(h->host.accel, config->cpu_model);
    helper_log_info(QWDLOGNO(05002) "accel %s, cpu model %s for %s guests (%s); guests of other "
                                    "arches: tcg",
                    h->host.accel, h->host.cpu_model, h->host.arch, why);
}
