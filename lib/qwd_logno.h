/* SPDX-License-Identifier: Apache-2.0 */
/* Log numbers of mod_qwd and qwd-helper: every warning and error line starts with
 * "QWDnnnnn: " (like httpd's APLOGNO), one number per call site, each registered once with its
 * meaning in docs/log-numbers.md; test_001_docs fails on a duplicate, an unregistered or an
 * unused number, so tests can fail on any number they did not expect. Never reuse a number. */
#ifndef QWD_LOGNO_H
#define QWD_LOGNO_H

#define QWDLOGNO(n) "QWD" #n ": "

#endif
