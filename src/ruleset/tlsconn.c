/* tlsconn: one TLS connection over a BIO pair (see tlsconn.h). */
#include "ruleset/tlsconn.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "common/addr.h"
#include "common/tlsconf.h"

/* Each direction's buffer: one whole record and its framing. */
#define TLSCONN_BUF (17u << 10)

struct tlsconn {
	SSL *ssl;
	BIO *net;         /* our end of the pair; the library has the other */
	bool server;
	bool established;
	bool closed;      /* close_notify queued */
	bool plain_http;  /* the peer spoke HTTP without TLS */
	char why[160];    /* the last failure */
};

struct tlsconn *tlsconn_new(SSL_CTX *ctx, bool server, const char *host)
{
	struct tlsconn *t = calloc(1, sizeof(*t));
	BIO *inner = NULL;

	if (t == NULL)
		return NULL;
	t->server = server;
	t->ssl = SSL_new(ctx);
	if (t->ssl == NULL ||
	    BIO_new_bio_pair(&inner, TLSCONN_BUF, &t->net, TLSCONN_BUF) != 1)
		goto fail;
	SSL_set_bio(t->ssl, inner, inner);
	if (server) {
		SSL_set_accept_state(t->ssl);
		return t;
	}
	SSL_set_connect_state(t->ssl);
	if (host != NULL) {
		unsigned char ip[16];
		bool literal = inet_pton(AF_INET, host, ip) == 1 ||
			       inet_pton(AF_INET6, host, ip) == 1;

		if (literal) {
			if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(t->ssl),
							  host) != 1)
				goto fail;
		} else if (!addr_name_valid(host, strlen(host)) ||
			   SSL_set_tlsext_host_name(t->ssl, host) != 1 ||
			   SSL_set1_host(t->ssl, host) != 1) {
			goto fail;
		}
	}
	return t;
fail:
	ERR_clear_error();
	tlsconn_free(t);
	return NULL;
}

void tlsconn_free(struct tlsconn *t)
{
	if (t == NULL)
		return;
	SSL_free(t->ssl); /* and the inner end of the pair */
	BIO_free(t->net);
	free(t);
}

/* What a failed call of the library means, into t->why. */
static int tlsconn_failed(struct tlsconn *t, int ret)
{
	int e = SSL_get_error(t->ssl, ret);
	long vr = SSL_get_verify_result(t->ssl);
	char buf[128];

	switch (e) {
	case SSL_ERROR_WANT_READ:
	case SSL_ERROR_WANT_WRITE:
		return TLSCONN_AGAIN;
	case SSL_ERROR_ZERO_RETURN:
		return TLSCONN_EOF;
	case SSL_ERROR_SYSCALL:
		if (ERR_peek_error() == 0) {
			ERR_clear_error();
			return TLSCONN_EOF; /* the peer went without a word */
		}
		break;
	default:
		break;
	}
	t->plain_http = ERR_GET_REASON(ERR_peek_last_error()) ==
			SSL_R_HTTP_REQUEST;
	tlsconf_last_error(buf, sizeof(buf));
	if (vr != X509_V_OK)
		snprintf(t->why, sizeof(t->why), "%s: %s", buf,
			 X509_verify_cert_error_string(vr));
	else
		snprintf(t->why, sizeof(t->why), "%s", buf);
	return TLSCONN_ERR;
}

int tlsconn_handshake(struct tlsconn *t)
{
	int r;

	if (t->established)
		return 1;
	r = SSL_do_handshake(t->ssl);
	if (r == 1) {
		t->established = true;
		return 1;
	}
	r = tlsconn_failed(t, r);
	if (r == TLSCONN_EOF)
		snprintf(t->why, sizeof(t->why),
			 "the peer closed during the handshake");
	return r;
}

bool tlsconn_established(const struct tlsconn *t)
{
	return t->established;
}

ssize_t tlsconn_read(struct tlsconn *t, void *buf, size_t cap)
{
	int n, r;

	if (cap == 0)
		return TLSCONN_AGAIN;
	if (cap > INT32_MAX)
		cap = INT32_MAX;
	n = SSL_read(t->ssl, buf, (int)cap);
	if (n > 0)
		return n;
	r = tlsconn_failed(t, n);
	return r;
}

ssize_t tlsconn_write(struct tlsconn *t, const void *buf, size_t len)
{
	int n;

	if (len == 0)
		return TLSCONN_AGAIN;
	if (len > INT32_MAX)
		len = INT32_MAX;
	n = SSL_write(t->ssl, buf, (int)len);
	if (n > 0)
		return n;
	n = tlsconn_failed(t, n);
	return n == TLSCONN_EOF ? TLSCONN_ERR : n;
}

void tlsconn_close(struct tlsconn *t)
{
	if (t->closed || !t->established)
		return;
	t->closed = true;
	(void)SSL_shutdown(t->ssl); /* queues close_notify; no waiting */
	ERR_clear_error();
}

size_t tlsconn_in_room(struct tlsconn *t, char **p)
{
	int n = BIO_nwrite0(t->net, p);

	return n > 0 ? (size_t)n : 0;
}

void tlsconn_in_commit(struct tlsconn *t, size_t n)
{
	char *p;

	if (n > 0)
		(void)BIO_nwrite(t->net, &p, (int)n);
}

void tlsconn_in_eof(struct tlsconn *t)
{
	(void)BIO_shutdown_wr(t->net);
}

size_t tlsconn_out_peek(struct tlsconn *t, const char **p)
{
	char *q = NULL;
	int n = BIO_nread0(t->net, &q);

	*p = q;
	return n > 0 ? (size_t)n : 0;
}

void tlsconn_out_drop(struct tlsconn *t, size_t n)
{
	char *p;

	if (n > 0)
		(void)BIO_nread(t->net, &p, (int)n);
}

bool tlsconn_in_pending(struct tlsconn *t)
{
	return SSL_pending(t->ssl) > 0 ||
	       BIO_ctrl_pending(SSL_get_rbio(t->ssl)) > 0;
}

ssize_t tlsconn_recv_fd(struct tlsconn *t, int fd)
{
	ssize_t total = 0;

	for (;;) {
		char *p;
		size_t room = tlsconn_in_room(t, &p);
		ssize_t n;

		if (room == 0) {
			if (total > 0)
				return total;
			errno = ENOBUFS;
			return -1;
		}
		n = recv(fd, p, room, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return total > 0 ? total : -1;
		if (n == 0) {
			tlsconn_in_eof(t);
			return total > 0 ? total : 0;
		}
		tlsconn_in_commit(t, (size_t)n);
		total += n;
		if ((size_t)n < room)
			return total; /* drained for now */
	}
}

int tlsconn_send_fd(struct tlsconn *t, int fd)
{
	for (;;) {
		const char *p;
		size_t len = tlsconn_out_peek(t, &p);
		ssize_t n;

		if (len == 0)
			return 1;
		n = send(fd, p, len, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
		tlsconn_out_drop(t, (size_t)n);
	}
}

const char *tlsconn_error(const struct tlsconn *t)
{
	return t->why[0] ? t->why : "TLS error";
}

const char *tlsconn_peer_subject(struct tlsconn *t, char *buf, size_t cap)
{
	X509 *x = SSL_get0_peer_certificate(t->ssl);

	if (x == NULL || tlsconf_subject(x, buf, cap) < 0)
		buf[0] = '\0';
	return buf;
}

SSL *tlsconn_ssl(struct tlsconn *t)
{
	return t->ssl;
}

bool tlsconn_plain_http(const struct tlsconn *t)
{
	return t->plain_http;
}
