/* SPDX-License-Identifier: Apache-2.0 */
/* qwdctl: the administrator's command line for qwd-helper (start, status, stop, machines,
 * load, warm), speaking the same protocol and client code as mod_qwd; machines list and fetch
 * work on the machine catalogue (qwdctl_machines.c). */
#include "helper_config.h"
#include "qwd_proto_client.h"
#include "qwd_protocol.h"
#include "qwd_warm.h"
#include "qwdctl_machines.h"
#include "qwdctl_ops.h"

#include <apr_general.h>
#include <apr_strings.h>
#include <curl/curl.h>
#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_VIEWER_BASE "http://127.0.0.1:6080/vnc.html"
#define VIEWER_BASE_ENV "QWD_VIEWER_BASE"
#define CALL_TIMEOUT_MS 15000
#define WARM_WAIT_POLL_MS 500
#define WARM_WAIT_POLLS 1200 /* every 0.5 s: 10 minutes */
/* The largest number an option takes. */
#define OPTION_INT_MAX (1 << 30)
/* Most machine names one machines fetch takes. */
#define NAMES_MAX 64

typedef struct options {
    const char *socket;
    const char *viewer_base;
    const char *owner;
    const char *video;
    int cpu, memory_mib, lifetime_s; /* 0: the helper's default */
    /* start's data-analysis options (docs/data-sessions.md) */
    const char *shares[QWD_PROTO_SHARES_MAX];
    int share_count;
    const char *script, *script_file;
    int scratch_gib, gpu;
    int json;
    int warm_list, no_wait;
    const char *warm_drop; /* MACHINE or "all" */
    const char *command;
    const char *argument;         /* MACHINE or ID; "list" or "fetch" after machines */
    const char *names[NAMES_MAX]; /* machines fetch NAME... */
    int name_count;
    qwdctl_machines_options machines;
} options;

static void usage(FILE *out)
{
    fprintf(
        out,
        "usage: qwdctl [--socket PATH] COMMAND [ARGS] [--json]\n"
        "commands:\n"
        "  start MACHINE [--cpu N] [--memory MIB] [--lifetime S] [--owner NAME]\n"
        "                [--video std|virtio|qxl|cirrus] [--viewer-base URL]\n"
        "                [--share NAME]... [--script NAME | --script-file FILE]\n"
        "                [--scratch GIB] [--gpu]\n"
        "                 start a VM; prints its session id, token and viewer URL\n"
        "  status [ID]    one session, or every live session without ID\n"
        "  list           every live session\n"
        "  stop ID|all    stop one session, or every session (purge)\n"
        "  machines       the machines the helper can start\n"
        "  machines list  the catalogue's machines: installed, outdated, available,\n"
        "                 and the directory's others (local)\n"
        "  machines fetch [NAME...]\n"
        "                 download catalogue entries (all without NAME), verify their\n"
        "                 sha256, place them, and have the helper rescan\n"
        "  load           host load and the helper's usage and limits\n"
        "  warm MACHINE [--cpu N] [--memory MIB] [--video V] [--no-wait]\n"
        "                 build the warm image of a profile (waits until it is ready)\n"
        "  warm --list    the warm images and their state\n"
        "  warm --drop MACHINE|all\n"
        "                 drop the warm images of a machine, or all of them\n"
        "%s"
        "options:\n"
        "  --socket PATH       the helper's socket (default $" QWD_PROTO_SOCKET_ENV
        ", else " QWD_PROTO_DEFAULT_SOCKET ")\n"
        "  --viewer-base URL   noVNC page for the viewer URL (default $" VIEWER_BASE_ENV
        ", else " DEFAULT_VIEWER_BASE ");\n"
        "                      the URL printed is URL?path=websockify?token=TOKEN\n"
        "  --json              print the helper's JSON reply\n"
        "  --config FILE       machines list/fetch: the helper's configuration, for\n"
        "                      machines_dir, catalogue and socket (default " HELPER_DEFAULT_CONFIG
        ")\n"
        "  --catalogue FILE    machines list/fetch: the catalogue to read\n"
        "  --machines-dir DIR  machines list/fetch: the machines directory\n"
        "  --help              this text\n"
        "Errors are printed as \"qwdctl: CODE: message\" with a non-zero exit status.\n",
        qwdctl_ops_usage);
}

