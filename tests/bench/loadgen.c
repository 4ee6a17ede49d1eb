/*
 * loadgen: epoll load generator for the neosocksd benchmark.
 *
 *   loadgen MODE (--socks5 HOST:PORT | --direct) --target HOST:PORT [options]
 *
 * Every address must be IPv4 loopback (127.0.0.0/8 or "localhost").
 * With --socks5 each connection does a SOCKS5 handshake: greeting 05 01 00,
 * expect 05 00, CONNECT with ATYP 1 to the target, expect a success reply.
 *
 * Modes (results as one JSON object on stdout):
 *   bulk --streams N --seconds S
 *       N connections to a sink port; once all are set up, each writes
 *       256 KiB blocks as fast as it can for S seconds, then half-closes and
 *       waits (bounded by --drain-timeout) for the far end to close.
 *       {"bytes","seconds","mbps",...}: seconds runs from the first byte to
 *       the last stream closed (all data delivered), or to the end of writing
 *       if the path did not relay the close in time; mbps = megabits/s.
 *   rate --concurrency C --seconds S [--max-ops N]
 *       C workers each loop: connect, (handshake), send 1 byte to an echo
 *       port, wait for it to come back, close. Latency per iteration runs
 *       from connect start to echo received.
 *       {"ops","seconds","ops_per_sec","p50_us","p99_us","errors",...}
 *   idle --conns N [--inflight K] [--setup-timeout S] [--timeout S]
 *       Opens N tunnels to an echo port (handshake + 1-byte echo each, at
 *       most K=256 in flight; after --setup-timeout, default 60 s, the ones
 *       still in flight are given up), prints {"established","errors",...}
 *       and then a line "holding"; keeps the established ones open until a
 *       line arrives on stdin or stdin closes (or --timeout, default 120 s,
 *       from start), then closes them all, prints {"released",...,"dropped"}
 *       and exits. Exits 1 without "holding" if none could be established.
 *
 * Common options: --op-timeout S (per connect/handshake/echo, default 10).
 *   --echo-here: instead of --target, loadgen serves the echo target itself,
 *   in the same event loop, on 127.0.0.1 (an ephemeral port): the benchmark's
 *   second set-up, where no separate target process competes for the cores
 *   (rate and idle modes; do not combine with --spread).
 *   --spread N: connection k binds its source to 127.0.2.(1 + k % N) and goes
 *   to target address + (k % N) (start benchsrv with -a N). Loopback has one
 *   ephemeral port range per address pair and a TIME_WAIT port is reusable
 *   only after a second, which caps connection churn at ~14k/s per pair; the
 *   spread lifts that cap for the client leg and the proxy's target leg.
 */
#include "common.h"

#include <fcntl.h>
#include <getopt.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define BLOCK (256 * 1024)
#define SENDS_PER_EVENT 64

enum mode { M_BULK, M_RATE, M_IDLE };
enum state {
	S_FREE,
	S_CONNECTING, /* non-blocking connect in progress */
	S_GREET,      /* greeting sent, waiting for 05 00 */
	S_REQ,        /* CONNECT sent, waiting for the reply */
	S_ECHO,       /* 1 byte sent, waiting for it back */
	S_READY,      /* bulk: tunnel up, waiting for the others */
	S_WRITING,    /* bulk: writing blocks */
	S_DRAIN,      /* bulk: half-closed, waiting for EOF */
	S_HOLD,       /* idle: established, held open */
	S_SERVE,      /* --echo-here: the target's end of a connection */
};

struct conn {
	int fd;
	enum state state;
	uint32_t events;
	uint16_t have, need;
	uint64_t t0; /* ns, connect start */
	size_t woff; /* bulk: offset in the current block */
	uint32_t spread; /* --spread index of this connection */
	unsigned char buf[264];
};

/* options */
static enum mode mode;
static int use_socks = -1;
static struct sockaddr_in proxy_addr, target_addr;
static int have_target;
static long long opt_streams = 1, opt_conc = 64, opt_conns = 1000, opt_inflight = 256;
static long long opt_max_ops = 2000000, opt_spread = 1;
static unsigned long long spread_next;
static double opt_seconds = 5, opt_timeout = 120, opt_setup_timeout = 60, opt_op_timeout = 10, opt_drain = 5;

