/* SPDX-License-Identifier: Apache-2.0 */
/* Machine-name validation: a client names a machine, it never gives a path, so anything that
 * could leave the machines directory or hide a file is refused before touching the disk. */
#include "qwd_machine_name.h"

#include <string.h>

const char *qwd_machine_name_problem(const char *name)
{
    if (!name || !*name) {
        return "the machine name is empty";
    }
    if (strlen(name) > QWD_MACHINE_NAME_MAX) {
        return "the machine name is too long";
    }
    if (name[0] == '.') {
        return "the machine name starts with a dot";
    }
    if (strstr(name, "..")) {
        return "the machine name contains \"..\"";
    }
    for (const unsigned char *c = (const unsigned char *)name; *c; c++) {
        if (*c == '/' || *c == '\\') {
            return "the machine name contains a path separator";
        }
        if (*c < 0x20 || *c >= 0x7f) {
            return "the machine name contains a control or non-ASCII character";
        }
    }
    return NULL;
}
