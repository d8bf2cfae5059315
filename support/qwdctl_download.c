/* SPDX-License-Identifier: Apache-2.0 */
/* Downloads a catalogue image with libcurl: only http and https (also after redirects), resumed
 * from a partial file, hashed (sha256) while it arrives, with a progress line on stderr. */
#include "qwdctl_download.h"

#include <apr_strings.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define READ_CHUNK (1024 * 1024)
#define MIB (1024.0 * 1024.0)
#define CONNECT_TIMEOUT_S 30L
/* A transfer slower than 1 byte/s for this long is given up (and resumed by the next run). */
#define STALL_TIMEOUT_S 60L
#define MAX_REDIRECTS 5L
/* How often the progress line is redrawn on a terminal, and written elsewhere (a log). */
#define PROGRESS_TTY_S 0.2
#define PROGRESS_LOG_S 2.0
#define HTTP_OK 200
#define HTTP_PARTIAL_CONTENT 206
#define HTTP_RANGE_NOT_SATISFIABLE 416
#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "0"
#endif
#define USER_AGENT "qwdctl/" PACKAGE_VERSION

typedef struct transfer {
    qwdctl_download *download;
    apr_pool_t *pool;
    CURL *curl;
    int fd;
    EVP_MD_CTX *hash;
    apr_off_t offset;      /* bytes in the file before this transfer */
    apr_off_t written;     /* bytes written by this transfer */
    apr_off_t range_start; /* the start of the server's Content-Range, or -1 */
    int started;           /* the first body bytes were seen */
    const char *problem;   /* why the write callback stopped the transfer */
    double last_progress;  /* when the progress line was last written */
    double began;          /* when this transfer began */
    int tty;               /* stderr is a terminal: redraw one line */
} transfer;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void hex_digest(EVP_MD_CTX *hash, char hex[QWD_SHA256_HEX_LENGTH + 1])
{
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int length = 0;
    EVP_DigestFinal_ex(hash, digest, &length);
    for (unsigned int i = 0; i < length && 2 * i < QWD_SHA256_HEX_LENGTH; i++) {
        snprintf(hex + 2 * i, 3, "%02x", digest[i]);
    }
    hex[QWD_SHA256_HEX_LENGTH] = '\0';
}

/* Hashes the first length bytes of fd. Returns 0, or an errno. */
static int hash_fd(int fd, apr_off_t length, EVP_MD_CTX *hash)
{
    static unsigned char buffer[READ_CHUNK];
    for (apr_off_t at = 0; at < length;) {
        size_t want = length - at < READ_CHUNK ? (size_t)(length - at) : READ_CHUNK;
        ssize_t n = pread(fd, buffer, want, at);
        if (n <= 0) {
            return n < 0 ? errno : EIO;
        }
        EVP_DigestUpdate(hash, buffer, (size_t)n);
        at += n;
    }
    return 0;
}

const char *qwdctl_sha256_file(apr_pool_t *pool, const char *path,
                               char hex[QWD_SHA256_HEX_LENGTH + 1])
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat info;
    if (fd < 0 || fstat(fd, &info) != 0) {
        const char *problem = apr_psprintf(pool, "%s: %s", path, strerror(errno));
        if (fd >= 0) {
            close(fd);
        }
        return problem;
    }
    EVP_MD_CTX *hash = EVP_MD_CTX_new();
    EVP_DigestInit_ex(hash, EVP_sha256(), NULL);
    int error = hash_fd(fd, (apr_off_t)info.st_size, hash);
    close(fd);
    if (!error) {
        hex_digest(hash, hex);
    }
    EVP_MD_CTX_free(hash);
    return error ? apr_psprintf(pool, "%s: %s", path, strerror(error)) : NULL;
}

/* "Content-Range: bytes START-END/TOTAL": START, for the check that a resumed transfer
 * continues where the file ends. */
static size_t on_header(char *data, size_t size, size_t count, void *userdata)
{
    transfer *t = userdata;
    size_t length = size * count;
    static const char name[] = "content-range:";
    if (length > sizeof name && !strncasecmp(data, name, sizeof name - 1)) {
        const char *value = data + sizeof name - 1;
        value += strspn(value, " \t");
        long long start;
        if (!strncasecmp(value, "bytes ", 6) && sscanf(value + 6, "%lld-", &start) == 1) {
            t->range_start = (apr_off_t)start;
        }
    }
    return length;
}

/* The first body bytes decide how the file is written: appended after a 206 that starts where
 * it ends, written anew after a 200 (the server sent the whole file). */
static int start_body(transfer *t)
{
    long code = 0;
    curl_easy_getinfo(t->curl, CURLINFO_RESPONSE_CODE, &code);
    if (code == HTTP_PARTIAL_CONTENT && t->range_start != t->offset) {
        t->problem = apr_psprintf(
            t->pool, "the server resumed at byte %" APR_OFF_T_FMT ", not at %" APR_OFF_T_FMT,
            t->range_start, t->offset);
        return -1;
    }
    if (code != HTTP_PARTIAL_CONTENT && t->offset > 0) {
        fprintf(stderr, "%s: the server sends the whole file (HTTP %ld): starting over\n",
                t->download->label, code);
        if (ftruncate(t->fd, 0) != 0) {
            t->problem = apr_psprintf(t->pool, "%s: %s", t->download->path, strerror(errno));
            return -1;
        }
        EVP_DigestInit_ex(t->hash, EVP_sha256(), NULL);
        t->offset = 0;
    }
    else if (t->offset > 0) {
        fprintf(stderr, "%s: resuming after %" APR_OFF_T_FMT " bytes\n", t->download->label,
                t->offset);
    }
    t->started = 1;
    return 0;
}

