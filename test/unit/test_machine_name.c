/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of machine-name validation: plain names pass, anything path-like is refused. */
#include "unit.h"

#include "qwd_machine_name.h"

UNIT_TEST(machine_name_accepts_plain_names)
{
    CHECK(qwd_machine_name_problem("tiny.qcow2") == NULL);
    CHECK(qwd_machine_name_problem("debian-12 amd64.iso") == NULL);
}

UNIT_TEST(machine_name_rejects_paths_and_hidden_files)
{
    CHECK(qwd_machine_name_problem(NULL) != NULL);
    CHECK(qwd_machine_name_problem("") != NULL);
    CHECK(qwd_machine_name_problem("/etc/passwd") != NULL);
    CHECK(qwd_machine_name_problem("../tiny.qcow2") != NULL);
    CHECK(qwd_machine_name_problem("a/../../b") != NULL);
    CHECK(qwd_machine_name_problem("..") != NULL);
    CHECK(qwd_machine_name_problem(".hidden.qcow2") != NULL);
    CHECK(qwd_machine_name_problem("tiny..qcow2") != NULL);
    CHECK(qwd_machine_name_problem("a\\b") != NULL);
    CHECK(qwd_machine_name_problem("a\nb") != NULL);
    CHECK(qwd_machine_name_problem("caf\xc3\xa9") != NULL);
    char long_name[QWD_MACHINE_NAME_MAX + 2];
    memset(long_name, 'a', sizeof long_name - 1);
    long_name[sizeof long_name - 1] = '\0';
    CHECK(qwd_machine_name_problem(long_name) != NULL);
}
