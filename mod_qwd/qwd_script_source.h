/* SPDX-License-Identifier: Apache-2.0 */
/* Where a session's start-up script comes from (docs/data-sessions.md): one of the admin's
 * scripts by name, text the user typed (only with QwdScriptText On), or a URL below a
 * QwdScriptURLPrefix, which the module fetches itself; typed and fetched text is capped at
 * QwdScriptMaxSize. The helper gets a name or the text, never a URL. */
#ifndef QWD_SCRIPT_SOURCE_H
#define QWD_SCRIPT_SOURCE_H

#include "qwd_request.h"

typedef struct qwd_script_request {
    const char *name; /* an admin script (the helper's machines reply lists them) */
    const char *text; /* the user's own; a URL's contents once fetched */
    const char *url;
} qwd_script_request_t;

/* Checks request (empty strings count as absent) against the Location's directives and the
 * helper's scripts (a JSON array of {name, description}); fetches a URL into request->text.
 * Errors: 400 naming script, script_text or script_url (more than one given, an unknown name,
 * text or a URL not allowed, a fetch that failed), 413 for text over QwdScriptMaxSize. */
qwd_error_t *qwd_script_check(qwd_req_t *q, json_t *scripts, qwd_script_request_t *request);

#endif
