/* Unit tests of the routing codec between the front and the ruleset
 * process (route_wire.c): the trust boundary both ways, since either
 * process may be the compromised one. Round trips, the largest messages,
 * and every kind of malformed, truncated and overlong input. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "common/msg.h"
#include "common/route_wire.h"

#define DEC_BUF (sizeof(struct msg_route) + MSG_ROUTE_STRS_MAX)
#define REQ_BUF (sizeof(struct msg_route_req) + ROUTE_STR_MAX + 2 * ROUTE_CRED_MAX)

static struct route_str S(const char *s)
{
	return (struct route_str){ s, (uint16_t)strlen(s) };
}

static bool str_is(struct route_str s, const char *want)
{
	return s.len == strlen(want) && memcmp(s.p, want, s.len) == 0;
}

static void test_decision_roundtrip(void **state)
{
	static char buf[DEC_BUF];
	struct route_decision d = { .result = ROUTE_GO, .nhops = 2 }, out;
	int n;

	(void)state;
	d.addr = S("example.com:443");
	d.hops[0] = S("socks5://10.0.0.1:1080");
	d.hops[1] = S("http://u:p@[2001:db8::1]:3128");
	n = route_wire_encode(buf, sizeof(buf), &d);
	assert_true(n > 0);
	assert_int_equal(route_wire_decode(buf, (size_t)n, &out), 0);
	assert_int_equal(out.result, ROUTE_GO);
	assert_int_equal(out.nhops, 2);
	assert_true(str_is(out.addr, "example.com:443"));
	assert_true(str_is(out.hops[0], "socks5://10.0.0.1:1080"));
	assert_true(str_is(out.hops[1], "http://u:p@[2001:db8::1]:3128"));
	/* the strings point into the message */
	assert_true(out.addr.p > buf && out.addr.p < buf + n);
}

/* Verdicts other than GO carry no address. */
static void test_decision_verdicts(void **state)
{
	static const uint16_t results[] = { ROUTE_REJECT, ROUTE_ERROR,
					    ROUTE_NO_RULESET, ROUTE_DONE };
	static char buf[DEC_BUF];
	struct route_decision d = { 0 }, out;

	(void)state;
	for (size_t i = 0; i < sizeof(results) / sizeof(results[0]); i++) {
		int n;

		d.result = results[i];
		n = route_wire_encode(buf, sizeof(buf), &d);
		assert_int_equal(n, sizeof(struct msg_route) + 2);
		assert_int_equal(route_wire_decode(buf, (size_t)n, &out), 0);
		assert_int_equal(out.result, results[i]);
		assert_int_equal(out.addr.len, 0);
	}
	/* GO without an address is refused */
	d.result = ROUTE_GO;
	assert_int_equal(route_wire_encode(buf, sizeof(buf), &d),
			 sizeof(struct msg_route) + 2);
	assert_int_equal(route_wire_decode(buf, sizeof(struct msg_route) + 2,
					   &out),
			 -1);
}

/* The largest decision: ROUTE_HOPS_MAX hops and every string at
 * ROUTE_STR_MAX fills MSG_ROUTE_STRS_MAX exactly. */
static void test_decision_largest(void **state)
{
	static char buf[DEC_BUF], s[ROUTE_STR_MAX + 1];
	struct route_decision d = { .result = ROUTE_GO,
				    .nhops = ROUTE_HOPS_MAX },
			      out;
	int n;

	(void)state;
	memset(s, 'a', ROUTE_STR_MAX);
	d.addr = (struct route_str){ s, ROUTE_STR_MAX };
	for (int i = 0; i < ROUTE_HOPS_MAX; i++)
		d.hops[i] = d.addr;
	n = route_wire_encode(buf, sizeof(buf), &d);
	assert_int_equal(n, (int)DEC_BUF);
	assert_int_equal(route_wire_decode(buf, (size_t)n, &out), 0);
	assert_int_equal(out.nhops, ROUTE_HOPS_MAX);
	assert_int_equal(out.hops[ROUTE_HOPS_MAX - 1].len, ROUTE_STR_MAX);
	/* one byte short of room: refused, nothing written past cap */
	assert_int_equal(route_wire_encode(buf, sizeof(buf) - 1, &d), -1);
}