static int positive(const char *text)
{
    char *end;
    long value = strtol(text, &end, 10);
    if (*end || value <= 0 || value > OPTION_INT_MAX) {
        fprintf(stderr, "qwdctl: bad_argument: \"%s\" is not a positive integer\n", text);
        exit(2);
    }
    return (int)value;
}

static void parse(int argc, char **argv, options *opt)
{
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        const char *value = i + 1 < argc ? argv[i + 1] : NULL;
        int takes_value = 1;
        if (!strcmp(arg, "--help")) {
            usage(stdout);
            exit(0);
        }
        else if (!strcmp(arg, "--json")) {
            opt->json = 1;
            takes_value = 0;
        }
        else if (!strcmp(arg, "--list")) {
            opt->warm_list = 1;
            takes_value = 0;
        }
        else if (!strcmp(arg, "--no-wait")) {
            opt->no_wait = 1;
            takes_value = 0;
        }
        else if (!strcmp(arg, "--gpu")) {
            opt->gpu = 1;
            takes_value = 0;
        }
        else if (arg[0] == '-' && arg[1] == '-' && !value) {
            fprintf(stderr, "qwdctl: bad_argument: %s needs a value\n", arg);
            exit(2);
        }
        else if (!strcmp(arg, "--socket")) {
            opt->socket = value;
        }
        else if (!strcmp(arg, "--viewer-base")) {
            opt->viewer_base = value;
        }
        else if (!strcmp(arg, "--owner")) {
            opt->owner = value;
        }
        else if (!strcmp(arg, "--drop")) {
            opt->warm_drop = value;
        }
        else if (!strcmp(arg, "--video")) {
            opt->video = value;
        }
        else if (!strcmp(arg, "--config")) {
            opt->machines.config = value;
        }
        else if (!strcmp(arg, "--catalogue")) {
            opt->machines.catalogue = value;
        }
        else if (!strcmp(arg, "--machines-dir")) {
            opt->machines.machines_dir = value;
        }
        else if (!strcmp(arg, "--cpu")) {
            opt->cpu = positive(value);
        }
        else if (!strcmp(arg, "--memory")) {
            opt->memory_mib = positive(value);
        }
        else if (!strcmp(arg, "--lifetime")) {
            opt->lifetime_s = positive(value);
        }
        else if (!strcmp(arg, "--share")) {
            if (opt->share_count == QWD_PROTO_SHARES_MAX) {
                fprintf(stderr, "qwdctl: bad_argument: at most %d --share\n", QWD_PROTO_SHARES_MAX);
                exit(2);
            }
            opt->shares[opt->share_count++] = value;
        }
        else if (!strcmp(arg, "--script")) {
            opt->script = value;
        }
        else if (!strcmp(arg, "--script-file")) {
            opt->script_file = value;
        }
        else if (!strcmp(arg, "--scratch")) {
            opt->scratch_gib = positive(value);
        }
        else if (arg[0] == '-') {
            fprintf(stderr, "qwdctl: bad_argument: unknown option %s\n", arg);
            exit(2);
        }
        else {
            takes_value = 0;
            if (!opt->command) {
                opt->command = arg;
            }
            else if (!opt->argument) {
                opt->argument = arg;
            }
            else if (!strcmp(opt->command, "machines") && !strcmp(opt->argument, "fetch")
                     && opt->name_count < NAMES_MAX) {
                opt->names[opt->name_count++] = arg;
            }
            else {
                fprintf(stderr, "qwdctl: bad_argument: unexpected \"%s\"\n", arg);
                exit(2);
            }
        }
        i += takes_value;
    }
    if (!opt->command) {
        usage(stderr);
        exit(2);
    }
}

static const char *viewer_url(apr_pool_t *pool, const options *opt, const char *token)
{
    const char *base = opt->viewer_base ? opt->viewer_base : getenv(VIEWER_BASE_ENV);
    if (!base || !*base) {
        base = DEFAULT_VIEWER_BASE;
    }
    return apr_pstrcat(pool, base, strchr(base, '?') ? "&" : "?", "path=websockify?token=", token,
                       NULL);
}

static const char *default_owner(void)
{
    const char *user = getenv("USER");
    struct passwd *entry = getpwuid(getuid());
    return entry ? entry->pw_name : user ? user : "qwdctl";
}

