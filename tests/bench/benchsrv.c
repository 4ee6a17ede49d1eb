/*
 * benchsrv: loopback target server for the neosocksd benchmark.
 *
 *   benchsrv [-s SINKPORT] [-e ECHOPORT] [-a NADDR]   (0 = ephemeral, default)
 *
 * Listens on 127.0.0.1 only (with -a N: on each of 127.0.0.1 .. 127.0.0.N,
 * same port numbers, so that clients can spread their connections over N
 * destination addresses and not run out of loopback ephemeral ports while
 * TIME_WAIT sockets pile up), with two listeners:
 *   sink  reads and discards everything; closes at EOF.
 *   echo  echoes bytes back; on EOF from the client it finishes echoing what
 *         it already has, then shuts down its write side and closes.
 * Prints "ready sink=N echo=M" on stdout once both listen, then serves until
 * SIGTERM or SIGINT. Single-threaded, epoll, non-blocking sockets.
 */
#include "common.h"

#include <fcntl.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

enum kind { K_SINK_LISTEN, K_ECHO_LISTEN, K_SIGNAL, K_SINK, K_ECHO };

#define ECHO_BUF 8192
#define SINK_BUF (256 * 1024)
/* per readiness event, at most this many reads, so one busy stream cannot
 * starve the others */
#define READS_PER_EVENT 8

struct conn {
	enum kind kind;
	int fd;
	/* echo only */
	uint32_t events; /* currently registered */
	int rd_eof;
	size_t len, off;
	unsigned char *buf;
};

static int epfd;
static int reserve_fd = -1;
static unsigned long long n_open;
static unsigned char sinkbuf[SINK_BUF];

static void
ep_add(struct conn *c, uint32_t ev)
{
	struct epoll_event e = { .events = ev, .data.ptr = c };
	if (epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &e) != 0)
		die("epoll_ctl add: %s", strerror(errno));
	c->events = ev;
}

static void
ep_mod(struct conn *c, uint32_t ev)
{
	if (c->events == ev)
		return;
	struct epoll_event e = { .events = ev, .data.ptr = c };
	if (epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &e) != 0)
		die("epoll_ctl mod: %s", strerror(errno));
	c->events = ev;
}

static void
conn_close(struct conn *c)
{
	close(c->fd); /* also removes it from the epoll set */
	free(c->buf);
	free(c);
	n_open--;
}

static int
make_listener(uint32_t addr, int port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		die("socket: %s", strerror(errno));
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	struct sockaddr_in sa = { .sin_family = AF_INET,
		                  .sin_port = htons((uint16_t)port),
		                  .sin_addr.s_addr = htonl(addr) };
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	if (listen(fd, 65535) != 0) /* the kernel caps it at somaxconn */
		die("listen: %s", strerror(errno));
	return fd;
}

static int
bound_port(int fd)
{
	struct sockaddr_in sa;
	socklen_t len = sizeof(sa);
	if (getsockname(fd, (struct sockaddr *)&sa, &len) != 0)
		die("getsockname: %s", strerror(errno));
	return ntohs(sa.sin_port);
}

static void
do_accept(struct conn *l)
{
	for (int i = 0; i < 256; i++) {
		int fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EAGAIN || errno == EINTR || errno == ECONNABORTED)
				return;
			if ((errno == EMFILE || errno == ENFILE) && reserve_fd >= 0) {
				/* out of fds: shed this one connection rather
				 * than spin on a listener that stays readable */
				static int warned;
				if (!warned++)
					fprintf(stderr, "benchsrv: out of fds at %llu conns\n",
					        n_open);
				close(reserve_fd);
				fd = accept(l->fd, NULL, NULL);
				if (fd >= 0)
					close(fd);
				reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
				return;
			}
			die("accept: %s", strerror(errno));
		}
		struct conn *c = calloc(1, sizeof(*c));
		if (c == NULL)
			die("out of memory");
		c->fd = fd;
		n_open++;
		if (l->kind == K_SINK_LISTEN) {
			c->kind = K_SINK;
			ep_add(c, EPOLLIN);
		} else {
			c->kind = K_ECHO;
			int one = 1;
			setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
			ep_add(c, EPOLLIN);
		}
	}
}

static void
on_sink(struct conn *c)
{
	for (int i = 0; i < READS_PER_EVENT; i++) {
		ssize_t n = read(c->fd, sinkbuf, sizeof(sinkbuf));
		if (n > 0)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		conn_close(c); /* EOF or error */
		return;
	}
}