static void test_decision_encode_refuses(void **state)
{
	static char buf[DEC_BUF], s[ROUTE_STR_MAX + 2];
	struct route_decision d = { .result = ROUTE_GO };

	(void)state;
	memset(s, 'a', sizeof(s) - 1);
	d.addr = (struct route_str){ s, ROUTE_STR_MAX + 1 };
	assert_int_equal(route_wire_encode(buf, sizeof(buf), &d), -1);
	d.addr = S("a:1");
	d.nhops = ROUTE_HOPS_MAX + 1;
	assert_int_equal(route_wire_encode(buf, sizeof(buf), &d), -1);
	d.nhops = 1;
	d.hops[0] = (struct route_str){ s, ROUTE_STR_MAX + 1 };
	assert_int_equal(route_wire_encode(buf, sizeof(buf), &d), -1);
	d.hops[0] = S("socks5://b");
	assert_int_equal(route_wire_encode(buf, 3, &d), -1);
	assert_int_equal(route_wire_encode(buf, 0, &d), -1);
}

/* Build a decision by hand: header, then strings as given. */
static size_t raw_decision(char *buf, uint16_t result, uint16_t nhops,
			   const char *const *strs, int nstrs)
{
	struct msg_route h = { .result = result, .nhops = nhops };
	size_t off = sizeof(h);

	memcpy(buf, &h, sizeof(h));
	for (int i = 0; i < nstrs; i++) {
		uint16_t n = (uint16_t)strlen(strs[i]);

		memcpy(buf + off, &n, 2);
		memcpy(buf + off + 2, strs[i], n);
		off += 2 + n;
	}
	return off;
}

static void test_decision_decode_refuses(void **state)
{
	static const char *const two[] = { "a:1", "socks5://h" };
	static const char *const empty_hop[] = { "a:1", "" };
	static char buf[DEC_BUF];
	struct route_decision out;
	size_t n;

	(void)state;
	n = raw_decision(buf, ROUTE_GO, 1, two, 2);
	assert_int_equal(route_wire_decode(buf, n, &out), 0);
	/* every truncation, and one byte more */
	for (size_t k = 0; k < n; k++)
		assert_int_equal(route_wire_decode(buf, k, &out), -1);
	buf[n] = 'x';
	assert_int_equal(route_wire_decode(buf, n + 1, &out), -1);
	/* a hop counted but missing, or one too many */
	n = raw_decision(buf, ROUTE_GO, 2, two, 2);
	assert_int_equal(route_wire_decode(buf, n, &out), -1);
	n = raw_decision(buf, ROUTE_GO, 0, two, 2);
	assert_int_equal(route_wire_decode(buf, n, &out), -1);
	/* results out of range */
	n = raw_decision(buf, 0, 1, two, 2);
	assert_int_equal(route_wire_decode(buf, n, &out), -1);
	n = raw_decision(buf, ROUTE_DONE + 1, 1, two, 2);
	assert_int_equal(route_wire_decode(buf, n, &out), -1);
	/* more hops than allowed, whatever follows */
	n = raw_decision(buf, ROUTE_GO, ROUTE_HOPS_MAX + 1, two, 2);
	assert_int_equal(route_wire_decode(buf, n, &out), -1);
	/* an empty hop */
	n = raw_decision(buf, ROUTE_GO, 1, empty_hop, 2);
	assert_int_equal(route_wire_decode(buf, n, &out), -1);
	/* a NUL inside a string */
	n = raw_decision(buf, ROUTE_GO, 1, two, 2);
	buf[sizeof(struct msg_route) + 3] = '\0';
	assert_int_equal(route_wire_decode(buf, n, &out), -1);
}

/* A length beyond ROUTE_STR_MAX is refused even when the bytes are
 * there; one beyond the buffer is refused without reading past it. */
