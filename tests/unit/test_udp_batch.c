/* Unit tests for src/front/udp_batch.c: a batch leaves as its datagrams,
 * each whole and in order, whether runs of it went as UDP_SEGMENT trains
 * or one by one; what joins a train; the fallback without GSO. On real
 * loopback UDP sockets. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "front/udp_batch.h"

struct pair {
	int tx, rx;
	struct sockaddr_in to, other;
};

static int udp_bound(struct sockaddr_in *sa)
{
	socklen_t len = sizeof(*sa);
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	int sz = 1 << 20;

	assert_true(fd >= 0);
	memset(sa, 0, sizeof(*sa));
	sa->sin_family = AF_INET;
	sa->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)sa, sizeof(*sa)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)sa, &len), 0);
	(void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
	return fd;
}

static int pair_setup(void **state)
{
	struct pair *p = calloc(1, sizeof(*p));
	struct sockaddr_in txa;
	int other;

	assert_non_null(p);
	p->tx = udp_bound(&txa);
	p->rx = udp_bound(&p->to);
	other = udp_bound(&p->other);
	close(other); /* an address nobody reads: a second destination */
	*state = p;
	return 0;
}

static int pair_teardown(void **state)
{
	struct pair *p = *state;

	close(p->tx);
	close(p->rx);
	free(p);
	return 0;
}

/* The next datagram on fd (waits up to 5 s): its length, or -1. */
static ssize_t recv_one(int fd, uint8_t *buf, size_t cap)
{
	struct pollfd pfd = { fd, POLLIN, 0 };

	if (poll(&pfd, 1, 5000) != 1)
		return -1;
	return recv(fd, buf, cap, MSG_DONTWAIT);
}

#define N 40

/* payload i: N datagrams, byte i repeated lens[i] times */
static uint8_t data[N][2000];

static void build(struct mmsghdr *m, struct iovec *iov, const size_t *lens,
		  size_t n, struct sockaddr_in *to)
{
	for (size_t i = 0; i < n; i++) {
		memset(data[i], (int)i + 1, lens[i]);
		iov[i] = (struct iovec){ data[i], lens[i] };
		m[i].msg_hdr = (struct msghdr){ .msg_name = to,
						.msg_namelen = sizeof(*to),
						.msg_iov = &iov[i],
						.msg_iovlen = 1 };
	}
}

static void expect_all(int rx, const size_t *lens, size_t n)
{
	uint8_t buf[4096];

	for (size_t i = 0; i < n; i++) {
		ssize_t got = recv_one(rx, buf, sizeof(buf));

		assert_int_equal(got, (ssize_t)lens[i]);
		for (size_t k = 0; k < lens[i]; k++)
			assert_int_equal(buf[k], (uint8_t)(i + 1));
	}
	assert_int_equal(recv(rx, buf, sizeof(buf), MSG_DONTWAIT), -1);
}

/* Runs of one size (the last shorter), single ones, sizes above the GSO
 * cap: every datagram arrives alone and whole, in order. */
static void test_batch_datagrams_stay_whole(void **state)
{
	struct pair *p = *state;
	struct mmsghdr m[N];
	struct iovec iov[N];
	size_t lens[N];
	bool gso = true;

	for (size_t i = 0; i < N; i++)
		lens[i] = i < 20 ? 1200 : i == 20 ? 100 : i < 24 ? 1452
			  : i < 27 ? 1453 : i % 2 ? 64 : 1;
	build(m, iov, lens, N, &p->to);
	assert_int_equal(udp_batch_send(p->tx, m, N, &gso), N);
	expect_all(p->rx, lens, N);
	/* the same without GSO */
	gso = false;
	assert_int_equal(udp_batch_send(p->tx, m, N, &gso), N);
	expect_all(p->rx, lens, N);
}

/* Two destinations interleaved, and iovecs that do not follow each other:
 * no train is formed across them, nothing goes to the wrong place. */
static void test_batch_trains_only_where_they_may(void **state)
{
	struct pair *p = *state;
	struct mmsghdr m[6];
	struct iovec iov[6], far;
	size_t lens[6] = { 500, 500, 500, 500, 500, 500 };
	bool gso = true;

	build(m, iov, lens, 6, &p->to);
	m[1].msg_hdr.msg_name = &p->other; /* to the other destination */
	far = iov[4];
	m[4].msg_hdr.msg_iov = &far;       /* not after m[3]'s iovec */
	assert_int_equal(udp_batch_send(p->tx, m, 6, &gso), 6);
	{
		size_t want[5] = { 500, 500, 500, 500, 500 };
		uint8_t buf[1000];
		uint8_t order[5] = { 1, 3, 4, 5, 6 };

		for (size_t i = 0; i < 5; i++) {
			assert_int_equal(recv_one(p->rx, buf, sizeof(buf)),
					 (ssize_t)want[i]);
			assert_int_equal(buf[0], order[i]);
		}
		assert_int_equal(recv(p->rx, buf, sizeof(buf), MSG_DONTWAIT),
				 -1);
	}
	assert_true(gso);
}

/* A socket that cannot send (closed): nothing is counted as sent. */
static void test_batch_send_failure_counts_nothing(void **state)
{
	struct pair *p = *state;
	struct mmsghdr m[4];
	struct iovec iov[4];
	size_t lens[4] = { 100, 100, 100, 100 };
	bool gso = true;
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	build(m, iov, lens, 4, &p->to);
	close(fd);
	assert_int_equal(udp_batch_send(fd, m, 4, &gso), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_batch_datagrams_stay_whole,
						pair_setup, pair_teardown),
		cmocka_unit_test_setup_teardown(
			test_batch_trains_only_where_they_may, pair_setup,
			pair_teardown),
		cmocka_unit_test_setup_teardown(
			test_batch_send_failure_counts_nothing, pair_setup,
			pair_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