static size_t on_body(char *data, size_t size, size_t count, void *userdata)
{
    transfer *t = userdata;
    size_t length = size * count;
    if (!t->started && start_body(t) != 0) {
        return 0; /* stops the transfer: CURLE_WRITE_ERROR */
    }
    for (size_t done = 0; done < length;) {
        ssize_t n = pwrite(t->fd, data + done, length - done, t->offset + t->written);
        if (n < 0) {
            t->problem = apr_psprintf(t->pool, "%s: %s", t->download->path, strerror(errno));
            return 0;
        }
        EVP_DigestUpdate(t->hash, data + done, (size_t)n);
        done += (size_t)n;
        t->written += n;
    }
    return length;
}

static void print_progress(transfer *t, curl_off_t total, int last)
{
    double now = now_s(), elapsed = now - t->began;
    double have = (double)(t->offset + t->written) / MIB;
    double rate = elapsed > 0 ? (double)t->written / MIB / elapsed : 0;
    char percent[16] = "";
    if (total > 0) {
        snprintf(percent, sizeof percent, "%3d%% ",
                 (int)(100.0 * (double)(t->offset + t->written) / (double)(t->offset + total)));
    }
    fprintf(stderr, "%s%s: %s%.1f", t->tty ? "\r" : "", t->download->label, percent, have);
    if (total > 0) {
        fprintf(stderr, " of %.1f", (double)(t->offset + total) / MIB);
    }
    fprintf(stderr, " MiB, %.1f MiB/s%s", rate, t->tty && !last ? "\033[K" : "\n");
    t->last_progress = now;
}

static int on_progress(void *userdata, curl_off_t download_total, curl_off_t downloaded,
                       curl_off_t upload_total, curl_off_t uploaded)
{
    transfer *t = userdata;
    if (t->started && now_s() - t->last_progress >= (t->tty ? PROGRESS_TTY_S : PROGRESS_LOG_S)) {
        print_progress(t, download_total, 0);
    }
    return 0;
}

static const char *perform(transfer *t)
{
    qwdctl_download *download = t->download;
    char error_text[CURL_ERROR_SIZE] = "";
    CURL *curl = t->curl = curl_easy_init();
    if (!curl) {
        return "cannot start libcurl";
    }
    curl_easy_setopt(curl, CURLOPT_URL, download->url);
    /* nothing but HTTP(S), also after a redirect (a catalogue URL never reads local files) */
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(curl, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
#else
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
    curl_easy_setopt(curl, CURLOPT_REDIR_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
    curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(curl, CURLOPT_MAXREDIRS, MAX_REDIRECTS);
    curl_easy_setopt(curl, CURLOPT_FAILONERROR, 1L);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, CONNECT_TIMEOUT_S);
    curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME, STALL_TIMEOUT_S);
    curl_easy_setopt(curl, CURLOPT_USERAGENT, USER_AGENT);
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, error_text);
    curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(curl, CURLOPT_HEADERDATA, t);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, t);
    curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(curl, CURLOPT_XFERINFODATA, t);
    if (t->offset > 0) {
        curl_easy_setopt(curl, CURLOPT_RANGE,
                         apr_psprintf(t->pool, "%" APR_OFF_T_FMT "-", t->offset));
    }
    CURLcode rv = curl_easy_perform(curl);
    long code = 0;
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &code);
    curl_off_t total = -1;
    curl_easy_getinfo(curl, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &total);
    curl_easy_cleanup(curl);
    if (rv == CURLE_HTTP_RETURNED_ERROR && code == HTTP_RANGE_NOT_SATISFIABLE && t->offset > 0) {
        /* nothing after the bytes there: the file is whole (its checksum will tell) */
        fprintf(stderr, "%s: already downloaded (%" APR_OFF_T_FMT " bytes)\n", download->label,
                t->offset);
        return NULL;
    }
    if (t->started) {
        print_progress(t, total, 1);
    }
    if (rv == CURLE_OK && !t->started) {
        t->started = 1; /* an empty file: nothing was written */
    }
    if (rv != CURLE_OK) {
        return t->problem ? t->problem
                          : apr_psprintf(t->pool, "%s: %s", download->url,
                                         *error_text ? error_text : curl_easy_strerror(rv));
    }
    return NULL;
}

const char *qwdctl_download_run(apr_pool_t *pool, qwdctl_download *download)
{
    transfer t = {.download = download, .pool = pool, .range_start = -1, .tty = isatty(2)};
    t.fd = open(download->path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (t.fd < 0) {
        return apr_psprintf(pool, "%s: %s", download->path, strerror(errno));
    }
    /* one fetch of an image at a time (two would write the same partial file) */
    if (flock(t.fd, LOCK_EX | LOCK_NB) != 0) {
        close(t.fd);
        return apr_psprintf(pool, "%s: another qwdctl is downloading it", download->path);
    }
    struct stat info;
    t.hash = EVP_MD_CTX_new();
    EVP_DigestInit_ex(t.hash, EVP_sha256(), NULL);
    int error = fstat(t.fd, &info) != 0 ? errno : hash_fd(t.fd, (apr_off_t)info.st_size, t.hash);
    const char *problem =
        error ? apr_psprintf(pool, "%s: %s", download->path, strerror(error)) : NULL;
    if (!problem) {
        t.offset = (apr_off_t)info.st_size;
        t.began = now_s();
        problem = perform(&t);
    }
    if (!problem && fsync(t.fd) != 0) {
        problem = apr_psprintf(pool, "%s: %s", download->path, strerror(errno));
    }
    if (!problem) {
        hex_digest(t.hash, download->sha256);
        download->kept = t.offset;
        download->size = t.offset + t.written;
    }
    EVP_MD_CTX_free(t.hash);
    close(t.fd);
    return problem;
}