/* state */
static int epfd;
static struct conn *conns;
static size_t nconns;
static unsigned long long n_errors, err_printed;
static unsigned char block[BLOCK];
static int stdin_marker; /* its address tags stdin in epoll */
static int echo_marker;  /* its address tags the --echo-here listener */
static int echo_fd = -1;
static unsigned long long echo_accepted;

/* bulk */
static size_t bulk_ready, bulk_done_setup, bulk_drained, bulk_live;
static unsigned long long bulk_bytes;
/* rate */
static uint32_t *lat_us;
static unsigned long long rate_ops, rate_started;
static int rate_running;
/* idle */
static size_t idle_launched, idle_inflight, idle_established, idle_dropped;

static void
ep_set(struct conn *c, uint32_t ev)
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
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	c->state = S_FREE;
	c->events = 0;
}

static void conn_start(struct conn *c);
static void on_failed(struct conn *c);

__attribute__((format(printf, 2, 3))) static void
conn_fail(struct conn *c, const char *fmt, ...)
{
	n_errors++;
	if (err_printed < 5) {
		err_printed++;
		va_list ap;
		fprintf(stderr, "loadgen: connection failed: ");
		va_start(ap, fmt);
		vfprintf(stderr, fmt, ap);
		va_end(ap);
		fputc('\n', stderr);
	}
	conn_close(c);
	on_failed(c);
}

/* Send a small message whole; these fit any fresh socket buffer. */
static int
send_small(struct conn *c, const void *p, size_t len)
{
	ssize_t n = send(c->fd, p, len, MSG_NOSIGNAL);
	if (n == (ssize_t)len)
		return 0;
	if (n < 0)
		conn_fail(c, "send: %s", strerror(errno));
	else
		conn_fail(c, "short send of a %zu-byte message", len);
	return -1;
}

static void
expect(struct conn *c, enum state st, uint16_t need)
{
	c->state = st;
	c->have = 0;
	c->need = need;
	ep_set(c, EPOLLIN);
}

/* Read until c->need bytes are in c->buf: 1 done, 0 need more, -1 failed. */
static int
read_need(struct conn *c)
{
	while (c->have < c->need) {
		ssize_t n = read(c->fd, c->buf + c->have, c->need - c->have);
		if (n > 0) {
			c->have += (uint16_t)n;
			continue;
		}
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return 0;
		if (n == 0)
			conn_fail(c, "unexpected EOF (state %d)", c->state);
		else
			conn_fail(c, "read: %s (state %d)", strerror(errno), c->state);
		return -1;
	}
	return 1;
}

static void
tunnel_ready(struct conn *c)
{
	if (mode == M_BULK) {
		c->state = S_READY;
		ep_set(c, 0);
		bulk_ready++;
		bulk_done_setup++;
		return;
	}
	if (send_small(c, "x", 1) == 0)
		expect(c, S_ECHO, 1);
}

static void
on_connected(struct conn *c)
{
	if (!use_socks) {
		tunnel_ready(c);
		return;
	}
	static const unsigned char greet[3] = { 5, 1, 0 };
	if (send_small(c, greet, 3) == 0)
		expect(c, S_GREET, 2);
}

static void
on_echoed(struct conn *c)
{
	if (c->buf[0] != 'x') {
		conn_fail(c, "echo returned a wrong byte");
		return;
	}
	if (mode == M_RATE) {
		uint64_t us = (now_ns() - c->t0) / 1000;
		if (rate_ops < (unsigned long long)opt_max_ops)
			lat_us[rate_ops] = us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
		rate_ops++;
		conn_close(c);
		if (rate_running && rate_started < (unsigned long long)opt_max_ops)
			conn_start(c);
		return;
	}
	/* idle: hold it; watch for the far end dropping it */
	c->state = S_HOLD;
	ep_set(c, EPOLLIN | EPOLLRDHUP);
	idle_established++;
	idle_inflight--;
}

