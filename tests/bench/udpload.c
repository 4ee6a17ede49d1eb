/* udpload: the SOCKS5 UDP benchmark's echo server and load generator.
 *
 *   udpload echo [--port P]
 *       A UDP echo server on 127.0.0.1:P (0: a free port): every datagram
 *       goes back to its sender, in batches (recvmmsg/sendmmsg). Prints
 *       "ready port=N", then serves until killed.
 *   udpload run (--socks5 HOST:PORT | --direct) --target HOST:PORT
 *               [--size N] [--window W] [--seconds S]
 *       Round trips of N-byte payloads (default 1200) to the echo server,
 *       directly or through a SOCKS5 UDP association (asked for with DST
 *       0.0.0.0:0 on a TCP control connection held for the run), with at
 *       most W datagrams in flight (default 64): each echo that comes back
 *       lets another go. A window with nothing back for 50 ms is counted
 *       lost and sent anew, so a proxy that drops does not stall the run.
 *       Prints one JSON line: sent, received, lost, seconds, pps (echoes
 *       received per second) and mbps (their payload bits per second, one
 *       way).
 *
 * Loopback only (common.h refuses other addresses); every run ends after
 * --seconds. */
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "common.h"

#define BATCH 32
#define DGRAM_MAX 65507
#define HDR 10 /* SOCKS UDP header with an IPv4 address */
#define LOSS_MS 50

static uint8_t bufs[BATCH][DGRAM_MAX];

static int udp_socket(const struct sockaddr_in *bind_to)
{
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	int sz = 4 << 20;

	if (fd < 0)
		die("socket: %s", strerror(errno));
	(void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
	(void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
	if (bind(fd, (const struct sockaddr *)bind_to, sizeof(*bind_to)) < 0)
		die("bind: %s", strerror(errno));
	return fd;
}

static int run_echo(int port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_port = htons((uint16_t)port),
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sa);
	struct sockaddr_in from[BATCH];
	struct mmsghdr mm[BATCH];
	struct iovec iov[BATCH];
	int fd = udp_socket(&sa);

	if (getsockname(fd, (struct sockaddr *)&sa, &len) < 0)
		die("getsockname: %s", strerror(errno));
	printf("ready port=%u\n", ntohs(sa.sin_port));
	fflush(stdout);
	for (;;) {
		int n;

		for (int i = 0; i < BATCH; i++) {
			iov[i] = (struct iovec){ bufs[i], DGRAM_MAX };
			mm[i].msg_hdr = (struct msghdr){
				.msg_name = &from[i],
				.msg_namelen = sizeof(from[i]),
				.msg_iov = &iov[i],
				.msg_iovlen = 1,
			};
		}
		n = recvmmsg(fd, mm, BATCH, MSG_WAITFORONE, NULL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			die("recvmmsg: %s", strerror(errno));
		}
		for (int i = 0; i < n; i++)
			iov[i].iov_len = mm[i].msg_len;
		(void)sendmmsg(fd, mm, (unsigned)n, 0);
	}
}

static void read_exact(int fd, uint8_t *p, size_t n)
{
	while (n > 0) {
		ssize_t r = read(fd, p, n);

		if (r <= 0)
			die("SOCKS5 control connection: %s",
			    r == 0 ? "closed" : strerror(errno));
		p += r;
		n -= (size_t)r;
	}
}

/* UDP ASSOCIATE on a control connection to proxy; the relay's address in
 * *relay. Returns the control socket (to hold open). */
static int socks5_associate(const struct sockaddr_in *proxy,
			    struct sockaddr_in *relay)
{
	static const uint8_t hello[] = { 5, 1, 0 };
	static const uint8_t req[] = { 5, 3, 0, 1, 0, 0, 0, 0, 0, 0 };
	uint8_t rep[10];
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0 || connect(fd, (const struct sockaddr *)proxy,
			      sizeof(*proxy)) < 0)
		die("connect to the proxy: %s", strerror(errno));
	if (write(fd, hello, sizeof(hello)) != (ssize_t)sizeof(hello))
		die("write: %s", strerror(errno));
	read_exact(fd, rep, 2);
	if (rep[0] != 5 || rep[1] != 0)
		die("the proxy refused the method (%u %u)", rep[0], rep[1]);
	if (write(fd, req, sizeof(req)) != (ssize_t)sizeof(req))
		die("write: %s", strerror(errno));
	read_exact(fd, rep, 4);
	if (rep[1] != 0)
		die("UDP ASSOCIATE refused: REP %u", rep[1]);
	if (rep[3] != 1)
		die("the relay is not an IPv4 address (ATYP %u)", rep[3]);
	read_exact(fd, rep + 4, 6);
	memset(relay, 0, sizeof(*relay));
	relay->sin_family = AF_INET;
	memcpy(&relay->sin_addr, rep + 4, 4);
	memcpy(&relay->sin_port, rep + 8, 2);
	if (relay->sin_addr.s_addr == htonl(INADDR_ANY))
		relay->sin_addr = proxy->sin_addr;
	return fd;
}

struct run {
	int fd;
	struct sockaddr_in to;   /* the echo, or the relay */
	uint8_t hdr[HDR];        /* through a proxy: naming the echo */
	size_t hdrlen, size;
	unsigned window, inflight;
	uint64_t sent, received, lost, seq;
};

