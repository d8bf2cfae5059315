/* SPDX-License-Identifier: Apache-2.0 */
/* TLS 1.3 with an external pre-shared key (RFC 8446 §2.2, with (EC)DHE for forward secrecy):
 * both ends build the same PSK session from the secret; a peer without it fails the binder
 * check, and with no certificate configured there is nothing else to fall back to. */
#include "node_channel.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

/* TLS_AES_128_GCM_SHA256: a PSK's hash is fixed by its ciphersuite, and SHA-256 is what
 * every TLS 1.3 client offers an external PSK with. Both ends allow only this suite: a server
 * picking another (AES-256's SHA-384) would ignore the PSK and fail the handshake. */
static const unsigned char PSK_CIPHER[] = {0x13, 0x01};
#define PSK_CIPHERSUITE "TLS_AES_128_GCM_SHA256"
#define RELAY_CHUNK 16384
#define CLOSE_FDS_BELOW 1024

typedef struct channel_key {
    char *identity;
    unsigned char key[NODE_SECRET_BYTES];
} channel_key;

static int key_index = -1;

int node_channel_parse_secret(const char *text, unsigned char key[NODE_SECRET_BYTES])
{
    if (!text || strlen(text) != NODE_SECRET_HEX) {
        return -1;
    }
    for (int i = 0; i < NODE_SECRET_BYTES; i++) {
        unsigned value;
        if (sscanf(text + 2 * i, "%2x", &value) != 1 || !strchr("0123456789abcdef", text[2 * i])
            || !strchr("0123456789abcdef", text[2 * i + 1])) {
            return -1;
        }
        key[i] = (unsigned char)value;
    }
    return 0;
}

void node_channel_format_secret(const unsigned char key[NODE_SECRET_BYTES],
                                char hex[NODE_SECRET_HEX + 1])
{
    for (int i = 0; i < NODE_SECRET_BYTES; i++) {
        snprintf(hex + 2 * i, 3, "%02x", key[i]);
    }
}

static void free_key(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int index, long argl, void *argp)
{
    channel_key *key = ptr;
    if (key) {
        OPENSSL_cleanse(key->key, sizeof key->key);
        free(key->identity);
        free(key);
    }
}

static const channel_key *key_of(SSL *ssl)
{
    return SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), key_index);
}

static SSL_SESSION *psk_session(SSL *ssl, const channel_key *key)
{
    const SSL_CIPHER *cipher = SSL_CIPHER_find(ssl, PSK_CIPHER);
    SSL_SESSION *session = cipher ? SSL_SESSION_new() : NULL;
    if (session
        && (!SSL_SESSION_set1_master_key(session, key->key, sizeof key->key)
            || !SSL_SESSION_set_cipher(session, cipher)
            || !SSL_SESSION_set_protocol_version(session, TLS1_3_VERSION))) {
        SSL_SESSION_free(session);
        session = NULL;
    }
    return session;
}

/* The node: the client's identity must be the session's; otherwise no PSK, no handshake. */
static int find_psk(SSL *ssl, const unsigned char *identity, size_t identity_len,
                    SSL_SESSION **session)
{
    const channel_key *key = key_of(ssl);
    *session = NULL;
    if (key && identity_len == strlen(key->identity)
        && !memcmp(identity, key->identity, identity_len)) {
        *session = psk_session(ssl, key);
    }
    return 1;
}

static int use_psk(SSL *ssl, const EVP_MD *md, const unsigned char **identity, size_t *identity_len,
                   SSL_SESSION **session)
{
    const channel_key *key = key_of(ssl);
    const SSL_CIPHER *cipher = SSL_CIPHER_find(ssl, PSK_CIPHER);
    *session = NULL;
    if (!key || !cipher || (md && md != SSL_CIPHER_get_handshake_digest(cipher))) {
        return 1; /* a HelloRetryRequest chose another hash: no PSK fits */
    }
    *session = psk_session(ssl, key);
    *identity = (const unsigned char *)key->identity;
    *identity_len = strlen(key->identity);
    return *session ? 1 : 0;
}

