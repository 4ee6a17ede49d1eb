/* httpload: the HTTP forward-proxy benchmark's origin and load generator.
 *
 *   httpload serve --port P [--size N]
 *       An HTTP/1.1 origin on 127.0.0.1:P: every request gets N bytes
 *       (default 1024) with Content-Length and keep-alive; a path
 *       "/big/M" gets M bytes. Single-threaded, epoll.
 *   httpload rps (--proxy HOST:PORT | --direct) --target HOST:PORT
 *                [--conns 64] [--seconds 5]
 *       Keep-alive clients each sending GET and reading the whole answer,
 *       again and again; a connection the server closes is opened anew
 *       (counted). Prints one JSON line: requests, seconds, rps, errors,
 *       reconnects.
 *   httpload get (--proxy HOST:PORT [--connect] | --direct) --target
 *                HOST:PORT --path PATH
 *       One GET (through CONNECT with --connect), the body read whole and
 *       dropped. Prints bytes, seconds, gbps.
 *
 * Through a proxy the request is in absolute form; direct and after
 * CONNECT in origin form. Bounded: every run ends by --seconds (rps) or
 * by the body's end or 120 s without progress (get). */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>

#define BUF 65536
#define MAXC 1024

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what)
{
	fprintf(stderr, "httpload: %s: %s\n", what, strerror(errno));
	exit(1);
}

static int parse_addr(const char *s, struct sockaddr_in *sa)
{
	char host[64];
	const char *colon = strrchr(s, ':');

	if (colon == NULL || (size_t)(colon - s) >= sizeof(host))
		return -1;
	memcpy(host, s, (size_t)(colon - s));
	host[colon - s] = '\0';
	memset(sa, 0, sizeof(*sa));
	sa->sin_family = AF_INET;
	sa->sin_port = htons((uint16_t)atoi(colon + 1));
	return inet_pton(AF_INET, host, &sa->sin_addr) == 1 ? 0 : -1;
}

static int tcp_connect(const struct sockaddr_in *sa, bool nonblock)
{
	int fd = socket(AF_INET, SOCK_STREAM | (nonblock ? SOCK_NONBLOCK : 0), 0);
	int one = 1;

	if (fd < 0)
		die("socket");
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) < 0 &&
	    errno != EINPROGRESS) {
		close(fd);
		return -1;
	}
	return fd;
}

/* The length of the head at buf[0..len) ending in CRLFCRLF, or 0. */
static size_t head_len(const char *buf, size_t len)
{
	for (size_t i = 3; i < len; i++) {
		if (buf[i] == '\n' && buf[i - 1] == '\r' && buf[i - 2] == '\n' &&
		    buf[i - 3] == '\r')
			return i + 1;
	}
	return 0;
}

/* Content-Length of a head (-1 if none), and whether it says close. */
static long long head_info(const char *h, size_t n, bool *close_it)
{
	long long cl = -1;
	const char *p = h, *end = h + n;

	*close_it = false;
	while (p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));

		if (eol == NULL)
			break;
		if (strncasecmp(p, "content-length:", 15) == 0)
			cl = atoll(p + 15);
		if (strncasecmp(p, "connection:", 11) == 0 &&
		    memmem(p, (size_t)(eol - p), "close", 5) != NULL)
			*close_it = true;
		p = eol + 1;
	}
	return cl;
}

/* ---- serve ---- */

struct sconn {
	int fd;
	size_t inlen;
	unsigned long long left; /* body bytes still to send */
	size_t hdrlen, hdroff;   /* the current head */
	char hdr[160];
	char in[8192];
};

static char zeros[1 << 18];

/* Send what is pending; 0 all sent, 1 blocked, -1 error. */
static int serve_out(struct sconn *c)
{
	while (c->hdroff < c->hdrlen) {
		ssize_t n = send(c->fd, c->hdr + c->hdroff, c->hdrlen - c->hdroff,
				 MSG_NOSIGNAL);
		if (n < 0)
			return errno == EAGAIN ? 1 : -1;
		c->hdroff += (size_t)n;
	}
	while (c->left > 0) {
		size_t k = c->left < sizeof(zeros) ? (size_t)c->left : sizeof(zeros);
		ssize_t n = send(c->fd, zeros, k, MSG_NOSIGNAL);

		if (n < 0)
			return errno == EAGAIN ? 1 : -1;
		c->left -= (unsigned long long)n;
	}
	return 0;
}

/* Answer complete heads in c->in while nothing is pending. */
static int serve_heads(struct sconn *c, unsigned long long small)
{
	for (;;) {
		size_t h;
		unsigned long long size = small;
		const char *big;
		int r = serve_out(c);

		if (r != 0)
			return r;
		h = head_len(c->in, c->inlen);
		if (h == 0)
			return 0;
		big = memmem(c->in, h, " /big/", 6);
		if (big == NULL)
			big = memmem(c->in, h, "/big/", 5);
		if (big != NULL)
			size = strtoull(strstr(big, "/big/") + 5, NULL, 10);
		c->hdrlen = (size_t)snprintf(c->hdr, sizeof(c->hdr),
					     "HTTP/1.1 200 OK\r\nContent-Length: "
					     "%llu\r\nContent-Type: application/"
					     "octet-stream\r\n\r\n",
					     size);
		c->hdroff = 0;
		c->left = size;
		memmove(c->in, c->in + h, c->inlen - h);
		c->inlen -= h;
	}
}