static void
on_readable_hs(struct conn *c)
{
	int r = read_need(c);
	if (r <= 0)
		return;
	switch (c->state) {
	case S_GREET: {
		if (c->buf[0] != 5 || c->buf[1] != 0) {
			conn_fail(c, "SOCKS5 greeting refused (%02x %02x)", c->buf[0], c->buf[1]);
			return;
		}
		unsigned char req[10] = { 5, 1, 0, 1 };
		uint32_t ip = htonl(ntohl(target_addr.sin_addr.s_addr) + c->spread);
		memcpy(req + 4, &ip, 4);
		memcpy(req + 8, &target_addr.sin_port, 2);
		if (send_small(c, req, sizeof(req)) == 0)
			expect(c, S_REQ, 5);
		return;
	}
	case S_REQ:
		if (c->need == 5) {
			if (c->buf[0] != 5 || c->buf[1] != 0) {
				conn_fail(c, "SOCKS5 CONNECT failed (VER %u REP %u)",
				          c->buf[0], c->buf[1]);
				return;
			}
			switch (c->buf[3]) {
			case 1: c->need = 10; break;
			case 4: c->need = 22; break;
			case 3: c->need = (uint16_t)(7 + c->buf[4]); break;
			default:
				conn_fail(c, "SOCKS5 reply with bad ATYP %u", c->buf[3]);
				return;
			}
			if (read_need(c) <= 0)
				return;
		}
		tunnel_ready(c);
		return;
	case S_ECHO:
		on_echoed(c);
		return;
	default:
		return;
	}
}

static void
conn_start(struct conn *c)
{
	if (mode == M_RATE)
		rate_started++;
	c->t0 = now_ns();
	c->woff = 0;
	c->events = 0;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		c->fd = -1;
		conn_fail(c, "socket: %s", strerror(errno));
		return;
	}
	c->fd = fd;
	if (mode != M_BULK) {
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	}
	c->spread = 0;
	if (opt_spread > 1) {
		c->spread = (uint32_t)(spread_next++ % (unsigned long long)opt_spread);
		int one = 1;
		setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
		struct sockaddr_in src = { .sin_family = AF_INET,
			                   .sin_addr.s_addr = htonl(0x7f000201u + c->spread) };
		if (bind(fd, (struct sockaddr *)&src, sizeof(src)) != 0) {
			conn_fail(c, "bind source: %s", strerror(errno));
			return;
		}
	}
	struct epoll_event e = { .events = EPOLLOUT, .data.ptr = c };
	if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &e) != 0)
		die("epoll_ctl add: %s", strerror(errno));
	c->events = EPOLLOUT;
	c->state = S_CONNECTING;
	struct sockaddr_in to = use_socks ? proxy_addr : target_addr;
	if (!use_socks)
		to.sin_addr.s_addr = htonl(ntohl(to.sin_addr.s_addr) + c->spread);
	if (connect(fd, (const struct sockaddr *)&to, sizeof(to)) == 0) {
		on_connected(c);
		return;
	}
	if (errno != EINPROGRESS)
		conn_fail(c, "connect: %s", strerror(errno));
}

static void
on_connect_done(struct conn *c)
{
	int err = 0;
	socklen_t len = sizeof(err);
	if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
		err = errno;
	if (err != 0) {
		conn_fail(c, "connect: %s", strerror(err));
		return;
	}
	on_connected(c);
}

static void
bulk_write(struct conn *c)
{
	for (int i = 0; i < SENDS_PER_EVENT; i++) {
		ssize_t n = send(c->fd, block + c->woff, BLOCK - c->woff, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				return;
			bulk_live--;
			conn_fail(c, "bulk send: %s", strerror(errno));
			return;
		}
		bulk_bytes += (unsigned long long)n;
		c->woff += (size_t)n;
		if (c->woff == BLOCK)
			c->woff = 0;
		else
			return; /* short write: the buffer is full */
	}
}

static void
bulk_drain(struct conn *c)
{
	char tmp[4096];
	for (;;) {
		ssize_t n = read(c->fd, tmp, sizeof(tmp));
		if (n > 0)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		conn_close(c); /* EOF or reset: the far end is done */
		bulk_drained++;
		return;
	}
}

/* --echo-here: the target's end. Echo what arrives (small messages: they
 * fit the fresh socket buffer), close at EOF or error. */
static void
echo_serve(struct conn *c)
{
	for (;;) {
		ssize_t n = read(c->fd, c->buf, sizeof(c->buf));
		if (n > 0) {
			if (send(c->fd, c->buf, (size_t)n, MSG_NOSIGNAL) == n)
				continue;
		} else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
			return;
		}
		close(c->fd);
		free(c);
		return;
	}
}