SSL_CTX *node_channel_context(int server, const char *identity,
                              const unsigned char key[NODE_SECRET_BYTES])
{
    if (key_index < 0) {
        key_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, free_key);
    }
    SSL_CTX *ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
    channel_key *copy = calloc(1, sizeof *copy);
    if (!ctx || !copy || !(copy->identity = strdup(identity)) || key_index < 0) {
        if (copy) {
            free(copy->identity);
        }
        free(copy);
        SSL_CTX_free(ctx);
        return NULL;
    }
    memcpy(copy->key, key, sizeof copy->key);
    SSL_CTX_set_ex_data(ctx, key_index, copy);
    SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
    SSL_CTX_set_ciphersuites(ctx, PSK_CIPHERSUITE);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    /* no resumption tickets: every connection proves the secret again */
    SSL_CTX_set_num_tickets(ctx, 0);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    if (server) {
        SSL_CTX_set_psk_find_session_callback(ctx, find_psk);
    }
    else {
        SSL_CTX_set_psk_use_session_callback(ctx, use_psk);
    }
    return ctx;
}

/* Blocking I/O bounded by the handshake's deadline. */
static void set_timeouts(int fd, int seconds)
{
    struct timeval timeout = {.tv_sec = seconds};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
}

static SSL *handshake(SSL_CTX *ctx, int fd, int server)
{
    SSL *ssl = SSL_new(ctx);
    if (!ssl || !SSL_set_fd(ssl, fd)) {
        SSL_free(ssl);
        return NULL;
    }
    set_timeouts(fd, NODE_CHANNEL_HANDSHAKE_S);
    if ((server ? SSL_accept(ssl) : SSL_connect(ssl)) != 1) {
        SSL_free(ssl);
        return NULL;
    }
    set_timeouts(fd, 0);
    return ssl;
}

SSL *node_channel_accept(SSL_CTX *ctx, int fd)
{
    return handshake(ctx, fd, 1);
}

SSL *node_channel_connect(SSL_CTX *ctx, const char *host, int port, const char **problem)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV}, *found;
    char service[16];
    snprintf(service, sizeof service, "%d", port);
    if (getaddrinfo(host, service, &hints, &found) != 0) {
        *problem = "cannot resolve the node's address";
        return NULL;
    }
    int fd = socket(found->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    set_timeouts(fd, NODE_CHANNEL_HANDSHAKE_S);
    int connected = fd >= 0 && connect(fd, found->ai_addr, found->ai_addrlen) == 0;
    freeaddrinfo(found);
    if (!connected) {
        *problem = "cannot connect to the node";
        if (fd >= 0) {
            close(fd);
        }
        return NULL;
    }
    SSL *ssl = handshake(ctx, fd, 0);
    if (!ssl) {
        *problem = "the node refused the channel's handshake";
        close(fd);
    }
    return ssl;
}

void node_channel_close(SSL *ssl)
{
    if (ssl) {
        int fd = SSL_get_fd(ssl);
        SSL_shutdown(ssl);
        SSL_free(ssl);
        close(fd);
    }
}

void node_channel_close_others(int keep, int keep2)
{
    for (int fd = STDERR_FILENO + 1; fd < CLOSE_FDS_BELOW; fd++) {
        if (fd != keep && fd != keep2) {
            close(fd);
        }
    }
}

typedef struct relay_buffer {
    unsigned char data[RELAY_CHUNK];
    size_t length, offset;
} relay_buffer;

/* What poll() waits for before the TLS side may go on after SSL_read or SSL_write returned n,
 * or 0 when that side is done (closed or failed). */
static short ssl_waits_for(SSL *ssl, int n)
{
    int error = SSL_get_error(ssl, n);
    if (error == SSL_ERROR_WANT_READ) {
        return POLLIN;
    }
    if (error == SSL_ERROR_WANT_WRITE) {
        return POLLOUT;
    }
    return 0;
}

