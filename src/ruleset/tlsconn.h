/* tlsconn: one TLS connection over memory, for the API server and the RPC
 * client.
 *
 * The library never touches the socket: ciphertext goes in and out
 * through a pair of bounded memory buffers (a BIO pair), and the caller
 * moves it to and from the network (tlsconn_recv_fd / tlsconn_send_fd, or
 * the in/out calls without a socket). So the connection code keeps its
 * own reads, writes, deadlines and event handling, and no system call is
 * made by the TLS library beyond those it needs for randomness. After
 * every call that may produce ciphertext (handshake, read, write, close),
 * the caller sends what tlsconn_out_peek() shows. */
#ifndef NEOSOCKSD_TLSCONN_H
#define NEOSOCKSD_TLSCONN_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include <openssl/ssl.h>

struct tlsconn;

/* A connection on ctx: a server (accept), or a client that verifies the
 * peer's certificate for host (a name, or an IP literal; NULL: the CA
 * alone) and names it in SNI when it is a name. NULL when out of memory
 * (or host is not a valid name or address). */
struct tlsconn *tlsconn_new(SSL_CTX *ctx, bool server, const char *host);
void tlsconn_free(struct tlsconn *t);

/* Results of tlsconn_handshake/read/write */
enum {
	TLSCONN_AGAIN = 0, /* more ciphertext in, or out sent, is needed */
	TLSCONN_EOF = -1,  /* the peer closed (close_notify or TCP EOF) */
	TLSCONN_ERR = -2,  /* failed: tlsconn_error() says why */
};

/* 1 when the handshake is complete, or TLSCONN_AGAIN, TLSCONN_EOF (the
 * peer went away before it was done) or TLSCONN_ERR. */
int tlsconn_handshake(struct tlsconn *t);
bool tlsconn_established(const struct tlsconn *t);

/* Plaintext received: > 0 bytes, or TLSCONN_AGAIN / EOF / ERR. */
ssize_t tlsconn_read(struct tlsconn *t, void *buf, size_t cap);
/* Plaintext to send: > 0 bytes taken, or TLSCONN_AGAIN (send the
 * ciphertext first) / TLSCONN_ERR. A call that got TLSCONN_AGAIN is
 * repeated with at least as many bytes, the same ones (the buffer may
 * have moved). */
ssize_t tlsconn_write(struct tlsconn *t, const void *buf, size_t len);
/* Queue close_notify (once). */
void tlsconn_close(struct tlsconn *t);

/* Ciphertext from the network: where it may go (0 bytes: the buffer is
 * full until tlsconn_read/handshake take some), then how much went. */
size_t tlsconn_in_room(struct tlsconn *t, char **p);
void tlsconn_in_commit(struct tlsconn *t, size_t n);
/* The peer closed its side of the TCP connection. */
void tlsconn_in_eof(struct tlsconn *t);
/* Ciphertext for the network: what is waiting (contiguous; call again
 * after tlsconn_out_drop for the rest), then how much was sent. */
size_t tlsconn_out_peek(struct tlsconn *t, const char **p);
void tlsconn_out_drop(struct tlsconn *t, size_t n);
/* Is anything received but not yet taken by tlsconn_read? */
bool tlsconn_in_pending(struct tlsconn *t);

/* Socket helpers. recv: ciphertext from fd while there is room; > 0
 * bytes, 0 at EOF (tlsconn_in_eof done), -1 with errno (EAGAIN: none;
 * ENOBUFS: no room). send: what is waiting; 1 all sent, 0 would block,
 * -1 with errno. */
ssize_t tlsconn_recv_fd(struct tlsconn *t, int fd);
int tlsconn_send_fd(struct tlsconn *t, int fd);

/* Why the last call failed ("certificate verify failed: certificate has
 * expired", "unexpected message"...), for logs and errors. */
const char *tlsconn_error(const struct tlsconn *t);

/* Did the handshake fail because the peer sent a plain HTTP request? */
bool tlsconn_plain_http(const struct tlsconn *t);

/* The peer's certificate's subject (RFC 2253), "" when it sent none. */
const char *tlsconn_peer_subject(struct tlsconn *t, char *buf, size_t cap);

/* The library's object, for queries (version, cipher) and tests. */
SSL *tlsconn_ssl(struct tlsconn *t);

#endif
