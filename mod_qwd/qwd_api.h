/* SPDX-License-Identifier: Apache-2.0 */
/* The JSON API under /api (docs/api.md): machines and sessions, HTTP Basic authentication
 * through the same providers as the form. */
#ifndef QWD_API_H
#define QWD_API_H

#include "qwd_request.h"

int qwd_api_handle(qwd_req_t *q);

#endif
