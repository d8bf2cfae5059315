/* SPDX-License-Identifier: Apache-2.0 */
/* mod_qwd's configuration: the per-directory record of a <Location> with SetHandler qwd (every
 * directive also works in server context, merged in), the per-server record, and defaults. */
#ifndef QWD_CONFIG_H
#define QWD_CONFIG_H

#include <httpd.h>
#include <http_config.h>
#include <mod_auth.h>

/* The explicit "not set here" value of every int field; merge takes the child's value unless
 * it is unset. */
#define QWD_UNSET (-1)

typedef enum {
    QWD_AUTH_NONE = 0,
    QWD_AUTH_FORM = 1,
    QWD_AUTH_APACHE = 2,
    QWD_AUTH_EMAIL = 3 /* a one-time link mailed to an address of QwdEmailDomain */
} qwd_auth_mode_t;

typedef enum { QWD_MFA_OFF = 0, QWD_MFA_EMAIL = 1 } qwd_mfa_mode_t;

typedef struct qwd_provider {
    const char *name;
    const authn_provider *provider;
} qwd_provider_t;

typedef struct qwd_dir_config {
    const char *location;          /* the <Location> path the routes are relative to */
    const char *helper_socket;     /* QwdHelperSocket */
    int auth_mode;                 /* QwdAuth: qwd_auth_mode_t */
    apr_array_header_t *providers; /* QwdAuthProvider: qwd_provider_t, in order */
    apr_array_header_t *admins;    /* QwdAdmin: const char * */
    int max_sessions;              /* QwdMaxSessions (0 = no limit) */
    int max_sessions_per_user;     /* QwdMaxSessionsPerUser */
    int max_cpu_per_user;          /* QwdMaxCPUPerUser */
    int max_memory_per_user;       /* QwdMaxMemoryPerUser (MiB) */
    double max_load;               /* QwdMaxLoad (< 0 unset, 0 = no limit) */
    int default_cpu;               /* QwdDefaultCPU */
    int default_memory;            /* QwdDefaultMemory (MiB) */
    int default_lifetime;          /* QwdDefaultLifetime (s) */
    int max_lifetime;              /* QwdMaxLifetime (s) */
    const char *viewer_url;        /* QwdViewerURL */
    const char *websocket_url;     /* QwdWebsocketURL */
    const char *terms;             /* QwdTerms: text, or a URL to a terms page */
    const char *stylesheet;        /* QwdStylesheet */
    const char *static_url; /* QwdStaticURL: where htdocs/ (qwd.css, qwd-progress.js) is served */
    int websocket_tickets;  /* QwdWebsocketTickets: links mint tickets for the gated websocket */
    int websocket_gate;     /* QwdWebsocketGate: check tickets here before mod_proxy */
    apr_off_t max_body;     /* QwdMaxRequestBody (bytes) */
    int cookie_lifetime;    /* QwdCookieLifetime (s) */

    /* Authentication (docs/authentication.md) */
    int throttle_max;                  /* QwdLoginThrottle: failures per user (0 = off) */
    int throttle_window;               /* QwdLoginThrottle: seconds counted and blocked */
    int throttle_addr_max;             /* QwdLoginThrottle: failures per client address */
    const char *imap_server;           /* QwdIMAPServer: imap://host:port (STARTTLS) or imaps:// */
    const char *smtp_auth_server;      /* QwdSMTPAuthServer: smtp:// (STARTTLS) or smtps:// */
    const char *mail_ca_file;          /* QwdMailCACertificate: PEM bundle, else the system's */
    int mail_timeout;                  /* QwdMailTimeout (s) */
    int mail_verify_peer;              /* QwdMailVerifyPeer on|off */
    const char *smtp_relay;            /* QwdSMTPRelay: where mod_qwd sends its mail */
    const char *mail_from;             /* QwdMailFrom */
    apr_array_header_t *email_domains; /* QwdEmailDomain: const char *, lower case */
    int mfa;                           /* QwdMFA: qwd_mfa_mode_t */
    const char *mfa_mail_domain;       /* QwdMFAMailDomain: codes go to user@domain */
    int code_lifetime;                 /* QwdLoginCodeLifetime (s) */

    /* Reserved for later features, parsed by no directive yet; each gets an unset sentinel
     * and a merge rule already so adding the directive is local. */
    apr_array_header_t *mounts;  /* host folders offered to guests */
    int gpu_passthrough;         /* QWD_UNSET / 0 / 1 */
    const char *boot_script_dir; /* scripts run in the guest at boot */
    int readonly_viewers;        /* view-only links */
    const char *slurm_partition; /* run VMs as Slurm jobs */
} qwd_dir_config_t;

#define QWD_SECRET_LEN 32

typedef struct qwd_server_config {
    const char *secret_file; /* QwdSecretFile */
    /* The key that signs CSRF tokens and identity cookies: read or created in post_config by
     * the parent, so every worker process inherits the same one (qwd_secret.c). */
    unsigned char secret[QWD_SECRET_LEN];
    int has_secret;
} qwd_server_config_t;

/* Defaults, applied when a field is still unset after merging. */
#define QWD_DEFAULT_AUTH QWD_AUTH_FORM
#define QWD_DEFAULT_MAX_SESSIONS 20
#define QWD_DEFAULT_MAX_SESSIONS_PER_USER 2
#define QWD_DEFAULT_MAX_CPU_PER_USER 4
#define QWD_DEFAULT_MAX_MEMORY_PER_USER 4096
#define QWD_DEFAULT_CPU 1
#define QWD_DEFAULT_MEMORY 1024
#define QWD_DEFAULT_LIFETIME 3600
#define QWD_DEFAULT_MAX_LIFETIME 86400
#define QWD_DEFAULT_VIEWER_URL "/novnc/vnc.html"
#define QWD_DEFAULT_MAX_BODY 65536
#define QWD_DEFAULT_COOKIE_LIFETIME 86400
#define QWD_DEFAULT_THROTTLE_MAX 10
#define QWD_DEFAULT_THROTTLE_WINDOW 900
#define QWD_DEFAULT_THROTTLE_ADDR_FACTOR 5 /* per address: 5 x the per-user count */
#define QWD_DEFAULT_MAIL_TIMEOUT 10
#define QWD_DEFAULT_CODE_LIFETIME 600

extern module AP_MODULE_DECLARE_DATA qwd_module;
extern const command_rec qwd_directives[];

void *qwd_create_dir_config(apr_pool_t *pool, char *location);
void *qwd_merge_dir_config(apr_pool_t *pool, void *base, void *add);
void *qwd_create_server_config(apr_pool_t *pool, server_rec *s);
void *qwd_merge_server_config(apr_pool_t *pool, void *base, void *add);

/* The value of an int field with its default. */
int qwd_cfg_int(int value, int default_value);
/* Whether user is listed by QwdAdmin. */
int qwd_cfg_is_admin(const qwd_dir_config_t *cfg, const char *user);

#endif