/* n more bytes of buffer went out; an emptied buffer takes the next read. */
static void relay_sent(relay_buffer *buffer, size_t n)
{
    buffer->offset += n;
    if (buffer->offset == buffer->length) {
        buffer->length = 0;
    }
}

void node_channel_relay(SSL *ssl, int plain_fd)
{
    int ssl_fd = SSL_get_fd(ssl);
    relay_buffer *to_plain = calloc(1, sizeof *to_plain), *to_ssl = calloc(1, sizeof *to_ssl);
    int ssl_done = 0, plain_done = 0;
    fcntl(ssl_fd, F_SETFL, fcntl(ssl_fd, F_GETFL) | O_NONBLOCK);
    fcntl(plain_fd, F_SETFL, fcntl(plain_fd, F_GETFL) | O_NONBLOCK);
    while (to_plain && to_ssl && !(ssl_done && !to_plain->length)
           && !(plain_done && !to_ssl->length)) {
        short ssl_events = 0, plain_events = 0;
        int progress = 1;
        while (progress) {
            progress = 0;
            if (!to_plain->length && !ssl_done) {
                int n = SSL_read(ssl, to_plain->data, sizeof to_plain->data);
                if (n > 0) {
                    to_plain->length = (size_t)n;
                    to_plain->offset = 0;
                    progress = 1;
                }
                else {
                    short wanted = ssl_waits_for(ssl, n);
                    ssl_events |= wanted;
                    ssl_done = !wanted;
                }
            }
            if (to_plain->length) {
                ssize_t n = write(plain_fd, to_plain->data + to_plain->offset,
                                  to_plain->length - to_plain->offset);
                if (n > 0) {
                    relay_sent(to_plain, (size_t)n);
                    progress = 1;
                }
                else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
                    plain_events |= POLLOUT;
                }
                else {
                    plain_done = ssl_done = 1; /* the plain side is gone: nothing to deliver */
                    to_plain->length = to_ssl->length = 0;
                }
            }
            if (!to_ssl->length && !plain_done) {
                ssize_t n = read(plain_fd, to_ssl->data, sizeof to_ssl->data);
                if (n > 0) {
                    to_ssl->length = (size_t)n;
                    to_ssl->offset = 0;
                    progress = 1;
                }
                else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
                    plain_events |= POLLIN;
                }
                else {
                    plain_done = 1;
                }
            }
            if (to_ssl->length) {
                int n = SSL_write(ssl, to_ssl->data + to_ssl->offset,
                                  (int)(to_ssl->length - to_ssl->offset));
                if (n > 0) {
                    relay_sent(to_ssl, (size_t)n);
                    progress = 1;
                }
                else {
                    short wanted = ssl_waits_for(ssl, n);
                    ssl_events |= wanted;
                    if (!wanted) {
                        ssl_done = plain_done = 1;
                        to_ssl->length = to_plain->length = 0;
                    }
                }
            }
            if ((ssl_done && !to_plain->length) || (plain_done && !to_ssl->length)) {
                break;
            }
        }
        if ((ssl_done && !to_plain->length) || (plain_done && !to_ssl->length)) {
            break;
        }
        struct pollfd fds[2] = {{.fd = ssl_fd, .events = ssl_events},
                                {.fd = plain_fd, .events = plain_events}};
        if (poll(fds, 2, -1) < 0 && errno != EINTR) {
            break;
        }
        if ((fds[0].revents & (POLLERR | POLLHUP)) && !(fds[0].revents & POLLIN)) {
            ssl_done = 1;
        }
        if ((fds[1].revents & (POLLERR | POLLHUP)) && !(fds[1].revents & POLLIN)) {
            plain_done = 1;
        }
    }
    free(to_plain);
    free(to_ssl);
}