static int cmd_serve(int port, unsigned long long small)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0), one = 1;
	int ep = epoll_create1(0);
	struct epoll_event ev = { .events = EPOLLIN }, evs[64];

	sa.sin_port = htons((uint16_t)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    listen(lfd, 1024) < 0)
		die("listen");
	ev.data.ptr = NULL;
	epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
	printf("ready\n");
	fflush(stdout);
	for (;;) {
		int n = epoll_wait(ep, evs, 64, -1);

		for (int i = 0; i < n; i++) {
			struct sconn *c = evs[i].data.ptr;
			ssize_t r;

			if (c == NULL) {
				int fd;

				while ((fd = accept4(lfd, NULL, NULL,
						     SOCK_NONBLOCK)) >= 0) {
					struct epoll_event e = {
						.events = EPOLLIN | EPOLLOUT |
							  EPOLLET
					};

					c = calloc(1, sizeof(*c));
					c->fd = fd;
					setsockopt(fd, IPPROTO_TCP, TCP_NODELAY,
						   &one, sizeof(one));
					e.data.ptr = c;
					epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e);
				}
				continue;
			}
			for (;;) {
				if (c->inlen == sizeof(c->in))
					goto drop;
				r = recv(c->fd, c->in + c->inlen,
					 sizeof(c->in) - c->inlen, 0);
				if (r == 0)
					goto drop;
				if (r < 0) {
					if (errno != EAGAIN)
						goto drop;
					break;
				}
				c->inlen += (size_t)r;
			}
			if (serve_heads(c, small) >= 0)
				continue;
drop:
			close(c->fd);
			free(c);
		}
	}
	return 0; /* not reached: the benchmark kills it */
}

/* ---- clients ---- */

struct cconn {
	int fd;
	bool sending;
	size_t outoff, inlen, head;
	long long want; /* body bytes still to read, -1: head not yet read */
	bool close_after;
};

static char req[512];
static size_t reqlen;

static void client_open(int ep, struct cconn *c, const struct sockaddr_in *sa)
{
	struct epoll_event e = { .events = EPOLLIN | EPOLLOUT };

	c->fd = tcp_connect(sa, true);
	if (c->fd < 0)
		die("connect");
	c->sending = true;
	c->outoff = c->inlen = 0;
	c->want = -1;
	e.data.ptr = c;
	epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &e);
}

static void client_reopen(int ep, struct cconn *c, const struct sockaddr_in *sa)
{
	close(c->fd);
	client_open(ep, c, sa);
}

static int cmd_rps(const struct sockaddr_in *sa, int conns, double seconds)
{
	static struct cconn cs[MAXC];
	static char buf[BUF];
	int ep = epoll_create1(0);
	unsigned long long done = 0, errors = 0, reconnects = 0;
	double t0 = now(), end = t0 + seconds;

	for (int i = 0; i < conns; i++)
		client_open(ep, &cs[i], sa);
	while (now() < end) {
		struct epoll_event evs[128];
		int n = epoll_wait(ep, evs, 128, 100);

		for (int i = 0; i < n; i++) {
			struct cconn *c = evs[i].data.ptr;

			if (c->sending) {
				ssize_t w = send(c->fd, req + c->outoff,
						 reqlen - c->outoff, MSG_NOSIGNAL);
				if (w < 0) {
					if (errno == EAGAIN || errno == ENOTCONN)
						continue;
					errors++;
					reconnects++;
					client_reopen(ep, c, sa);
					continue;
				}
				c->outoff += (size_t)w;
				if (c->outoff == reqlen) {
					struct epoll_event e = { .events = EPOLLIN };

					c->sending = false;
					e.data.ptr = c;
					epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &e);
				}
				continue;
			}
			for (;;) {
				ssize_t r = recv(c->fd, buf + c->inlen,
						 sizeof(buf) - c->inlen, 0);
				if (r < 0 && errno == EAGAIN)
					break;
				if (r <= 0) {
					if (c->want >= 0 || c->inlen > 0)
						errors++;
					reconnects++;
					client_reopen(ep, c, sa);
					break;
				}
				c->inlen += (size_t)r;
				if (c->want < 0) {
					size_t h = head_len(buf, c->inlen);

					if (h == 0)
						continue;
					c->want = head_info(buf, h, &c->close_after);
					if (c->want < 0 ||
					    memcmp(buf + 9, "200", 3) != 0) {
						errors++;
						c->want = 0;
						c->close_after = true;
					}
					c->head = h;
				}
				if ((long long)(c->inlen - c->head) < c->want) {
					/* the body's bytes are dropped */
					c->want -= (long long)(c->inlen - c->head);
					c->inlen = c->head = 0;
					continue;
				}
				done++;
				if (c->close_after) {
					reconnects++;
					client_reopen(ep, c, sa);
					break;
				}
				c->sending = true;
				c->outoff = c->inlen = c->head = 0;
				c->want = -1;
				{
					struct epoll_event e = { .events = EPOLLOUT };

					e.data.ptr = c;
					epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &e);
				}
				break;
			}
		}
	}
	seconds = now() - t0;
	printf("{\"requests\": %llu, \"seconds\": %.3f, \"rps\": %.1f, "
	       "\"errors\": %llu, \"reconnects\": %llu, \"conns\": %d}\n",
	       done, seconds, (double)done / seconds, errors, reconnects, conns);
	return 0;
}