static void test_decision_overlong(void **state)
{
	struct msg_route h = { .result = ROUTE_GO, .nhops = 0 };
	size_t len = sizeof(h) + 2 + ROUTE_STR_MAX + 1;
	char *buf = malloc(len);
	struct route_decision out;
	uint16_t n = ROUTE_STR_MAX + 1;

	(void)state;
	assert_non_null(buf);
	memcpy(buf, &h, sizeof(h));
	memcpy(buf + sizeof(h), &n, 2);
	memset(buf + sizeof(h) + 2, 'a', n);
	assert_int_equal(route_wire_decode(buf, len, &out), -1);
	n = 0xffff;
	memcpy(buf + sizeof(h), &n, 2);
	assert_int_equal(route_wire_decode(buf, sizeof(h) + 2 + 10, &out), -1);
	free(buf);
}

static void test_request_roundtrip(void **state)
{
	static char buf[REQ_BUF];
	struct route_request r = { .kind = ROUTE_KIND_RESOLVE,
				   .has_user = 1,
				   .has_pass = 1 },
			     out;
	int n;

	(void)state;
	r.addr = S("example.com:80");
	r.user = S("alice");
	r.pass = S("s3cret");
	n = route_wire_encode_req(buf, sizeof(buf), &r);
	assert_int_equal(n, (int)(sizeof(struct msg_route_req) + 14 + 5 + 6));
	assert_int_equal(route_wire_decode_req(buf, (size_t)n, &out), 0);
	assert_int_equal(out.kind, ROUTE_KIND_RESOLVE);
	assert_true(str_is(out.addr, "example.com:80"));
	assert_true(out.has_user && out.has_pass);
	assert_true(str_is(out.user, "alice"));
	assert_true(str_is(out.pass, "s3cret"));

	/* no credentials: user and pass given but not flagged are not sent */
	r.kind = ROUTE_KIND_ROUTE6;
	r.addr = S("[2001:db8::1]:443");
	r.has_user = r.has_pass = 0;
	n = route_wire_encode_req(buf, sizeof(buf), &r);
	assert_int_equal(n, (int)(sizeof(struct msg_route_req) + 17));
	assert_int_equal(route_wire_decode_req(buf, (size_t)n, &out), 0);
	assert_false(out.has_user || out.has_pass);
	assert_int_equal(out.user.len + out.pass.len, 0);

	/* a user with an empty name (SOCKS4's empty userid) */
	r.has_user = 1;
	r.user = S("");
	n = route_wire_encode_req(buf, sizeof(buf), &r);
	assert_int_equal(route_wire_decode_req(buf, (size_t)n, &out), 0);
	assert_true(out.has_user);
	assert_int_equal(out.user.len, 0);
}

static void test_request_largest(void **state)
{
	static char buf[REQ_BUF], a[ROUTE_STR_MAX], c[ROUTE_CRED_MAX + 1];
	struct route_request r = { .kind = ROUTE_KIND_ROUTE,
				   .has_user = 1,
				   .has_pass = 1 },
			     out;
	int n;

	(void)state;
	memset(a, 'a', sizeof(a));
	memset(c, 'c', sizeof(c));
	r.addr = (struct route_str){ a, ROUTE_STR_MAX };
	r.user = r.pass = (struct route_str){ c, ROUTE_CRED_MAX };
	n = route_wire_encode_req(buf, sizeof(buf), &r);
	assert_int_equal(n, (int)REQ_BUF);
	assert_int_equal(route_wire_decode_req(buf, (size_t)n, &out), 0);
	assert_int_equal(route_wire_encode_req(buf, sizeof(buf) - 1, &r), -1);
	r.user.len = ROUTE_CRED_MAX + 1;
	assert_int_equal(route_wire_encode_req(buf, sizeof(buf), &r), -1);
	r.user.len = ROUTE_CRED_MAX;
	r.pass.len = ROUTE_CRED_MAX + 1;
	assert_int_equal(route_wire_encode_req(buf, sizeof(buf), &r), -1);
}

/* A request header with the given fields, then the bytes of s. */
static size_t raw_request(char *buf, uint16_t kind, uint16_t flags,
			  uint16_t alen, uint16_t ulen, uint16_t plen,
			  const char *s)
{
	struct msg_route_req h = { kind, flags, alen, ulen, plen, 0 };
	size_t n = strlen(s);

	memcpy(buf, &h, sizeof(h));
	memcpy(buf + sizeof(h), s, n);
	return sizeof(h) + n;
}

