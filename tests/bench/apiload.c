/* apiload: the REST API benchmark's load generator (benchapi.py): HTTP/1.1
 * GETs from many connections at once, over plain TCP or over TLS.
 *
 *   apiload --target 127.0.0.1:PORT [--path /healthy] [--conns 32]
 *           [--seconds 5] [--new] [--tls --ca CA --cert CRT --key KEY]
 *
 * Keep-alive (the default): each connection sends a request, reads the
 * whole answer, and sends the next. --new: every request on a connection
 * of its own ("Connection: close": the server closes first), so each one
 * pays the TCP set-up and, with --tls, a full handshake (the API resumes
 * no session). With --tls the client checks the server against CA and
 * shows CRT/KEY. Prints one JSON line: requests, seconds, rps, errors.
 * Bounded by --seconds; single-threaded, epoll. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#define MAXC 1024

enum cstate { S_CONNECT, S_HANDSHAKE, S_SEND, S_RECV };

struct conn {
	int fd;
	SSL *ssl;
	enum cstate state;
	size_t outoff, inlen, head;
	long long want; /* body bytes still to read; -1: no head yet */
	char in[8192];
};

static struct {
	struct sockaddr_in sa;
	SSL_CTX *ctx; /* NULL: plain */
	bool fresh;   /* --new */
	char req[512];
	size_t reqlen;
	int ep;
	unsigned long long done, errors;
} L;

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what)
{
	fprintf(stderr, "apiload: %s: %s\n", what, strerror(errno));
	ERR_print_errors_fp(stderr);
	exit(1);
}

static void watch(struct conn *c, uint32_t events, int op)
{
	struct epoll_event e = { .events = events, .data.ptr = c };

	if (epoll_ctl(L.ep, op, c->fd, &e) < 0)
		die("epoll_ctl");
}

static void conn_open(struct conn *c)
{
	int one = 1;

	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	if (c->fd < 0)
		die("socket");
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(c->fd, (struct sockaddr *)&L.sa, sizeof(L.sa)) < 0 &&
	    errno != EINPROGRESS)
		die("connect");
	c->ssl = NULL;
	if (L.ctx != NULL) {
		c->ssl = SSL_new(L.ctx);
		if (c->ssl == NULL || SSL_set_fd(c->ssl, c->fd) != 1)
			die("SSL_new");
		SSL_set_tlsext_host_name(c->ssl, "localhost");
		SSL_set_connect_state(c->ssl);
	}
	c->state = S_CONNECT;
	c->outoff = c->inlen = c->head = 0;
	c->want = -1;
	watch(c, EPOLLOUT, EPOLL_CTL_ADD);
}

static void conn_reopen(struct conn *c)
{
	SSL_free(c->ssl);
	close(c->fd);
	conn_open(c);
}

static void conn_fail(struct conn *c)
{
	L.errors++;
	ERR_clear_error();
	conn_reopen(c);
}

/* Read or write over TLS or not: > 0 bytes, 0 would block (want set to
 * the events to wait for), -1 the connection ended or failed. */
static ssize_t conn_io(struct conn *c, bool wr, void *buf, size_t len,
		       uint32_t *want)
{
	ssize_t n;
	int e;

	if (c->ssl == NULL) {
		n = wr ? send(c->fd, buf, len, MSG_NOSIGNAL)
		       : recv(c->fd, buf, len, 0);
		if (n < 0 && errno == EAGAIN) {
			*want = wr ? EPOLLOUT : EPOLLIN;
			return 0;
		}
		return n > 0 ? n : -1;
	}
	n = wr ? SSL_write(c->ssl, buf, (int)len) : SSL_read(c->ssl, buf, (int)len);
	if (n > 0)
		return n;
	e = SSL_get_error(c->ssl, (int)n);
	if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
		*want = e == SSL_ERROR_WANT_READ ? EPOLLIN : EPOLLOUT;
		return 0;
	}
	return -1;
}

/* The answer in c->in is whole: 1, or 0 for more, -1 bad. */
static int conn_answer(struct conn *c)
{
	if (c->want < 0) {
		const char *end = memmem(c->in, c->inlen, "\r\n\r\n", 4);
		const char *cl;

		if (end == NULL)
			return c->inlen == sizeof(c->in) ? -1 : 0;
		c->head = (size_t)(end - c->in) + 4;
		if (c->inlen < 12 || memcmp(c->in + 9, "200", 3) != 0)
			return -1;
		cl = memmem(c->in, c->head, "Content-Length:", 15);
		if (cl == NULL)
			return -1;
		c->want = atoll(cl + 15);
	}
	return (long long)(c->inlen - c->head) >= c->want ? 1 : 0;
}