static void
echo_accept(void)
{
	for (int i = 0; i < 64; i++) {
		int fd = accept4(echo_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EAGAIN || errno == EINTR || errno == ECONNABORTED)
				return;
			die("echo accept: %s", strerror(errno));
		}
		struct conn *c = calloc(1, sizeof(*c));
		if (c == NULL)
			die("out of memory");
		c->fd = fd;
		c->state = S_SERVE;
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		struct epoll_event e = { .events = EPOLLIN, .data.ptr = c };
		if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &e) != 0)
			die("epoll_ctl add: %s", strerror(errno));
		echo_accepted++;
	}
}

/* Listen on 127.0.0.1:0 and make that the target. */
static void
echo_listen(void)
{
	echo_fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (echo_fd < 0)
		die("socket: %s", strerror(errno));
	struct sockaddr_in sa = { .sin_family = AF_INET,
		                  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sa);
	if (bind(echo_fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
	    listen(echo_fd, 65535) != 0 ||
	    getsockname(echo_fd, (struct sockaddr *)&sa, &len) != 0)
		die("echo listener: %s", strerror(errno));
	target_addr = sa;
	struct epoll_event e = { .events = EPOLLIN, .data.ptr = &echo_marker };
	if (epoll_ctl(epfd, EPOLL_CTL_ADD, echo_fd, &e) != 0)
		die("epoll_ctl add: %s", strerror(errno));
}

static void
on_idle_stdin(int *release)
{
	char tmp[256];
	ssize_t n = read(0, tmp, sizeof(tmp));
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0 || memchr(tmp, '\n', (size_t)n) != NULL)
		*release = 1;
}

static void
on_event(struct conn *c, uint32_t ev)
{
	switch (c->state) {
	case S_CONNECTING: on_connect_done(c); break;
	case S_GREET:
	case S_REQ:
	case S_ECHO: on_readable_hs(c); break;
	case S_WRITING:
		if (ev & (EPOLLERR | EPOLLHUP)) {
			bulk_live--;
			conn_fail(c, "bulk stream closed by the far end");
		} else {
			bulk_write(c);
		}
		break;
	case S_DRAIN: bulk_drain(c); break;
	case S_HOLD: {
		char tmp[64];
		ssize_t n = read(c->fd, tmp, sizeof(tmp));
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
			conn_close(c);
			idle_dropped++;
		}
		break;
	}
	case S_READY:
		if (ev & (EPOLLERR | EPOLLHUP)) {
			bulk_ready--;
			conn_close(c);
			n_errors++;
		}
		break;
	case S_SERVE: echo_serve(c); break;
	case S_FREE: break;
	}
}

/* A connection failed. Only idle mode keeps count here; rate mode refills
 * free slots from its main loop (never recursively from here, so a storm of
 * instant failures cannot grow the stack). */
static void
on_failed(struct conn *c)
{
	(void)c;
	if (mode == M_IDLE)
		idle_inflight--;
}

static int
in_handshake(const struct conn *c)
{
	return c->state == S_CONNECTING || c->state == S_GREET || c->state == S_REQ ||
	       c->state == S_ECHO;
}

/* Fail every handshake older than --op-timeout. */
static void
check_timeouts(uint64_t now)
{
	uint64_t limit = (uint64_t)(opt_op_timeout * 1e9);
	for (size_t i = 0; i < nconns; i++) {
		struct conn *c = &conns[i];
		if (in_handshake(c) && now > c->t0 && now - c->t0 > limit)
			conn_fail(c, "timed out after %.1f s (state %d)", opt_op_timeout,
			          c->state);
	}
}

static int
poll_once(int timeout_ms, int *release)
{
	struct epoll_event evs[256];
	int n = epoll_wait(epfd, evs, 256, timeout_ms);
	if (n < 0) {
		if (errno == EINTR)
			return 0;
		die("epoll_wait: %s", strerror(errno));
	}
	for (int i = 0; i < n; i++) {
		if (evs[i].data.ptr == &stdin_marker) {
			if (release)
				on_idle_stdin(release);
			continue;
		}
		if (evs[i].data.ptr == &echo_marker) {
			echo_accept();
			continue;
		}
		on_event(evs[i].data.ptr, evs[i].events);
	}
	return n;
}

static int
ms_until(uint64_t t, uint64_t now, int cap)
{
	if (t <= now)
		return 0;
	uint64_t ms = (t - now + 999999) / 1000000;
	return ms > (uint64_t)cap ? cap : (int)ms;
}

static void
alloc_conns(size_t n)
{
	nconns = n;
	conns = calloc(n, sizeof(*conns));
	if (conns == NULL)
		die("out of memory");
	for (size_t i = 0; i < n; i++)
		conns[i].fd = -1;
}