static int cmd_get(const struct sockaddr_in *sa, const char *target,
		   bool via_connect)
{
	static char buf[1 << 20];
	int fd = tcp_connect(sa, false);
	unsigned long long got = 0;
	long long want;
	size_t inlen = 0, h = 0;
	bool close_it;
	double t0;
	struct timeval tv = { 120, 0 };

	if (fd < 0)
		die("connect");
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (via_connect) {
		char c[256];
		int n = snprintf(c, sizeof(c), "CONNECT %s HTTP/1.1\r\n\r\n",
				 target);

		if (send(fd, c, (size_t)n, 0) != n)
			die("send");
		while ((h = head_len(buf, inlen)) == 0) {
			ssize_t r = recv(fd, buf + inlen, 1, 0);

			if (r <= 0)
				die("CONNECT");
			inlen += (size_t)r;
		}
		if (memcmp(buf + 9, "200", 3) != 0) {
			fprintf(stderr, "httpload: CONNECT refused\n");
			return 1;
		}
		inlen = 0;
	}
	t0 = now();
	if (send(fd, req, reqlen, 0) != (ssize_t)reqlen)
		die("send");
	while ((h = head_len(buf, inlen)) == 0) {
		ssize_t r = recv(fd, buf + inlen, sizeof(buf) - inlen, 0);

		if (r <= 0)
			die("recv head");
		inlen += (size_t)r;
	}
	want = head_info(buf, h, &close_it);
	got = inlen - h;
	while (want < 0 || got < (unsigned long long)want) {
		ssize_t r = recv(fd, buf, sizeof(buf), 0);

		if (r <= 0) {
			if (want < 0 && r == 0)
				break;
			die("recv body");
		}
		got += (unsigned long long)r;
	}
	t0 = now() - t0;
	printf("{\"bytes\": %llu, \"seconds\": %.3f, \"gbps\": %.3f}\n", got, t0,
	       (double)got * 8 / t0 / 1e9);
	close(fd);
	return 0;
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "";
	const char *proxy = NULL, *target = NULL, *path = "/small";
	bool direct = false, via_connect = false;
	int port = 0, conns = 64;
	double seconds = 5;
	unsigned long long size = 1024;
	struct sockaddr_in sa;

	signal(SIGPIPE, SIG_IGN);
	for (int i = 2; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : "";

		if (!strcmp(a, "--direct")) {
			direct = true;
			continue;
		}
		if (!strcmp(a, "--connect")) {
			via_connect = true;
			continue;
		}
		i++;
		if (!strcmp(a, "--port"))
			port = atoi(v);
		else if (!strcmp(a, "--size"))
			size = strtoull(v, NULL, 10);
		else if (!strcmp(a, "--proxy"))
			proxy = v;
		else if (!strcmp(a, "--target"))
			target = v;
		else if (!strcmp(a, "--path"))
			path = v;
		else if (!strcmp(a, "--conns"))
			conns = atoi(v);
		else if (!strcmp(a, "--seconds"))
			seconds = atof(v);
		else {
			fprintf(stderr, "httpload: unknown option %s\n", a);
			return 2;
		}
	}
	if (!strcmp(mode, "serve"))
		return cmd_serve(port, size);
	if (target == NULL || (!direct && proxy == NULL) || conns < 1 ||
	    conns > MAXC || parse_addr(direct ? target : proxy, &sa) < 0) {
		fprintf(stderr, "usage: see the head of httpload.c\n");
		return 2;
	}
	if (direct || via_connect)
		reqlen = (size_t)snprintf(req, sizeof(req),
					  "GET %s HTTP/1.1\r\nHost: %s\r\n\r\n",
					  path, target);
	else
		reqlen = (size_t)snprintf(req, sizeof(req),
					  "GET http://%s%s HTTP/1.1\r\nHost: %s\r\n"
					  "\r\n",
					  target, path, target);
	if (!strcmp(mode, "rps"))
		return cmd_rps(&sa, conns, seconds);
	if (!strcmp(mode, "get"))
		return cmd_get(&sa, target, via_connect);
	fprintf(stderr, "usage: httpload serve|rps|get ...\n");
	return 2;
}