static void print_json(json_t *value)
{
    char *text = json_dumps(value, JSON_INDENT(2));
    printf("%s\n", text);
    free(text);
}

static void print_session_line(json_t *s)
{
    json_t *reason = json_object_get(s, "ended_reason");
    printf(
        "%s  %-8s %-16s %-12s cpu=%lld mem=%lldMiB pid=%lld uptime=%llds%s%s\n",
        json_string_value(json_object_get(s, "id")), json_string_value(json_object_get(s, "state")),
        json_string_value(json_object_get(s, "machine")),
        json_string_value(json_object_get(s, "owner")),
        json_integer_value(json_object_get(s, "cpu")),
        json_integer_value(json_object_get(s, "memory_mib")),
        json_integer_value(json_object_get(s, "pid")),
        json_integer_value(json_object_get(s, "uptime")), json_is_string(reason) ? " ended=" : "",
        json_is_string(reason) ? json_string_value(reason) : "");
}

static void print_warm_line(json_t *w)
{
    json_t *problem = json_object_get(w, "problem");
    json_t *size = json_object_get(w, "size_bytes");
    json_t *created = json_object_get(w, "created");
    char size_text[64] = "";
    if (json_is_integer(size)) {
        /* how old a ready image is: seconds since it was built */
        long long age = json_is_integer(created)
                            ? (long long)time(NULL) - (long long)json_integer_value(created)
                            : 0;
        snprintf(size_text, sizeof size_text, " size=%lldMB age=%llds",
                 (long long)(json_integer_value(size) / 1000000), age < 0 ? 0 : age);
    }
    printf("%-32s %-8s cpu=%lld mem=%lldMiB video=%s%s%s%s\n",
           json_string_value(json_object_get(w, "key")),
           json_string_value(json_object_get(w, "state")),
           json_integer_value(json_object_get(w, "cpu")),
           json_integer_value(json_object_get(w, "memory_mib")),
           json_string_value(json_object_get(w, "video")), size_text,
           json_is_string(problem) ? " problem=" : "",
           json_is_string(problem) ? json_string_value(problem) : "");
}

/* Polls warm_list until the image of key is ready or failed (a new connection per poll: the
 * helper closes idle ones). Returns the image's object, or NULL with *error. */
static json_t *wait_for_warm(apr_pool_t *pool, const options *opt, const char *key, json_t **error)
{
    for (int polls = 0; polls < WARM_WAIT_POLLS; polls++) {
        qwd_proto_client *client;
        json_t *result;
        if (qwd_proto_client_connect(pool, qwd_proto_client_socket_path(opt->socket),
                                     CALL_TIMEOUT_MS, &client, error)
                != APR_SUCCESS
            || qwd_proto_client_call(client, pool, QWD_OP_WARM_LIST,
                                     qwd_json_pool_bind(pool, json_object()), &result, error)
                   != APR_SUCCESS) {
            return NULL;
        }
        size_t i;
        json_t *w, *found = NULL;
        json_array_foreach (json_object_get(result, "warm"), i, w) {
            if (!strcmp(json_string_value(json_object_get(w, "key")), key)) {
                found = w;
            }
        }
        const char *state = found ? json_string_value(json_object_get(found, "state")) : "gone";
        if (!found || !strcmp(state, "ready") || !strcmp(state, "failed")) {
            return found ? found
                         : qwd_json_pool_bind(pool,
                                              json_pack("{s:s, s:s}", "key", key, "state", "gone"));
        }
        usleep(WARM_WAIT_POLL_MS * 1000);
    }
    *error = qwd_json_pool_bind(pool, json_pack("{s:s, s:s}", "code", QWD_ERR_TIMEOUT, "message",
                                                "the warm image was not ready in time"));
    return NULL;
}

/* Builds the request of the command: sets *op and returns its arguments. */
/* The profile options of start and warm: cpu, memory, video (absent: the helper's defaults). */
static void add_profile(json_t *args, const options *opt)
{
    if (opt->cpu) {
        json_object_set_new(args, "cpu", json_integer(opt->cpu));
    }
    if (opt->memory_mib) {
        json_object_set_new(args, "memory_mib", json_integer(opt->memory_mib));
    }
    if (opt->video) {
        json_object_set_new(args, "video", json_string(opt->video));
    }
}

