/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzz target: one line on the helper's socket, as qwd-helper handles it — parsed and split
 * (lib/qwd_protocol.c), then dispatched to its op (support/helper_ops.c), whose arguments are
 * checked against the configured bounds. The helper runs without VMs: its machines directory
 * is empty, so no op starts anything. Input: the line. */
#include "fuzz.h"
#include "helper.h"
#include "helper_backend_local.h"
#include "helper_config.h"
#include "helper_events.h"
#include "helper_journal.h"
#include "helper_log.h"
#include "helper_metrics.h"
#include "helper_ops.h"
#include "helper_session.h"
#include "helper_usage.h"
#include "helper_warm.h"
#include "qwd_protocol.h"

#include <apr_strings.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static helper the_helper;
static char state_dir[] = "/tmp/qwd-fuzz-protocol.XXXXXX";

static int remove_entry(const char *path, const struct stat *info, int flag, struct FTW *ftw)
{
    return remove(path);
}

static void remove_state(void)
{
    nftw(state_dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    helper *h = &the_helper;
    fuzz_apr_init();
    if (!mkdtemp(state_dir)) {
        perror("mkdtemp");
        exit(1);
    }
    atexit(remove_state);
    apr_pool_create(&h->pool, NULL);
    h->config = helper_config_defaults(h->pool);
    h->config->state_dir = state_dir;
    h->config->machines_dir = apr_pstrcat(h->pool, state_dir, "/machines", NULL);
    h->config->socket = apr_pstrcat(h->pool, state_dir, "/helper.sock", NULL);
    if (mkdir(h->config->machines_dir, 0700) != 0 || helper_config_check(h->pool, h->config)
        || helper_log_open("/dev/null") != 0) {
        fprintf(stderr, "fuzz_protocol: cannot set up the helper in %s\n", state_dir);
        exit(1);
    }
    h->host.qemu_x86_64 = helper_config_qemu(h->config, QWD_ARCH_X86_64);
    h->host.qemu_aarch64 = helper_config_qemu(h->config, QWD_ARCH_AARCH64);
    h->host.firmware_aarch64 = h->config->firmware_aarch64;
    h->host.nic_model = h->config->nic_model;
    h->sessions_dir = apr_pstrcat(h->pool, state_dir, "/sessions", NULL);
    h->token_tmp_dir = apr_pstrcat(h->pool, h->config->token_dir, ".tmp", NULL);
    h->events = helper_events_create();
    helper_metrics_init(h);
    helper_journal_init(h);
    h->usage = helper_usage_cache_make(h->pool); /* as qwd-helper's main makes it */
    helper_sessions_init(h, &helper_backend_local);
    helper_warm_init(h);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    apr_pool_t *pool, *wait_pool;
    const char *code, *message;
    helper_answer answer;
    apr_pool_create(&pool, NULL);
    apr_pool_create(&wait_pool, NULL);
    json_t *request = qwd_proto_parse_line(pool, (const char *)data, size, &code, &message);
    if (request) {
        /* a connection that said hello can ask anything; the first line of one that did not
         * (an odd-sized input) must be hello */
        helper_peer peer = {.uid = getuid(), .pid = getpid(), .said_hello = size % 2 == 0};
        helper_ops_dispatch(&the_helper, pool, wait_pool, &peer, request, &answer);
        json_t *reply = answer.message;
        if (!reply && answer.wait) {
            if (!helper_wait_over(answer.wait)) {
                abort(); /* no session runs: nothing can be waited for */
            }
            reply = helper_wait_reply(answer.wait);
        }
        if (!reply) {
            abort(); /* every request gets an answer */
        }
        char *line = qwd_proto_encode(pool, reply);
        json_decref(reply);
        if (!line) {
            abort();
        }
    }
    apr_pool_destroy(wait_pool);
    apr_pool_destroy(pool);
    return 0;
}
