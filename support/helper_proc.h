/* SPDX-License-Identifier: Apache-2.0 */
/* Child processes of qwd-helper: spawning without a shell (exec errors reported back), pidfds
 * for VMs that are no longer our children, and /proc checks used when re-adopting VMs. */
#ifndef QWD_HELPER_PROC_H
#define QWD_HELPER_PROC_H

#include <apr_pools.h>
#include <sys/types.h>

/* The exit status of a child that could not exec its program (as a shell's). */
#define SPAWN_EXEC_FAILED 127

/* Spawn flags. */
#define SPAWN_NEW_SESSION 1     /* setsid(): a terminal's Ctrl-C or hangup never reaches it */
#define SPAWN_DIE_WITH_PARENT 2 /* PR_SET_PDEATHSIG: it goes when the helper goes */
/* PR_SET_THP_DISABLE (kept across exec): memory grows 4 KiB at a time, never a 2 MiB huge
 * page for one touched byte, even where the program asks for huge pages (QEMU's TCG buffer). */
#define SPAWN_NO_HUGEPAGES 4

/* In a forked child (async-signal-safe): every signal back to its default action, then none
 * blocked, as a freshly started program has them. */
void helper_child_signal_defaults(void);

/* Starts argv[0] with argv, stdin from /dev/null and stdout/stderr to output_fd. Returns 0 and
 * sets *pid, or an errno (exec failures included: the child reports them through a pipe). */
int helper_spawn(const char *const *argv, int output_fd, int flags, pid_t *pid);

/* helper_spawn, but pass_fd (when >= 0) is open in the child as child_fd (e.g. a saved state
 * for QEMU's -incoming fd:N). */
int helper_spawn_passing(const char *const *argv, int output_fd, int flags, int pass_fd,
                         int child_fd, pid_t *pid);

/* Runs argv to completion (output to output_fd). Returns 0 when it exited with status 0,
 * else -1 and *problem describes the failure (in pool). It waits: only for startup, before the
 * loop runs (the loop watches its children instead, helper_events.h). */
int helper_run(apr_pool_t *pool, const char *const *argv, int output_fd, const char **problem);

/* A pollable fd that becomes readable when pid exits (pidfd_open), or -1. */
int helper_pidfd_open(pid_t pid);

/* Whether process pid exists and its command line contains needle. */
int helper_process_matches(pid_t pid, const char *needle);

/* Sends sig to every process of process group pgid whose command line contains needle (a
 * group whose leader is gone: its pid may have been reused). Returns how many. */
int helper_group_signal(pid_t pgid, const char *needle, int sig);

/* Sends sig to every process of the helper's user (other than itself) whose command line
 * contains needle, in any process group. Returns how many. */
int helper_signal_matching(const char *needle, int sig);

/* "exit status N" / "signal N" for a waitpid status, in pool. */
const char *helper_describe_status(apr_pool_t *pool, int status);

/* "ARGV0 failed (exit status N)" for a program that did not exit with 0, in pool. */
const char *helper_describe_failure(apr_pool_t *pool, const char *program, int status);

#endif
