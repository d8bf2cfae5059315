/* SPDX-License-Identifier: Apache-2.0 */
/* Talking to mail servers with libcurl: the authn providers "imap" and "smtp" (log in as the
 * user; usable by mod_qwd, mod_auth_basic and mod_auth_form alike) and the mailer that sends
 * login codes through QwdSMTPRelay. TLS settings come from QwdMail* directives. */
#ifndef QWD_MAIL_H
#define QWD_MAIL_H

#include <curl/curl.h>

#include "qwd_request.h"

/* register_hooks: registers the authn providers "imap" and "smtp". */
void qwd_authn_mail_register(apr_pool_t *pool);
/* post_config: libcurl's global init, once in the parent. */
int qwd_mail_post_config(apr_pool_t *pconf, server_rec *s);

/* A libcurl handle for url with the Location's TLS, timeout and certificate settings: an
 * imap:// or smtp:// URL must upgrade with STARTTLS, imaps:// and smtps:// start in TLS.
 * The handle is cleaned up with pool; error_buffer gets libcurl's message. */
CURL *qwd_mail_curl(apr_pool_t *pool, const qwd_dir_config_t *cfg, const char *url,
                    char *error_buffer);

/* Sends a plain-text message to `to` through QwdSMTPRelay. NULL on success; a 503 when no
 * relay is configured or it refused. */
qwd_error_t *qwd_mail_send(qwd_req_t *q, const char *to, const char *subject, const char *body);

#endif
