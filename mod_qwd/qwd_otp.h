/* SPDX-License-Identifier: Apache-2.0 */
/* Logins that end with a mailed secret: QwdAuth email (a single-use link to an address of
 * QwdEmailDomain) and QwdMFA email (a single-use code after the password). The create the user
 * asked for waits in SQLite (qwd_pending) until the secret comes back. */
#ifndef QWD_OTP_H
#define QWD_OTP_H

#include "qwd_request.h"

/* POST / when qwd_auth_needs_mail(): first step (mail the link or code) or, with the field
 * otp_ref, the code step of MFA. */
int qwd_otp_page_create(qwd_req_t *q);
/* GET /login?token=T (the mailed link: a confirmation form, so that mail scanners that fetch
 * links do not spend it) and POST /login (spends the token, starts the machine). */
int qwd_otp_page_login(qwd_req_t *q);

#endif