static int
run_bulk(void)
{
	memset(block, 0x5a, sizeof(block));
	alloc_conns((size_t)opt_streams);
	for (size_t i = 0; i < nconns; i++)
		conn_start(&conns[i]);
	/* set-up phase: wait until every stream is ready or has failed */
	for (;;) {
		size_t pending = 0;
		for (size_t i = 0; i < nconns; i++)
			pending += in_handshake(&conns[i]);
		if (pending == 0)
			break;
		poll_once(100, NULL);
		check_timeouts(now_ns());
	}
	if (bulk_ready == 0) {
		printf("{\"bytes\":0,\"seconds\":0,\"mbps\":0,\"streams\":%lld,"
		       "\"established\":0,\"errors\":%llu}\n",
		       opt_streams, n_errors);
		return 1;
	}
	uint64_t t_start = now_ns();
	uint64_t deadline = t_start + (uint64_t)(opt_seconds * 1e9);
	for (size_t i = 0; i < nconns; i++) {
		if (conns[i].state == S_READY) {
			conns[i].state = S_WRITING;
			ep_set(&conns[i], EPOLLOUT);
			bulk_live++;
		}
	}
	size_t established = bulk_ready;
	uint64_t now;
	while ((now = now_ns()) < deadline && bulk_live > 0)
		poll_once(ms_until(deadline, now, 100), NULL);
	uint64_t t_write_end = now_ns();
	/* half-close and wait for the far end to close: all data delivered */
	size_t to_drain = 0;
	for (size_t i = 0; i < nconns; i++) {
		struct conn *c = &conns[i];
		if (c->state != S_WRITING)
			continue;
		shutdown(c->fd, SHUT_WR);
		c->state = S_DRAIN;
		ep_set(c, EPOLLIN | EPOLLRDHUP);
		to_drain++;
	}
	uint64_t drain_deadline = t_write_end + (uint64_t)(opt_drain * 1e9);
	while (bulk_drained < to_drain && (now = now_ns()) < drain_deadline)
		poll_once(ms_until(drain_deadline, now, 100), NULL);
	int drained = bulk_drained == to_drain;
	uint64_t t_end = drained ? now_ns() : t_write_end;
	for (size_t i = 0; i < nconns; i++)
		conn_close(&conns[i]);
	double secs = (double)(t_end - t_start) / 1e9;
	double wsecs = (double)(t_write_end - t_start) / 1e9;
	printf("{\"bytes\":%llu,\"seconds\":%.6f,\"mbps\":%.3f,\"streams\":%lld,"
	       "\"established\":%zu,\"errors\":%llu,\"write_seconds\":%.6f,"
	       "\"drained\":%s}\n",
	       bulk_bytes, secs, secs > 0 ? (double)bulk_bytes * 8 / secs / 1e6 : 0.0,
	       opt_streams, established, n_errors, wsecs, drained ? "true" : "false");
	return 0;
}

static int
cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

static uint32_t
percentile(const uint32_t *v, size_t n, double p)
{
	if (n == 0)
		return 0;
	size_t rank = (size_t)(p * (double)n + 0.999999); /* nearest rank */
	if (rank < 1)
		rank = 1;
	if (rank > n)
		rank = n;
	return v[rank - 1];
}

