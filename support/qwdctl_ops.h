/* SPDX-License-Identifier: Apache-2.0 */
/* qwdctl's operator commands: sessions (where each runs, who owns it, how long it has left,
 * what it uses), extend, metrics and events; each as a table or, with --json, as JSON. */
#ifndef QWD_QWDCTL_OPS_H
#define QWD_QWDCTL_OPS_H

/* Runs argv when its command is one of these: returns the exit status; -1 when the command is
 * another one (qwdctl.c's). */
int qwdctl_ops_main(int argc, char **argv);

/* The lines of --help about these commands. */
extern const char qwdctl_ops_usage[];

#endif
