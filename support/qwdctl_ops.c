/* SPDX-License-Identifier: Apache-2.0 */
/* The operator commands of qwdctl, each a few protocol calls and a table: `sessions` joins
 * list and usage, `metrics` renders the helper's families in the Prometheus text format. */
#include "qwdctl_ops.h"
#include "qwd_metrics.h"
#include "qwd_proto_client.h"
#include "qwd_protocol.h"

#include <apr_general.h>
#include <apr_strings.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define CALL_TIMEOUT_MS 15000
#define BYTES_PER_MIB (1024.0 * 1024.0)
#define SECONDS_PER_HOUR 3600
#define SECONDS_PER_MINUTE 60

const char qwdctl_ops_usage[] =
    "  sessions       live sessions: where they run, owner, time left, CPU, memory, disk\n"
    "  extend ID SECONDS\n"
    "                 move a session's end later (within the helper's max_lifetime)\n"
    "  metrics        the helper's metrics in the Prometheus text format\n"
    "  events [--after SEQ]\n"
    "                 the helper's journal: starts, ends (why, who asked), extensions\n";

typedef struct ops_options {
    const char *socket;
    const char *command;
    const char *args[2];
    int nargs;
    long long after;
    int json;
} ops_options;

static const char *const commands[] = {"sessions", "extend", "metrics", "events"};

static int usage_error(const char *message)
{
    fprintf(stderr, "qwdctl: bad_argument: %s\n", message);
    return 2;
}

/* Reads argv; returns -1 when its command is not ours, 2 on bad usage, else 0. */
static int parse(int argc, char **argv, ops_options *opt)
{
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (!strcmp(arg, "--json")) {
            opt->json = 1;
        }
        else if (!strcmp(arg, "--socket") || !strcmp(arg, "--after")) {
            if (i + 1 >= argc) {
                return opt->command ? usage_error("an option needs a value") : -1;
            }
            if (!strcmp(arg, "--socket")) {
                opt->socket = argv[++i];
            }
            else {
                char *end;
                opt->after = strtoll(argv[++i], &end, 10);
                if (*end || opt->after < 0) {
                    return usage_error("--after needs a sequence number");
                }
            }
        }
        else if (arg[0] == '-') {
            /* before the command: maybe an option of qwdctl.c's commands */
            if (!opt->command) {
                return -1;
            }
            fprintf(stderr, "qwdctl: bad_argument: unknown option %s\n", arg);
            return 2;
        }
        else if (!opt->command) {
            opt->command = arg;
            int ours = 0;
            for (size_t c = 0; c < sizeof commands / sizeof commands[0]; c++) {
                ours |= !strcmp(arg, commands[c]);
            }
            if (!ours) {
                return -1;
            }
        }
        else if (opt->nargs < 2) {
            opt->args[opt->nargs++] = arg;
        }
        else {
            return usage_error("too many arguments");
        }
    }
    return opt->command ? 0 : -1;
}

static int report_error(json_t *error)
{
    fprintf(stderr, "qwdctl: %s: %s\n", json_string_value(json_object_get(error, "code")),
            json_string_value(json_object_get(error, "message")));
    return 1;
}

/* Calls op (arguments stolen) on a connection of its own; NULL after reporting the error. */
static json_t *call(apr_pool_t *pool, const ops_options *opt, const char *op, json_t *arguments)
{
    qwd_proto_client *client;
    json_t *result, *error;
    qwd_json_pool_bind(pool, arguments);
    if (qwd_proto_client_connect(pool, qwd_proto_client_socket_path(opt->socket), CALL_TIMEOUT_MS,
                                 &client, &error)
            != APR_SUCCESS
        || qwd_proto_client_call(client, pool, op, arguments, &result, &error) != APR_SUCCESS) {
        report_error(error);
        return NULL;
    }
    return result;
}

static void print_json(json_t *value)
{
    char *text = json_dumps(value, JSON_INDENT(2));
    printf("%s\n", text);
    free(text);
}

/* "1:02:03" until until (Unix seconds), "-" when past. */
static const char *time_left(apr_pool_t *pool, long long until)
{
    long long left = until - (long long)time(NULL);
    if (left <= 0) {
        return "-";
    }
    /* APR's formatter knows no %lld: its own 64-bit format, and ints for the rest */
    return apr_psprintf(
        pool, "%" APR_INT64_T_FMT ":%02d:%02d", (apr_int64_t)(left / SECONDS_PER_HOUR),
        (int)(left / SECONDS_PER_MINUTE % SECONDS_PER_MINUTE), (int)(left % SECONDS_PER_MINUTE));
}

static const char *mib(apr_pool_t *pool, json_t *bytes)
{
    return json_is_number(bytes)
               ? apr_psprintf(pool, "%.0f", json_number_value(bytes) / BYTES_PER_MIB)
               : "-";
}

/* Where a session runs: its backend and node when the helper names them, else this host. */
static const char *place(apr_pool_t *pool, json_t *session)
{
    const char *backend = json_string_value(json_object_get(session, "backend"));
    const char *node = json_string_value(json_object_get(session, "node"));
    char host[256] = "";
    if (!node && gethostname(host, sizeof host - 1) == 0) {
        node = host;
    }
    return apr_psprintf(pool, "%s%s%s", backend ? backend : "local", node ? "/" : "",
                        node ? node : "");
}