/* Echo: read into buf only while it is empty, write it back, repeat. */
static void
on_echo(struct conn *c)
{
	if (c->buf == NULL && (c->buf = malloc(ECHO_BUF)) == NULL)
		die("out of memory");
	for (int i = 0; i < READS_PER_EVENT; i++) {
		if (c->off < c->len) {
			ssize_t n = send(c->fd, c->buf + c->off, c->len - c->off,
			                 MSG_NOSIGNAL);
			if (n < 0) {
				if (errno == EAGAIN || errno == EINTR) {
					ep_mod(c, EPOLLOUT);
					return;
				}
				conn_close(c);
				return;
			}
			c->off += (size_t)n;
			if (c->off < c->len) {
				ep_mod(c, EPOLLOUT);
				return;
			}
			c->off = c->len = 0;
		}
		if (c->rd_eof) {
			/* everything echoed: half-close, then we are done */
			shutdown(c->fd, SHUT_WR);
			conn_close(c);
			return;
		}
		ssize_t n = read(c->fd, c->buf, ECHO_BUF);
		if (n > 0) {
			c->len = (size_t)n;
			continue;
		}
		if (n == 0) {
			c->rd_eof = 1;
			continue;
		}
		if (errno == EAGAIN || errno == EINTR) {
			ep_mod(c, EPOLLIN);
			return;
		}
		conn_close(c);
		return;
	}
	/* budget used up with work left: come back on the next loop turn */
	ep_mod(c, c->off < c->len ? EPOLLOUT : EPOLLIN);
}

/* Listen on 127.0.0.1..127.0.0.naddr, all on one port (0: pick one). */
static int
listen_all(struct conn *ls, enum kind kind, int naddr, int port)
{
	for (int attempt = 0; attempt < 50; attempt++) {
		int p = port, i;
		for (i = 0; i < naddr; i++) {
			ls[i] = (struct conn){ .kind = kind,
				               .fd = make_listener(INADDR_LOOPBACK + (uint32_t)i, p) };
			if (ls[i].fd < 0)
				break;
			if (i == 0)
				p = bound_port(ls[0].fd);
		}
		if (i == naddr)
			return p;
		int e = errno, failed = i;
		while (i-- > 0)
			close(ls[i].fd);
		if (port != 0 || e != EADDRINUSE || failed == 0)
			die("bind 127.0.0.%d:%d: %s", failed + 1, p, strerror(e));
		/* ephemeral port taken on another address: try another one */
	}
	die("could not find a port free on all %d addresses", naddr);
}

static void
usage(void)
{
	fprintf(stderr, "usage: benchsrv [-s SINKPORT] [-e ECHOPORT] [-a NADDR]  (0 = ephemeral)\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	prog_name = "benchsrv";
	int sink_port = 0, echo_port = 0, naddr = 1, opt;
	while ((opt = getopt(argc, argv, "s:e:a:h")) != -1) {
		switch (opt) {
		case 's': sink_port = (int)parse_num(optarg, 0, 65535, "sink port"); break;
		case 'e': echo_port = (int)parse_num(optarg, 0, 65535, "echo port"); break;
		case 'a': naddr = (int)parse_num(optarg, 1, 254, "address count"); break;
		default: usage();
		}
	}
	if (optind != argc)
		usage();
	raise_nofile();
	signal(SIGPIPE, SIG_IGN);

	sigset_t mask;
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	if (sigprocmask(SIG_BLOCK, &mask, NULL) != 0)
		die("sigprocmask: %s", strerror(errno));
	int sfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	if (sfd < 0)
		die("signalfd: %s", strerror(errno));

	epfd = epoll_create1(EPOLL_CLOEXEC);
	if (epfd < 0)
		die("epoll_create1: %s", strerror(errno));
	reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);

	static struct conn *ls; /* listeners: sink ones, then echo ones */
	ls = calloc(2 * (size_t)naddr, sizeof(*ls));
	if (ls == NULL)
		die("out of memory");
	sink_port = listen_all(ls, K_SINK_LISTEN, naddr, sink_port);
	echo_port = listen_all(ls + naddr, K_ECHO_LISTEN, naddr, echo_port);
	for (int i = 0; i < 2 * naddr; i++)
		ep_add(&ls[i], EPOLLIN);
	static struct conn l_sig;
	l_sig = (struct conn){ .kind = K_SIGNAL, .fd = sfd };
	ep_add(&l_sig, EPOLLIN);

	printf("ready sink=%d echo=%d\n", sink_port, echo_port);
	fflush(stdout);

	struct epoll_event evs[512];
	for (;;) {
		int n = epoll_wait(epfd, evs, 512, -1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			die("epoll_wait: %s", strerror(errno));
		}
		for (int i = 0; i < n; i++) {
			struct conn *c = evs[i].data.ptr;
			switch (c->kind) {
			case K_SINK_LISTEN:
			case K_ECHO_LISTEN: do_accept(c); break;
			case K_SIGNAL: return 0;
			case K_SINK: on_sink(c); break;
			case K_ECHO: on_echo(c); break;
			}
		}
	}
}
