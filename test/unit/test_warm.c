/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of the warm-image sidecar parser and profile keys (lib/qwd_warm.c). */
#include "unit.h"

#include "qwd_warm.h"

#include <apr_strings.h>
#include <stdlib.h>
#include <unistd.h>

static qwd_warm_sidecar defaults(void)
{
    qwd_warm_sidecar sidecar = {.ready_delay_s = -1, .cpu = 1, .memory_mib = 1024, .video = "std"};
    return sidecar;
}

UNIT_TEST(warm_sidecar_reads_every_key)
{
    apr_pool_t *pool;
    apr_pool_create(&pool, NULL);
    qwd_warm_sidecar sidecar = defaults();
    CHECK(qwd_warm_sidecar_parse(pool,
                                 "# tiny VM\n ready_serial = QWD-TINY-VM READY \nready_delay=5\n"
                                 "warm_at_start = yes\ncpu = 2\nmemory_mib = 256\nvideo = virtio\n",
                                 &sidecar)
          == NULL);
    CHECK_STR(sidecar.ready_serial, "QWD-TINY-VM READY");
    CHECK(sidecar.ready_delay_s == 5 && sidecar.at_start == 1);
    CHECK(sidecar.cpu == 2 && sidecar.memory_mib == 256);
    CHECK_STR(sidecar.video, "virtio");
    apr_pool_destroy(pool);
}

UNIT_TEST(warm_sidecar_reports_bad_lines_and_keeps_defaults)
{
    apr_pool_t *pool;
    apr_pool_create(&pool, NULL);
    qwd_warm_sidecar sidecar = defaults();
    const char *problem =
        qwd_warm_sidecar_parse(pool,
                               "cpu = lots\nvideo = vga9000\nmemory_mib = 32\n"
                               "warm_at_start = maybe\nnonsense\nready_delay = 7\n",
                               &sidecar);
    CHECK(problem != NULL && strstr(problem, "cpu") != NULL);
    CHECK(sidecar.cpu == 1 && sidecar.memory_mib == 1024 && sidecar.at_start == 0);
    CHECK_STR(sidecar.video, "std");
    CHECK(sidecar.ready_serial == NULL && sidecar.ready_delay_s == 7);
    apr_pool_destroy(pool);
}

UNIT_TEST(warm_sidecar_screen_and_agent_readiness)
{
    apr_pool_t *pool;
    apr_pool_create(&pool, NULL);
    qwd_warm_sidecar sidecar = defaults();
    CHECK(qwd_warm_sidecar_parse(pool, "ready_screen_still = 4\nready_agent = yes\n", &sidecar)
          == NULL);
    CHECK(sidecar.ready_screen_still_s == 4 && sidecar.ready_agent == 1);
    CHECK(sidecar.guest_agent == 1); /* waiting for the agent needs its channel */
    CHECK(sidecar.ready_delay_s == -1 && sidecar.ready_serial == NULL);
    sidecar = defaults();
    CHECK(qwd_warm_sidecar_parse(pool, "guest_agent = yes\n", &sidecar) == NULL);
    CHECK(sidecar.guest_agent == 1 && sidecar.ready_agent == 0);
    sidecar = defaults();
    CHECK(qwd_warm_sidecar_parse(pool, "ready_screen_still = 0\n", &sidecar) != NULL);
    CHECK(qwd_warm_sidecar_parse(pool, "guest_agent = maybe\n", &sidecar) != NULL);
    CHECK(sidecar.ready_screen_still_s == 0 && sidecar.guest_agent == 0);
    apr_pool_destroy(pool);
}

UNIT_TEST(warm_key_names_the_profile)
{
    apr_pool_t *pool;
    apr_pool_create(&pool, NULL);
    CHECK_STR(qwd_warm_key(pool, "tiny.qcow2", 1, 256, "std"), "tiny.qcow2-1c-256m-std");
    apr_pool_destroy(pool);
}

UNIT_TEST(warm_sidecar_names_the_machines_arch)
{
    apr_pool_t *pool;
    apr_pool_create(&pool, NULL);
    qwd_warm_sidecar sidecar = defaults();
    CHECK(qwd_warm_sidecar_parse(pool, "warm_at_start = no\n", &sidecar) == NULL);
    CHECK(sidecar.arch == NULL); /* x86_64 */
    CHECK(qwd_warm_sidecar_parse(pool, "arch = aarch64\n", &sidecar) == NULL);
    CHECK_STR(sidecar.arch, "aarch64");
    /* any word is kept: the machine list says when the helper does not know it */
    CHECK(qwd_warm_sidecar_parse(pool, "arch = riscv64\n", &sidecar) == NULL);
    CHECK_STR(sidecar.arch, "riscv64");
    apr_pool_destroy(pool);
}

UNIT_TEST(warm_file_identity_changes_with_a_rewrite)
{
    char path[] = "/tmp/qwd-unit-identity-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0 && write(fd, "one", 3) == 3);
    json_t *before = qwd_warm_file_identity(path);
    CHECK(before && json_integer_value(json_object_get(before, "size")) == 3);
    CHECK(json_is_integer(json_object_get(before, "mtime_ns"))
          && json_is_integer(json_object_get(before, "inode")));
    json_t *again = qwd_warm_file_identity(path);
    CHECK(json_equal(before, again));
    CHECK(write(fd, "two", 3) == 3);
    json_t *after = qwd_warm_file_identity(path);
    CHECK(after && !json_equal(before, after));
    close(fd);
    unlink(path);
    CHECK(qwd_warm_file_identity(path) == NULL);
    json_decref(before);
    json_decref(again);
    json_decref(after);
}
