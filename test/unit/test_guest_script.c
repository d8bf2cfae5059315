/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of the guest's script: placeholders substituted as inert text, checked by running
 * the substituted script in the host's real shells (dash as /bin/sh, bash when installed), and
 * the wrapper's mounts and here-document. */
#include "unit.h"

#include "qwd_guest_script.h"

#include <apr_strings.h>
#include <stdlib.h>
#include <unistd.h>

/* A user name that runs commands wherever a naive substitution puts it. */
static const char nasty_user[] = "x'\"$(touch INJECTED)`touch INJECTED2`;touch INJECTED3 \\ $HOME";

/* Runs script with shell in dir; returns its output (in pool) or NULL. */
static const char *run_in(apr_pool_t *pool, const char *shell, const char *dir, const char *script)
{
    const char *path = apr_pstrcat(pool, dir, "/script.sh", NULL);
    FILE *file = fopen(path, "w");
    if (!file) {
        return NULL;
    }
    fputs(script, file);
    fclose(file);
    FILE *pipe = popen(apr_pstrcat(pool, "cd ", dir, " && ", shell, " ./script.sh", NULL), "r");
    if (!pipe) {
        return NULL;
    }
    char output[4096];
    size_t n = fread(output, 1, sizeof output - 1, pipe);
    pclose(pipe);
    output[n] = '\0';
    return apr_pstrdup(pool, output);
}

UNIT_TEST(script_value_is_plain_or_octal_escapes)
{
    apr_pool_t *pool;
    apr_pool_create(&pool, NULL);
    CHECK_STR(qwd_script_value(pool, "alice.b-c_d@x+y"), "alice.b-c_d@x+y");
    CHECK_STR(qwd_script_value(pool, "a b"), "$(printf '\\141\\040\\142')");
    const char *nasty = qwd_script_value(pool, nasty_user);
    CHECK(!strncmp(nasty, "$(printf '", 10));
    /* past the prefix: nothing but backslashes and octal digits, then "')" */
    CHECK(strspn(nasty + 10, "\\01234567") == strlen(nasty) - 12);
    apr_pool_destroy(pool);
}

UNIT_TEST(script_substitute_replaces_only_the_three_placeholders)
{
    apr_pool_t *pool;
    apr_pool_create(&pool, NULL);
    qwd_script_values values = {"alice", "0123", "tiny.qcow2"};
    CHECK_STR(
        qwd_script_substitute(pool, "u=@USER@ s=@SESSION@ v=@VM@ p=@PASSWORD@ m=a@b @", &values),
        "u=alice s=0123 v=tiny.qcow2 p=@PASSWORD@ m=a@b @");
    apr_pool_destroy(pool);
}

/* Each context a script author may put a placeholder in: the value comes out exactly, and none
 * of the commands in the nasty name runs. */
UNIT_TEST(script_substitute_runs_nothing_of_the_value_in_real_shells)
{
    apr_pool_t *pool;
    apr_pool_create(&pool, NULL);
    qwd_script_values values = {nasty_user, "s", "vm"};
    const char *script = qwd_script_substitute(pool,
                                               "printf '[%s]\\n' @USER@\n"
                                               "printf '[%s]\\n' \"@USER@\"\n"
                                               "cat <<EOF\n[@USER@]\nEOF\n"
                                               "printf '[%s]\\n' \"`echo \\\"@USER@\\\"`\"\n",
                                               &values);
    const char *shells[] = {"/bin/sh", "/bin/bash", "/bin/busybox sh"};
    for (size_t i = 0; i < sizeof shells / sizeof shells[0]; i++) {
        if (access(apr_pstrndup(pool, shells[i], strcspn(shells[i], " ")), X_OK) != 0) {
            continue;
        }
        char dir[] = "/tmp/qwd-unit-XXXXXX";
        CHECK(mkdtemp(dir) != NULL);
        const char *output = run_in(pool, shells[i], dir, script);
        const char *bracketed = apr_pstrcat(pool, "[", nasty_user, "]\n", NULL);
        CHECK(output != NULL);
        if (output) {
            /* the quoted forms keep the value whole (the bare word splits on its spaces) */
            CHECK(strstr(output, bracketed) != NULL);
            if (!strstr(output, bracketed)) {
                fprintf(stderr, "  %s printed: %s\n", shells[i], output);
            }
        }
        const char *injected[] = {"INJECTED", "INJECTED2", "INJECTED3"};
        for (size_t k = 0; k < 3; k++) {
            CHECK(access(apr_pstrcat(pool, dir, "/", injected[k], NULL), F_OK) != 0);
        }
        system(apr_pstrcat(pool, "rm -rf ", dir, NULL));
    }
    apr_pool_destroy(pool);
}

UNIT_TEST(guest_script_mounts_then_runs_the_script_from_a_heredoc)
{
    apr_pool_t *pool;
    apr_pool_create(&pool, NULL);
    qwd_script_values values = {"o'brien", "id", "vm"};
    qwd_guest_mount mounts[] = {{"home", "/mnt/home", 0}, {"data", "/mnt/data", 1}};
    CHECK(qwd_guest_script(pool, NULL, 0, NULL, &values) == NULL);
    const char *text = qwd_guest_script(pool, mounts, 2, "echo hi\nQWD_SCRIPT_END\n", &values);
    CHECK(!strncmp(text, "#!/bin/sh\n", 10));
    CHECK(strstr(text, "export QWD_USER='o'\\''brien' QWD_SESSION='id' QWD_VM='vm'\n") != NULL);
    CHECK(strstr(text, "qwd_mount home /mnt/home ''\nqwd_mount data /mnt/data ,ro\n") != NULL);
    /* the script's own line QWD_SCRIPT_END does not end the here-document */
    CHECK(strstr(text, "<<'QWD_SCRIPT_END_'\necho hi\nQWD_SCRIPT_END\nQWD_SCRIPT_END_\n") != NULL);
    CHECK(qwd_guest_mount_point_is_valid("/mnt/data"));
    CHECK(!qwd_guest_mount_point_is_valid("/mnt/../etc"));
    CHECK(!qwd_guest_mount_point_is_valid("mnt"));
    CHECK(!qwd_guest_mount_point_is_valid("/mnt/a b"));
    apr_pool_destroy(pool);
}

UNIT_TEST(guest_script_runs_in_a_shell_with_its_exit_status)
{
    apr_pool_t *pool;
    apr_pool_create(&pool, NULL);
    qwd_script_values values = {"alice", "id", "vm"};
    char dir[] = "/tmp/qwd-unit-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    const char *script = qwd_guest_script(
        pool, NULL, 0, "#!/bin/sh\necho \"user=$QWD_USER\" > out; exit 3\n", &values);
    const char *path = apr_pstrcat(pool, dir, "/guest.sh", NULL);
    FILE *file = fopen(path, "w");
    CHECK(file != NULL);
    if (file) {
        fputs(script, file);
        fclose(file);
        int status =
            system(apr_pstrcat(pool, "cd ", dir, " && TMPDIR=", dir, " sh guest.sh", NULL));
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 3);
        FILE *out = fopen(apr_pstrcat(pool, dir, "/out", NULL), "r");
        char line[64] = "";
        CHECK(out && fgets(line, sizeof line, out));
        CHECK_STR(line, "user=alice\n");
        if (out) {
            fclose(out);
        }
    }
    system(apr_pstrcat(pool, "rm -rf ", dir, NULL));
    apr_pool_destroy(pool);
}