/* list + usage, joined by id: each session with "usage" and "where". */
static int sessions(apr_pool_t *pool, const ops_options *opt)
{
    json_t *list = call(pool, opt, QWD_OP_LIST, json_object());
    json_t *usage = list ? call(pool, opt, QWD_OP_USAGE, json_object()) : NULL;
    json_t *session, *used;
    size_t i, j;
    if (!usage) {
        return 1;
    }
    json_t *all = json_object_get(list, "sessions");
    json_array_foreach (all, i, session) {
        json_array_foreach (json_object_get(usage, "sessions"), j, used) {
            if (json_equal(json_object_get(used, "id"), json_object_get(session, "id"))) {
                json_object_set(session, "usage", used);
            }
        }
        json_object_set_new(session, "where", json_string(place(pool, session)));
    }
    if (opt->json) {
        print_json(qwd_json_pool_bind(pool, json_pack("{s:O}", "sessions", all)));
        return 0;
    }
    printf("%-32s  %-12s %-16s %-8s %-8s %-20s %9s %6s %8s %8s\n", "ID", "OWNER", "MACHINE",
           "STATE", "BOOT", "WHERE", "LEFT", "CPU%", "MEM_MiB", "DISK_MiB");
    json_array_foreach (all, i, session) {
        json_t *u = json_object_get(session, "usage");
        json_t *cpu = json_object_get(u, "cpu_percent");
        printf("%-32s  %-12s %-16s %-8s %-8s %-20s %9s %6s %8s %8s\n",
               json_string_value(json_object_get(session, "id")),
               json_string_value(json_object_get(session, "owner")),
               json_string_value(json_object_get(session, "machine")),
               json_string_value(json_object_get(session, "state")),
               json_string_value(json_object_get(session, "boot")),
               json_string_value(json_object_get(session, "where")),
               time_left(pool, json_integer_value(json_object_get(session, "expires"))),
               json_is_number(cpu) ? apr_psprintf(pool, "%.1f", json_number_value(cpu)) : "-",
               mib(pool, json_object_get(u, "pss_bytes")),
               mib(pool, json_object_get(u, "disk_bytes")));
    }
    return 0;
}

static const char *calling_user(apr_pool_t *pool)
{
    struct passwd *entry = getpwuid(getuid());
    return apr_psprintf(pool, "%s (qwdctl)", entry ? entry->pw_name : "?");
}

static int extend(apr_pool_t *pool, const ops_options *opt)
{
    char *end;
    long seconds = opt->nargs == 2 ? strtol(opt->args[1], &end, 10) : 0;
    if (opt->nargs != 2 || *end || seconds <= 0 || seconds > INT32_MAX) {
        return usage_error("extend needs an ID and a number of SECONDS");
    }
    json_t *session = call(pool, opt, QWD_OP_EXTEND,
                           json_pack("{s:s, s:i, s:s}", "id", opt->args[0], "seconds", (int)seconds,
                                     "by", calling_user(pool)));
    if (!session) {
        return 1;
    }
    if (opt->json) {
        print_json(session);
    }
    else {
        printf("session %s expires %lld (in %s)\n",
               json_string_value(json_object_get(session, "id")),
               json_integer_value(json_object_get(session, "expires")),
               time_left(pool, json_integer_value(json_object_get(session, "expires"))));
    }
    return 0;
}

static int metrics(apr_pool_t *pool, const ops_options *opt)
{
    json_t *result = call(pool, opt, QWD_OP_METRICS, json_object());
    if (!result) {
        return 1;
    }
    if (opt->json) {
        print_json(result);
        return 0;
    }
    const char *text = qwd_metrics_text(pool, json_object_get(result, "families"));
    if (!text) {
        fprintf(stderr, "qwdctl: protocol: the helper's metrics are malformed\n");
        return 1;
    }
    fputs(text, stdout);
    return 0;
}

static int events(apr_pool_t *pool, const ops_options *opt)
{
    json_t *result =
        call(pool, opt, QWD_OP_EVENTS, json_pack("{s:I}", "after", (json_int_t)opt->after));
    json_t *event;
    size_t i;
    if (!result) {
        return 1;
    }
    if (opt->json) {
        print_json(result);
        return 0;
    }
    json_array_foreach (json_object_get(result, "events"), i, event) {
        time_t when = (time_t)json_number_value(json_object_get(event, "time"));
        char stamp[32];
        strftime(stamp, sizeof stamp, "%Y-%m-%d %H:%M:%S", localtime(&when));
        const char *reason = json_string_value(json_object_get(event, "reason"));
        const char *by = json_string_value(json_object_get(event, "by"));
        const char *kind = json_string_value(json_object_get(event, "kind"));
        json_t *seconds = json_object_get(event, "seconds");
        printf("%lld  %s  %-8s %s owner=%s%s%s%s%s%s%s%s\n",
               json_integer_value(json_object_get(event, "seq")), stamp,
               json_string_value(json_object_get(event, "event")),
               json_string_value(json_object_get(event, "session")),
               json_string_value(json_object_get(event, "owner")), reason ? " reason=" : "",
               reason ? reason : "", by ? " by=" : "", by ? by : "", kind ? " kind=" : "",
               kind ? kind : "",
               json_is_number(seconds)
                   ? apr_psprintf(pool, " seconds=%.0f", json_number_value(seconds))
                   : "");
    }
    return 0;
}

int qwdctl_ops_main(int argc, char **argv)
{
    ops_options opt = {0};
    int status = parse(argc, argv, &opt);
    if (status) {
        return status;
    }
    apr_pool_t *pool;
    apr_pool_create(&pool, NULL);
    if (!strcmp(opt.command, "sessions")) {
        status = sessions(pool, &opt);
    }
    else if (!strcmp(opt.command, "extend")) {
        status = extend(pool, &opt);
    }
    else if (!strcmp(opt.command, "metrics")) {
        status = metrics(pool, &opt);
    }
    else {
        status = events(pool, &opt);
    }
    apr_pool_destroy(pool);
    return status;
}
