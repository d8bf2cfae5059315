/* SPDX-License-Identifier: Apache-2.0 */
/* What a session link (/s/LINK) is, and what the session's row keeps of it. Both are HMACs
 * under the server's key, so neither the session id nor a copy of the database makes a link. */
#ifndef QWD_CAPABILITY_H
#define QWD_CAPABILITY_H

#include "qwd_request.h"

#define QWD_LINK_CAPABILITY_HEX 32

/* The capability of a session's link: 32 hex digits (128 bits) of HMAC(key, "link|" + id).
 * Never stored: the pages make it again from the id. */
const char *qwd_link_capability(qwd_req_t *q, const char *session_id);
/* What the row keeps to find the session by its link: HMAC(key, "link-key|" + capability). */
const char *qwd_link_key(qwd_req_t *q, const char *capability);

#endif