static int
run_rate(void)
{
	lat_us = malloc((size_t)opt_max_ops * sizeof(*lat_us));
	if (lat_us == NULL)
		die("out of memory");
	alloc_conns((size_t)opt_conc);
	uint64_t t_start = now_ns();
	uint64_t deadline = t_start + (uint64_t)(opt_seconds * 1e9);
	uint64_t next_check = t_start + 100000000u;
	rate_running = 1;
	uint64_t now;
	for (;;) {
		now = now_ns();
		if (now >= deadline)
			break;
		size_t active = 0;
		for (size_t i = 0; i < nconns; i++) {
			if (conns[i].state == S_FREE &&
			    rate_started < (unsigned long long)opt_max_ops)
				conn_start(&conns[i]);
			active += conns[i].state != S_FREE;
		}
		if (active == 0 && rate_started >= (unsigned long long)opt_max_ops)
			break; /* --max-ops reached */
		poll_once(ms_until(deadline, now, 100), NULL);
		if (now >= next_check) {
			check_timeouts(now);
			next_check = now + 100000000u;
		}
	}
	uint64_t t_end = now_ns();
	rate_running = 0;
	for (size_t i = 0; i < nconns; i++) /* abandon what is in flight */
		conn_close(&conns[i]);
	size_t n = rate_ops < (unsigned long long)opt_max_ops ? (size_t)rate_ops
	                                                      : (size_t)opt_max_ops;
	qsort(lat_us, n, sizeof(*lat_us), cmp_u32);
	double secs = (double)(t_end - t_start) / 1e9;
	printf("{\"ops\":%llu,\"seconds\":%.6f,\"ops_per_sec\":%.1f,\"p50_us\":%u,"
	       "\"p99_us\":%u,\"errors\":%llu,\"concurrency\":%lld}\n",
	       rate_ops, secs, secs > 0 ? (double)rate_ops / secs : 0.0,
	       percentile(lat_us, n, 0.50), percentile(lat_us, n, 0.99), n_errors,
	       opt_conc);
	return rate_ops > 0 ? 0 : 1;
}

static int
run_idle(void)
{
	alloc_conns((size_t)opt_conns);
	uint64_t t_start = now_ns();
	uint64_t deadline = t_start + (uint64_t)(opt_timeout * 1e9);
	double st = opt_setup_timeout < opt_timeout ? opt_setup_timeout : opt_timeout;
	uint64_t setup_deadline = t_start + (uint64_t)(st * 1e9);
	uint64_t next_check = t_start + 100000000u;
	uint64_t now;
	int timed_out = 0;
	while (idle_established + n_errors < nconns) {
		while (idle_inflight < (size_t)opt_inflight && idle_launched < nconns) {
			idle_inflight++;
			conn_start(&conns[idle_launched++]);
		}
		now = now_ns();
		if (now >= setup_deadline) {
			timed_out = 1;
			break;
		}
		poll_once(ms_until(setup_deadline, now, 100), NULL);
		if (now >= next_check) {
			check_timeouts(now);
			next_check = now + 100000000u;
		}
	}
	unsigned long long abandoned = 0;
	if (timed_out) { /* give up on what is still in flight; hold the rest */
		for (size_t i = 0; i < nconns; i++) {
			if (in_handshake(&conns[i])) {
				conn_close(&conns[i]);
				abandoned++;
			}
		}
	}
	double setup = (double)(now_ns() - t_start) / 1e9;
	printf("{\"established\":%zu,\"errors\":%llu,\"requested\":%zu,"
	       "\"setup_seconds\":%.3f,\"setup_timed_out\":%s,\"abandoned\":%llu,"
	       "\"not_attempted\":%zu}\n",
	       idle_established, n_errors, nconns, setup, timed_out ? "true" : "false",
	       abandoned, nconns - idle_launched);
	if (idle_established == 0) {
		fflush(stdout);
		return 1;
	}
	printf("holding\n");
	fflush(stdout);

	int release = 0;
	int fl = fcntl(0, F_GETFL);
	if (fl >= 0)
		fcntl(0, F_SETFL, fl | O_NONBLOCK);
	struct epoll_event e = { .events = EPOLLIN, .data.ptr = &stdin_marker };
	if (epoll_ctl(epfd, EPOLL_CTL_ADD, 0, &e) != 0)
		release = 1; /* stdin not pollable (e.g. /dev/null): nothing to wait on */
	while (!release && (now = now_ns()) < deadline)
		poll_once(ms_until(deadline, now, 1000), &release);
	size_t held = 0;
	for (size_t i = 0; i < nconns; i++) {
		held += conns[i].state == S_HOLD;
		conn_close(&conns[i]);
	}
	printf("{\"released\":%zu,\"dropped\":%zu,\"timed_out\":%s}\n", held,
	       idle_dropped, release ? "false" : "true");
	return 0;
}