/* start's shares, script (a name, or a file's text), scratch disk and GPU. */
static void add_data_options(json_t *args, const options *opt)
{
    if (opt->share_count) {
        json_t *shares = json_array();
        for (int i = 0; i < opt->share_count; i++) {
            json_array_append_new(shares, json_string(opt->shares[i]));
        }
        json_object_set_new(args, "shares", shares);
    }
    if (opt->script) {
        json_object_set_new(args, "script", json_string(opt->script));
    }
    if (opt->script_file) {
        json_t *text = NULL;
        FILE *file = fopen(opt->script_file, "r");
        char buffer[QWD_PROTO_SCRIPT_TEXT_MAX + 2];
        size_t length = file ? fread(buffer, 1, sizeof buffer - 1, file) : 0;
        if (file) {
            fclose(file);
            buffer[length] = '\0';
            text = json_stringn(buffer, length);
        }
        if (!text || length > QWD_PROTO_SCRIPT_TEXT_MAX) {
            fprintf(stderr, "qwdctl: bad_argument: %s: %s\n", opt->script_file,
                    !file  ? strerror(errno)
                    : text ? "larger than the protocol's script_text limit"
                           : "not UTF-8 text");
            exit(2);
        }
        json_object_set_new(args, "script_text", text);
    }
    if (opt->scratch_gib) {
        json_object_set_new(args, "scratch_gib", json_integer(opt->scratch_gib));
    }
    if (opt->gpu) {
        json_object_set_new(args, "gpu", json_true());
    }
}

static json_t *request_for(const options *opt, const char **op)
{
    const char *command = opt->command;
    if (!strcmp(command, "start")) {
        if (!opt->argument) {
            fprintf(stderr, "qwdctl: bad_argument: start needs a MACHINE\n");
            exit(2);
        }
        *op = QWD_OP_START;
        json_t *args = json_pack("{s:s, s:s}", "machine", opt->argument, "owner",
                                 opt->owner ? opt->owner : default_owner());
        add_profile(args, opt);
        if (opt->lifetime_s) {
            json_object_set_new(args, "lifetime_s", json_integer(opt->lifetime_s));
        }
        add_data_options(args, opt);
        return args;
    }
    if (!strcmp(command, "warm")) {
        if (opt->warm_list) {
            *op = QWD_OP_WARM_LIST;
            return json_object();
        }
        if (opt->warm_drop) {
            *op = QWD_OP_WARM_DROP;
            return strcmp(opt->warm_drop, "all") ? json_pack("{s:s}", "machine", opt->warm_drop)
                                                 : json_object();
        }
        if (!opt->argument) {
            fprintf(stderr, "qwdctl: bad_argument: warm needs a MACHINE, --list or --drop\n");
            exit(2);
        }
        *op = QWD_OP_WARM;
        json_t *args = json_pack("{s:s}", "machine", opt->argument);
        add_profile(args, opt);
        return args;
    }
    if ((!strcmp(command, "status") && opt->argument)
        || (!strcmp(command, "stop") && opt->argument && strcmp(opt->argument, "all"))) {
        *op = !strcmp(command, "stop") ? QWD_OP_STOP : QWD_OP_STATUS;
        return json_pack("{s:s}", "id", opt->argument);
    }
    if (!strcmp(command, "stop")) {
        if (!opt->argument) {
            fprintf(stderr, "qwdctl: bad_argument: stop needs an ID or \"all\"\n");
            exit(2);
        }
        *op = QWD_OP_PURGE;
    }
    else if (!strcmp(command, "status") || !strcmp(command, "list")) {
        *op = QWD_OP_LIST;
    }
    else if (!strcmp(command, "machines")) {
        *op = QWD_OP_MACHINES;
    }
    else if (!strcmp(command, "load")) {
        *op = QWD_OP_LOAD;
    }
    else {
        fprintf(stderr, "qwdctl: bad_argument: unknown command \"%s\" (see --help)\n", command);
        exit(2);
    }
    return json_object();
}

