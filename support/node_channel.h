/* SPDX-License-Identifier: Apache-2.0 */
/* The display channel between a cluster node (qwd-node) and the web host (qwd-helper): TLS 1.3
 * authenticated both ways by a per-session pre-shared key (identity: the session id), no
 * certificates. Only a peer holding the session's secret completes the handshake. */
#ifndef QWD_NODE_CHANNEL_H
#define QWD_NODE_CHANNEL_H

#include <openssl/ssl.h>

/* The job's environment variable that hands the secret (hex) to qwd-node; never argv. */
#define NODE_SECRET_ENV "QWD_NODE_SECRET"
#define NODE_SECRET_BYTES 32
#define NODE_SECRET_HEX (2 * NODE_SECRET_BYTES)
/* How long a connect and its handshake may take. */
#define NODE_CHANNEL_HANDSHAKE_S 10

/* Reads NODE_SECRET_HEX hex digits into key. Returns 0, or -1 when text is not that. */
int node_channel_parse_secret(const char *text, unsigned char key[NODE_SECRET_BYTES]);

/* key as NODE_SECRET_HEX lowercase hex digits and a NUL. */
void node_channel_format_secret(const unsigned char key[NODE_SECRET_BYTES],
                                char hex[NODE_SECRET_HEX + 1]);

/* A context for one end (server: the node) of the channel of session identity, keyed by key
 * (copied). NULL when OpenSSL cannot make one. */
SSL_CTX *node_channel_context(int server, const char *identity,
                              const unsigned char key[NODE_SECRET_BYTES]);

/* The node's end: the handshake on an accepted connection fd (blocking, bounded by
 * NODE_CHANNEL_HANDSHAKE_S). NULL when the peer does not hold the key. */
SSL *node_channel_accept(SSL_CTX *ctx, int fd);

/* The web host's end: connects to host:port and completes the handshake. NULL with *problem
 * (static text) when that fails. */
SSL *node_channel_connect(SSL_CTX *ctx, const char *host, int port, const char **problem);

/* Copies bytes both ways between ssl and plain_fd until either side ends. Blocks. */
void node_channel_relay(SSL *ssl, int plain_fd);

/* Closes the channel (close_notify) and its socket. */
void node_channel_close(SSL *ssl);

/* Closes every fd from 3 up except keep (and keep2), as a forked relay does first. */
void node_channel_close_others(int keep, int keep2);

#endif
