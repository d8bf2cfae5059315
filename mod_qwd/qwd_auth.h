/* SPDX-License-Identifier: Apache-2.0 */
/* Who is asking: user names checked through Apache's authn providers (QwdAuth form), taken
 * from r->user (QwdAuth apache) or as given (QwdAuth none); the API's HTTP Basic credentials;
 * the pages' signed identity cookie. Sets q->user and q->is_admin. */
#ifndef QWD_AUTH_H
#define QWD_AUTH_H

#include "qwd_request.h"

#define QWD_MAX_USER_LEN QWD_PROTO_OWNER_MAX /* the helper's bound on a session's owner */

/* Authenticates user + password from a form (password ignored unless QwdAuth form; both
 * ignored for QwdAuth apache, which uses r->user). NULL on success. */
qwd_error_t *qwd_auth_login(qwd_req_t *q, const char *user, const char *password);

/* The password step alone (providers, brute-force throttle), for the mailed second factor:
 * sets q->user on success. */
qwd_error_t *qwd_auth_first_factor(qwd_req_t *q, const char *user, const char *password);
/* Sets q->user (and r->user) once a mailed code or link proved who it is. */
void qwd_auth_set_user(qwd_req_t *q, const char *user);
/* Whether logins of this Location end with a mailed code or link (QwdAuth email, QwdMFA
 * email): qwd_auth_login then refuses, and POST / goes through qwd_otp.c. */
int qwd_auth_needs_mail(const qwd_dir_config_t *cfg);

/* The API's credentials: HTTP Basic (providers, or the name as is with QwdAuth none), or
 * r->user with QwdAuth apache. NULL on success; 401 with a challenge otherwise. */
qwd_error_t *qwd_auth_api(qwd_req_t *q);

/* The pages' identity without a login: r->user (apache) or the identity cookie. Returns
 * whether a user is known. */
int qwd_auth_page_identity(qwd_req_t *q);

#endif