static void print_result(apr_pool_t *pool, const options *opt, const char *op, json_t *result)
{
    if (opt->json) {
        print_json(result);
    }
    else if (!strcmp(op, QWD_OP_START)) {
        const char *token = json_string_value(json_object_get(result, "token"));
        printf("session %s\ntoken %s\nurl %s\n", json_string_value(json_object_get(result, "id")),
               token, viewer_url(pool, opt, token));
    }
    else if (!strcmp(op, QWD_OP_STATUS) || !strcmp(op, QWD_OP_STOP)) {
        print_session_line(result);
    }
    else if (!strcmp(op, QWD_OP_LIST)) {
        size_t i;
        json_t *s;
        json_array_foreach (json_object_get(result, "sessions"), i, s) {
            print_session_line(s);
        }
    }
    else if (!strcmp(op, QWD_OP_MACHINES)) {
        size_t i;
        json_t *m;
        json_array_foreach (json_object_get(result, "machines"), i, m) {
            json_t *problem = json_object_get(m, "problem");
            printf("%-24s %-6s %-8s %12lld  %s%s%s\n",
                   json_string_value(json_object_get(m, "name")),
                   json_string_value(json_object_get(m, "format")),
                   json_string_value(json_object_get(m, "arch")),
                   json_integer_value(json_object_get(m, "virtual_size")),
                   json_string_value(json_object_get(m, "description")),
                   json_is_string(problem) ? " unusable: " : "",
                   json_is_string(problem) ? json_string_value(problem) : "");
        }
    }
    else if (!strcmp(op, QWD_OP_WARM)) {
        print_warm_line(result);
    }
    else if (!strcmp(op, QWD_OP_WARM_LIST)) {
        size_t i;
        json_t *w;
        json_array_foreach (json_object_get(result, "warm"), i, w) {
            print_warm_line(w);
        }
    }
    else if (!strcmp(op, QWD_OP_PURGE)) {
        printf("stopped %lld\n", json_integer_value(json_object_get(result, "stopped")));
    }
    else {
        const char *key;
        json_t *value;
        json_object_foreach (result, key, value) {
            char *text = json_dumps(value, JSON_ENCODE_ANY);
            printf("%s %s\n", key, text);
            free(text);
        }
    }
}

static int report_error(json_t *error)
{
    fprintf(stderr, "qwdctl: %s: %s\n", json_string_value(json_object_get(error, "code")),
            json_string_value(json_object_get(error, "message")));
    return 1;
}

/* machines list and machines fetch: the catalogue's commands. */
static int run_catalogue(apr_pool_t *pool, options *opt)
{
    opt->machines.socket = opt->socket;
    opt->machines.json = opt->json;
    if (!strcmp(opt->argument, "list")) {
        return qwdctl_machines_list(pool, &opt->machines);
    }
    if (!strcmp(opt->argument, "fetch")) {
        curl_global_init(CURL_GLOBAL_DEFAULT);
        int status = qwdctl_machines_fetch(pool, &opt->machines, opt->names, opt->name_count);
        curl_global_cleanup();
        return status;
    }
    fprintf(stderr, "qwdctl: bad_argument: machines takes list or fetch (or nothing)\n");
    return 2;
}

int main(int argc, char **argv)
{
    options opt = {0};
    apr_initialize();
    atexit(apr_terminate);
    int status = qwdctl_ops_main(argc, argv); /* the operator commands (qwdctl_ops.c) */
    if (status >= 0) {
        return status;
    }
    parse(argc, argv, &opt);
    apr_pool_t *pool;
    apr_pool_create(&pool, NULL);
    if (!strcmp(opt.command, "machines") && opt.argument) {
        return run_catalogue(pool, &opt);
    }

    const char *op;
    json_t *arguments = qwd_json_pool_bind(pool, request_for(&opt, &op));
    qwd_proto_client *client;
    json_t *result, *error;
    if (qwd_proto_client_connect(pool, qwd_proto_client_socket_path(opt.socket), CALL_TIMEOUT_MS,
                                 &client, &error)
        != APR_SUCCESS) {
        return report_error(error);
    }
    if (qwd_proto_client_call(client, pool, op, arguments, &result, &error) != APR_SUCCESS) {
        return report_error(error);
    }
    if (!strcmp(op, QWD_OP_WARM) && !opt.no_wait
        && strcmp(json_string_value(json_object_get(result, "state")), "ready")
        && !(result = wait_for_warm(pool, &opt, json_string_value(json_object_get(result, "key")),
                                    &error))) {
        return report_error(error);
    }
    print_result(pool, &opt, op, result);
    if (!strcmp(op, QWD_OP_WARM)
        && strcmp(json_string_value(json_object_get(result, "state")), "ready") && !opt.no_wait) {
        return 1;
    }
    return 0;
}