static void test_request_decode_refuses(void **state)
{
	static char buf[REQ_BUF + 16];
	struct route_request out;
	const uint16_t both = ROUTE_F_USER | ROUTE_F_PASS;
	size_t n;

	(void)state;
	n = raw_request(buf, ROUTE_KIND_RESOLVE, both, 3, 2, 2, "a:1uupp");
	assert_int_equal(route_wire_decode_req(buf, n, &out), 0);
	for (size_t k = 0; k < n; k++)
		assert_int_equal(route_wire_decode_req(buf, k, &out), -1);
	assert_int_equal(route_wire_decode_req(buf, n + 1, &out), -1);
	/* kinds out of range, unknown flags */
	n = raw_request(buf, 0, 0, 3, 0, 0, "a:1");
	assert_int_equal(route_wire_decode_req(buf, n, &out), -1);
	n = raw_request(buf, ROUTE_KIND_ROUTE6 + 1, 0, 3, 0, 0, "a:1");
	assert_int_equal(route_wire_decode_req(buf, n, &out), -1);
	n = raw_request(buf, ROUTE_KIND_ROUTE, 4, 3, 0, 0, "a:1");
	assert_int_equal(route_wire_decode_req(buf, n, &out), -1);
	/* no address */
	n = raw_request(buf, ROUTE_KIND_ROUTE, 0, 0, 0, 0, "");
	assert_int_equal(route_wire_decode_req(buf, n, &out), -1);
	/* credentials not flagged */
	n = raw_request(buf, ROUTE_KIND_ROUTE, ROUTE_F_PASS, 3, 2, 2,
			"a:1uupp");
	assert_int_equal(route_wire_decode_req(buf, n, &out), -1);
	n = raw_request(buf, ROUTE_KIND_ROUTE, ROUTE_F_USER, 3, 2, 2,
			"a:1uupp");
	assert_int_equal(route_wire_decode_req(buf, n, &out), -1);
	/* lengths over the limits, even with the bytes there */
	n = raw_request(buf, ROUTE_KIND_ROUTE, ROUTE_F_USER, 3,
			ROUTE_CRED_MAX + 1, 0, "a:1");
	memset(buf + n, 'u', ROUTE_CRED_MAX + 1);
	assert_int_equal(route_wire_decode_req(buf, n + ROUTE_CRED_MAX + 1,
					       &out),
			 -1);
	n = raw_request(buf, ROUTE_KIND_ROUTE, 0, ROUTE_STR_MAX + 1, 0, 0, "");
	memset(buf + n, 'a', ROUTE_STR_MAX + 1);
	assert_int_equal(route_wire_decode_req(buf, n + ROUTE_STR_MAX + 1,
					       &out),
			 -1);
	/* NUL bytes in any string */
	n = raw_request(buf, ROUTE_KIND_ROUTE, both, 3, 2, 2, "a:1uupp");
	buf[sizeof(struct msg_route_req) + 1] = '\0';
	assert_int_equal(route_wire_decode_req(buf, n, &out), -1);
	n = raw_request(buf, ROUTE_KIND_ROUTE, both, 3, 2, 2, "a:1uupp");
	buf[sizeof(struct msg_route_req) + 4] = '\0';
	assert_int_equal(route_wire_decode_req(buf, n, &out), -1);
	n = raw_request(buf, ROUTE_KIND_ROUTE, both, 3, 2, 2, "a:1uupp");
	buf[sizeof(struct msg_route_req) + 6] = '\0';
	assert_int_equal(route_wire_decode_req(buf, n, &out), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_decision_roundtrip),
		cmocka_unit_test(test_decision_verdicts),
		cmocka_unit_test(test_decision_largest),
		cmocka_unit_test(test_decision_encode_refuses),
		cmocka_unit_test(test_decision_decode_refuses),
		cmocka_unit_test(test_decision_overlong),
		cmocka_unit_test(test_request_roundtrip),
		cmocka_unit_test(test_request_largest),
		cmocka_unit_test(test_request_decode_refuses),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