static void
usage(void)
{
	fprintf(stderr,
	        "usage: loadgen bulk|rate|idle (--socks5 HOST:PORT | --direct) --target HOST:PORT\n"
	        "         [--streams N] [--seconds S] [--concurrency C] [--max-ops N]\n"
	        "         [--conns N] [--inflight K] [--timeout S] [--op-timeout S]\n"
	        "         [--drain-timeout S] [--spread N] [--setup-timeout S]\n"
	        "       loadgen rate|idle (--socks5 HOST:PORT | --direct) --echo-here [...]\n"
	        "  all addresses must be IPv4 loopback; see the comment in loadgen.c\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	prog_name = "loadgen";
	if (argc < 2)
		usage();
	if (strcmp(argv[1], "bulk") == 0)
		mode = M_BULK;
	else if (strcmp(argv[1], "rate") == 0)
		mode = M_RATE;
	else if (strcmp(argv[1], "idle") == 0)
		mode = M_IDLE;
	else
		usage();
	static const struct option lopts[] = {
		{ "socks5", required_argument, NULL, 'x' },
		{ "direct", no_argument, NULL, 'd' },
		{ "target", required_argument, NULL, 't' },
		{ "streams", required_argument, NULL, 'n' },
		{ "seconds", required_argument, NULL, 's' },
		{ "concurrency", required_argument, NULL, 'c' },
		{ "max-ops", required_argument, NULL, 'm' },
		{ "conns", required_argument, NULL, 'N' },
		{ "inflight", required_argument, NULL, 'i' },
		{ "timeout", required_argument, NULL, 'T' },
		{ "op-timeout", required_argument, NULL, 'o' },
		{ "drain-timeout", required_argument, NULL, 'D' },
		{ "spread", required_argument, NULL, 'S' },
		{ "setup-timeout", required_argument, NULL, 'U' },
		{ "echo-here", no_argument, NULL, 'E' },
		{ "help", no_argument, NULL, 'h' },
		{ 0, 0, 0, 0 },
	};
	int opt;
	optind = 2;
	while ((opt = getopt_long(argc, argv, "", lopts, NULL)) != -1) {
		switch (opt) {
		case 'x': use_socks = 1; parse_loopback(optarg, &proxy_addr, 0); break;
		case 'd': use_socks = 0; break;
		case 't': have_target = 1; parse_loopback(optarg, &target_addr, 0); break;
		case 'n': opt_streams = parse_num(optarg, 1, 4096, "--streams"); break;
		case 's': opt_seconds = parse_double(optarg, 0.01, 3600, "--seconds"); break;
		case 'c': opt_conc = parse_num(optarg, 1, 16384, "--concurrency"); break;
		case 'm': opt_max_ops = parse_num(optarg, 1, 100000000, "--max-ops"); break;
		case 'N': opt_conns = parse_num(optarg, 1, 1000000, "--conns"); break;
		case 'i': opt_inflight = parse_num(optarg, 1, 65536, "--inflight"); break;
		case 'T': opt_timeout = parse_double(optarg, 0.1, 86400, "--timeout"); break;
		case 'o': opt_op_timeout = parse_double(optarg, 0.01, 3600, "--op-timeout"); break;
		case 'U': opt_setup_timeout = parse_double(optarg, 0.1, 86400, "--setup-timeout"); break;
		case 'S': opt_spread = parse_num(optarg, 1, 254, "--spread"); break;
		case 'D': opt_drain = parse_double(optarg, 0, 3600, "--drain-timeout"); break;
		case 'E': have_target = 2; break;
		default: usage();
		}
	}
	if (optind != argc || use_socks < 0 || !have_target)
		usage();
	if (have_target == 2 && (mode == M_BULK || opt_spread > 1))
		die("--echo-here is for rate and idle modes, without --spread");
	if ((ntohl(target_addr.sin_addr.s_addr) & 0xffu) + (uint32_t)opt_spread > 255)
		die("--spread %lld runs past the end of the target's /24", opt_spread);
	rlim_t lim = raise_nofile();
	size_t want = mode == M_IDLE ? (size_t)opt_conns
	            : mode == M_RATE ? (size_t)opt_conc : (size_t)opt_streams;
	if (have_target == 2)
		want *= 2; /* the target's ends too */
	if (lim != RLIM_INFINITY && want + 16 > lim)
		die("need %zu fds but RLIMIT_NOFILE is %llu", want + 16,
		    (unsigned long long)lim);
	signal(SIGPIPE, SIG_IGN);
	epfd = epoll_create1(EPOLL_CLOEXEC);
	if (epfd < 0)
		die("epoll_create1: %s", strerror(errno));
	if (have_target == 2)
		echo_listen();
	int rc;
	switch (mode) {
	case M_BULK: rc = run_bulk(); break;
	case M_RATE: rc = run_rate(); break;
	default: rc = run_idle(); break;
	}
	fflush(stdout);
	return rc;
}