/* Move one connection as far as it goes without blocking. */
static void conn_step(struct conn *c)
{
	for (;;) {
		uint32_t want = 0;
		ssize_t n;
		int err = 0, r;
		socklen_t len = sizeof(err);

		switch (c->state) {
		case S_CONNECT:
			if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) <
				    0 ||
			    err != 0) {
				conn_fail(c);
				return;
			}
			c->state = c->ssl != NULL ? S_HANDSHAKE : S_SEND;
			continue;
		case S_HANDSHAKE:
			r = SSL_do_handshake(c->ssl);
			if (r == 1) {
				c->state = S_SEND;
				continue;
			}
			r = SSL_get_error(c->ssl, r);
			if (r != SSL_ERROR_WANT_READ && r != SSL_ERROR_WANT_WRITE) {
				conn_fail(c);
				return;
			}
			watch(c, r == SSL_ERROR_WANT_READ ? EPOLLIN : EPOLLOUT,
			      EPOLL_CTL_MOD);
			return;
		case S_SEND:
			n = conn_io(c, true, L.req + c->outoff,
				    L.reqlen - c->outoff, &want);
			if (n < 0) {
				conn_fail(c);
				return;
			}
			if (n == 0) {
				watch(c, want, EPOLL_CTL_MOD);
				return;
			}
			c->outoff += (size_t)n;
			if (c->outoff == L.reqlen)
				c->state = S_RECV;
			continue;
		case S_RECV:
			n = conn_io(c, false, c->in + c->inlen,
				    sizeof(c->in) - c->inlen, &want);
			if (n < 0) {
				conn_fail(c);
				return;
			}
			if (n == 0) {
				watch(c, want, EPOLL_CTL_MOD);
				return;
			}
			c->inlen += (size_t)n;
			r = conn_answer(c);
			if (r < 0) {
				conn_fail(c);
				return;
			}
			if (r == 0)
				continue;
			L.done++;
			if (L.fresh) {
				conn_reopen(c);
				return;
			}
			c->state = S_SEND;
			c->outoff = c->inlen = c->head = 0;
			c->want = -1;
			continue;
		}
	}
}

static SSL_CTX *client_ctx(const char *ca, const char *cert, const char *key)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

	if (ctx == NULL || SSL_CTX_load_verify_locations(ctx, ca, NULL) != 1 ||
	    (cert != NULL &&
	     (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1 ||
	      SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1)))
		die("TLS files");
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	return ctx;
}

int main(int argc, char **argv)
{
	static struct conn cs[MAXC];
	const char *target = NULL, *path = "/healthy";
	const char *ca = NULL, *cert = NULL, *key = NULL;
	int conns = 32;
	double seconds = 5, t0, end;
	bool tls = false;
	char host[64];
	const char *colon;

	signal(SIGPIPE, SIG_IGN);
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : "";

		if (!strcmp(a, "--new") || !strcmp(a, "--tls")) {
			*(a[2] == 'n' ? &L.fresh : &tls) = true;
			continue;
		}
		i++;
		if (!strcmp(a, "--target"))
			target = v;
		else if (!strcmp(a, "--path"))
			path = v;
		else if (!strcmp(a, "--conns"))
			conns = atoi(v);
		else if (!strcmp(a, "--seconds"))
			seconds = atof(v);
		else if (!strcmp(a, "--ca"))
			ca = v;
		else if (!strcmp(a, "--cert"))
			cert = v;
		else if (!strcmp(a, "--key"))
			key = v;
		else {
			fprintf(stderr, "apiload: unknown option %s\n", a);
			return 2;
		}
	}
	colon = target != NULL ? strrchr(target, ':') : NULL;
	if (colon == NULL || (size_t)(colon - target) >= sizeof(host) ||
	    conns < 1 || conns > MAXC || (tls && ca == NULL) ||
	    (cert != NULL) != (key != NULL)) {
		fprintf(stderr, "usage: see the head of apiload.c\n");
		return 2;
	}
	memcpy(host, target, (size_t)(colon - target));
	host[colon - target] = '\0';
	L.sa.sin_family = AF_INET;
	L.sa.sin_port = htons((uint16_t)atoi(colon + 1));
	if (inet_pton(AF_INET, host, &L.sa.sin_addr) != 1) {
		fprintf(stderr, "apiload: bad address %s\n", target);
		return 2;
	}
	if (tls)
		L.ctx = client_ctx(ca, cert, key);
	L.reqlen = (size_t)snprintf(L.req, sizeof(L.req),
				    "GET %s HTTP/1.1\r\nHost: localhost:%s\r\n"
				    "%s\r\n",
				    path, colon + 1,
				    L.fresh ? "Connection: close\r\n" : "");
	L.ep = epoll_create1(0);
	if (L.ep < 0)
		die("epoll_create1");
	for (int i = 0; i < conns; i++)
		conn_open(&cs[i]);
	t0 = now();
	end = t0 + seconds;
	while (now() < end) {
		struct epoll_event evs[128];
		int n = epoll_wait(L.ep, evs, 128, 100);

		for (int i = 0; i < n; i++)
			conn_step(evs[i].data.ptr);
	}
	seconds = now() - t0;
	printf("{\"requests\": %llu, \"seconds\": %.3f, \"rps\": %.1f, "
	       "\"errors\": %llu, \"conns\": %d, \"tls\": %s, \"new\": %s}\n",
	       L.done, seconds, (double)L.done / seconds, L.errors, conns,
	       tls ? "true" : "false", L.fresh ? "true" : "false");
	return 0;
}
