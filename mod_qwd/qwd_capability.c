/* SPDX-License-Identifier: Apache-2.0 */
/* Session link capabilities (qwd_capability.h): the link is derived from the row id rather than
 * random, so the sessions page and the API can show it again without the row holding it. */
#include "qwd_capability.h"
#include "qwd_secret.h"

#include <apr_strings.h>

const char *qwd_link_capability(qwd_req_t *q, const char *session_id)
{
    const char *mac = qwd_secret_sign(q, apr_pstrcat(q->r->pool, "link|", session_id, NULL));
    return apr_pstrmemdup(q->r->pool, mac, QWD_LINK_CAPABILITY_HEX);
}

const char *qwd_link_key(qwd_req_t *q, const char *capability)
{
    return qwd_secret_sign(q, apr_pstrcat(q->r->pool, "link-key|", capability, NULL));
}
