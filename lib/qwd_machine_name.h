/* SPDX-License-Identifier: Apache-2.0 */
/* The pure check of a machine name sent by a client: a plain file name inside the machines
 * directory, never a path. (Symlinks and the list itself are checked by the helper.) */
#ifndef QWD_MACHINE_NAME_H
#define QWD_MACHINE_NAME_H

#define QWD_MACHINE_NAME_MAX 128

/* NULL when name is acceptable, else a readable reason (a static string). Rejects empty or
 * over-long names, '/', '\\', a leading '.', "..", control characters and non-ASCII bytes. */
const char *qwd_machine_name_problem(const char *name);

#endif
