/* SPDX-License-Identifier: Apache-2.0 */
/* Start-up scripts from the form and the API. A URL must begin with one of the admin's prefixes
 * as written (no dot segment, escape, user or fragment can move it elsewhere, and libcurl is told
 * neither to normalise the path nor to follow redirects); its body is read up to the cap. */
#include "qwd_script_source.h"
#include "qwd_mail.h"

#include <apr_strings.h>
#include <http_protocol.h>

/* Seconds a script URL may take to answer. */
#define FETCH_TIMEOUT_S 10
#define HTTP_STATUS_OK 200

static int given(const char *text)
{
    return text && *text;
}

static qwd_error_t *bad(qwd_req_t *q, int status, const char *logno, const char *field,
                        const char *message)
{
    qwd_error_t *e = qwd_err(q, status, logno, "bad_field", "%s", message);
    e->field = field;
    return e;
}

/* Whether url lies below a prefix of the Location and cannot leave it. */
static int url_allowed(qwd_req_t *q, const char *url)
{
    const apr_array_header_t *prefixes = q->cfg->script_url_prefixes;
    int i;
    if (!prefixes || strpbrk(url, " \t\r\n\"<>\\%#@") || strstr(url, "/.")) {
        return 0;
    }
    for (i = 0; i < prefixes->nelts; i++) {
        const char *prefix = APR_ARRAY_IDX(prefixes, i, const char *);
        if (!strncmp(url, prefix, strlen(prefix)) && url[strlen(prefix)]) {
            return 1;
        }
    }
    return 0;
}

typedef struct {
    char *data;
    apr_size_t length;
    apr_size_t max; /* one byte more is kept, to know it was too large */
    apr_pool_t *pool;
} fetched_t;

static size_t keep(char *bytes, size_t size, size_t count, void *userdata)
{
    fetched_t *fetched = userdata;
    apr_size_t n = size * count, room = fetched->max + 1 - fetched->length;
    if (n > room) {
        n = room;
    }
    memcpy(fetched->data + fetched->length, bytes, n);
    fetched->length += n;
    return fetched->length > fetched->max ? 0 : size * count; /* 0 stops the transfer */
}

static qwd_error_t *fetch(qwd_req_t *q, qwd_script_request_t *request, int max)
{
    char error_buffer[CURL_ERROR_SIZE] = "";
    fetched_t fetched = {apr_palloc(q->r->pool, (apr_size_t)max + 2), 0, (apr_size_t)max,
                         q->r->pool};
    long status = 0;
    CURLcode rc;
    qwd_error_t *e;
    CURL *curl = curl_easy_init();
    if (!curl) {
        return qwd_err(q, HTTP_INTERNAL_SERVER_ERROR, QWDLOGNO(03401), "internal",
                       "The script could not be fetched.");
    }
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, error_buffer);
    curl_easy_setopt(curl, CURLOPT_URL, request->url);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, (long)FETCH_TIMEOUT_S);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT, (long)FETCH_TIMEOUT_S);
    curl_easy_setopt(curl, CURLOPT_PATH_AS_IS, 1L);
    curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, keep);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &fetched);
    rc = curl_easy_perform(curl);
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(curl);
    if (fetched.length > fetched.max) {
        e = bad(q, HTTP_REQUEST_ENTITY_TOO_LARGE, QWDLOGNO(03402), "script_url",
                apr_psprintf(q->r->pool, "The script at this URL is larger than %d bytes.", max));
        return e;
    }
    if (rc != CURLE_OK || status != HTTP_STATUS_OK
        || strlen(apr_pstrmemdup(q->r->pool, fetched.data, fetched.length)) != fetched.length) {
        e = bad(q, HTTP_BAD_REQUEST, QWDLOGNO(03403), "script_url",
                "The script could not be fetched from this URL.");
        e->detail = apr_psprintf(q->r->pool, "%s: %s (HTTP %ld)", request->url,
                                 *error_buffer ? error_buffer : curl_easy_strerror(rc), status);
        return e;
    }
    request->text = apr_pstrmemdup(q->r->pool, fetched.data, fetched.length);
    return NULL;
}

qwd_error_t *qwd_script_check(qwd_req_t *q, json_t *scripts, qwd_script_request_t *request)
{
    int max = qwd_cfg_script_max(q->cfg);
    json_t *script;
    size_t i;
    if (given(request->name) + given(request->text) + given(request->url) > 1) {
        return bad(q, HTTP_BAD_REQUEST, QWDLOGNO(03404),
                   given(request->url) ? "script_url" : "script_text",
                   "Choose one start-up script: a listed one, your own text or a URL.");
    }
    if (given(request->name)) {
        json_array_foreach (scripts, i, script) {
            const char *name = json_string_value(json_object_get(script, "name"));
            if (name && !strcmp(name, request->name)) {
                return NULL;
            }
        }
        return bad(q, HTTP_BAD_REQUEST, QWDLOGNO(03405), "script", "There is no such script.");
    }
    if (given(request->text)) {
        if (!qwd_cfg_script_text(q->cfg)) {
            return bad(q, HTTP_BAD_REQUEST, QWDLOGNO(03406), "script_text",
                       "Scripts of your own are not allowed here; choose a listed one.");
        }
        if (strlen(request->text) > (apr_size_t)max) {
            return bad(q, HTTP_REQUEST_ENTITY_TOO_LARGE, QWDLOGNO(03407), "script_text",
                       apr_psprintf(q->r->pool, "The script is larger than %d bytes.", max));
        }
        return NULL;
    }
    if (given(request->url)) {
        if (!url_allowed(q, request->url)) {
            return bad(q, HTTP_BAD_REQUEST, QWDLOGNO(03408), "script_url",
                       "Scripts may only come from the addresses this site lists.");
        }
        return fetch(q, request, max);
    }
    return NULL;
}