/* Fill the window: up to BATCH datagrams per sendmmsg. */
static void run_send(struct run *r)
{
	struct mmsghdr mm[BATCH];
	struct iovec iov[BATCH][2];
	unsigned n = 0;

	while (r->inflight + n < r->window && n < BATCH) {
		memcpy(bufs[n], &r->seq, sizeof(r->seq));
		r->seq++;
		iov[n][0] = (struct iovec){ r->hdr, r->hdrlen };
		iov[n][1] = (struct iovec){ bufs[n], r->size };
		mm[n].msg_hdr = (struct msghdr){
			.msg_name = &r->to,
			.msg_namelen = sizeof(r->to),
			.msg_iov = r->hdrlen ? iov[n] : &iov[n][1],
			.msg_iovlen = r->hdrlen ? 2 : 1,
		};
		n++;
	}
	if (n == 0)
		return;
	int k = sendmmsg(r->fd, mm, n, 0);

	if (k > 0) {
		r->inflight += (unsigned)k;
		r->sent += (unsigned)k;
	}
}

/* Take every echo waiting; 0 when none came within wait_ms. */
static int run_recv(struct run *r, int wait_ms)
{
	struct pollfd pfd = { r->fd, POLLIN, 0 };
	struct mmsghdr mm[BATCH];
	struct iovec iov[BATCH];
	int got = 0, n;

	if (poll(&pfd, 1, wait_ms) <= 0)
		return 0;
	do {
		for (int i = 0; i < BATCH; i++) {
			iov[i] = (struct iovec){ bufs[i], DGRAM_MAX };
			mm[i].msg_hdr = (struct msghdr){ .msg_iov = &iov[i],
							 .msg_iovlen = 1 };
		}
		n = recvmmsg(r->fd, mm, BATCH, MSG_DONTWAIT, NULL);
		for (int i = 0; i < n; i++) {
			if (mm[i].msg_len != r->hdrlen + r->size)
				continue; /* not one of ours */
			got++;
			r->received++;
			if (r->inflight > 0)
				r->inflight--;
		}
	} while (n == BATCH);
	return got;
}

static void usage(void)
{
	die("usage: udpload echo [--port P] | udpload run (--socks5 HOST:PORT "
	    "| --direct) --target HOST:PORT [--size N] [--window W] "
	    "[--seconds S]");
}

int main(int argc, char **argv)
{
	struct sockaddr_in proxy, target, any = { .sin_family = AF_INET };
	bool direct = false, have_proxy = false, have_target = false;
	struct run r = { .size = 1200, .window = 64 };
	double seconds = 5;
	int port = 0, ctl = -1;

	prog_name = "udpload";
	signal(SIGPIPE, SIG_IGN);
	if (argc < 2)
		usage();
	for (int i = 2; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (strcmp(a, "--direct") == 0) {
			direct = true;
			continue;
		}
		if (v == NULL)
			usage();
		i++;
		if (strcmp(a, "--port") == 0)
			port = (int)parse_num(v, 0, 65535, "port");
		else if (strcmp(a, "--socks5") == 0)
			parse_loopback(v, &proxy, 0), have_proxy = true;
		else if (strcmp(a, "--target") == 0)
			parse_loopback(v, &target, 0), have_target = true;
		else if (strcmp(a, "--size") == 0)
			r.size = (size_t)parse_num(v, 8, DGRAM_MAX - HDR, "size");
		else if (strcmp(a, "--window") == 0)
			r.window = (unsigned)parse_num(v, 1, 4096, "window");
		else if (strcmp(a, "--seconds") == 0)
			seconds = parse_double(v, 0.1, 600, "seconds");
		else
			usage();
	}
	if (strcmp(argv[1], "echo") == 0)
		return run_echo(port);
	if (strcmp(argv[1], "run") != 0 || !have_target || direct == have_proxy)
		usage();
	any.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	r.fd = udp_socket(&any);
	r.to = target;
	if (have_proxy) {
		ctl = socks5_associate(&proxy, &r.to);
		r.hdr[3] = 1; /* RSV RSV FRAG 0, ATYP IPv4 */
		memcpy(r.hdr + 4, &target.sin_addr, 4);
		memcpy(r.hdr + 8, &target.sin_port, 2);
		r.hdrlen = HDR;
	}
	uint64_t t0 = now_ns(), end = t0 + (uint64_t)(seconds * 1e9);

	while (now_ns() < end) {
		run_send(&r);
		if (run_recv(&r, LOSS_MS) == 0) {
			r.lost += r.inflight; /* none back: the window is gone */
			r.inflight = 0;
		}
	}
	double s = (double)(now_ns() - t0) / 1e9;

	printf("{\"size\": %zu, \"window\": %u, \"sent\": %llu, "
	       "\"received\": %llu, \"lost\": %llu, \"seconds\": %.3f, "
	       "\"pps\": %.1f, \"mbps\": %.2f}\n",
	       r.size, r.window, (unsigned long long)r.sent,
	       (unsigned long long)r.received, (unsigned long long)r.lost, s,
	       (double)r.received / s,
	       (double)r.received * (double)r.size * 8 / s / 1e6);
	if (ctl >= 0)
		close(ctl);
	close(r.fd);
	return 0;
}
