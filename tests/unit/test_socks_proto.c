/* Unit tests for src/front/socks_proto.c: SOCKS4/4A and SOCKS5 parsers
 * and encoders, server and client side. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "front/socks_proto.h"

#define MSG_FILL 0xa5

/* Where a fresh parser is put before a test message is fed. */
enum where {
	AT_START,
	AT_NOAUTH,    /* greeting seen, NOAUTH chosen: request next */
	AT_USERPASS,  /* greeting seen, USERPASS chosen: auth next */
	AT_AUTH_DONE, /* greeting and auth seen: request next */
};

/* Run the parser on an exact-size heap copy of buf, so that a read past
 * len is caught by ASan or valgrind. len 0 passes NULL. */
static int parse_exact(struct socks_parser *p, const uint8_t *buf,
		       size_t len, struct socks_msg *m)
{
	uint8_t *copy = NULL;
	int r;

	if (len > 0) {
		copy = malloc(len);
		assert_non_null(copy);
		memcpy(copy, buf, len);
	}
	r = socks_proto_parse(p, copy, len, m);
	free(copy);
	return r;
}

static void parser_at(struct socks_parser *p, enum where w)
{
	static const uint8_t greet_noauth[] = { 5, 1, 0 };
	static const uint8_t greet_userpass[] = { 5, 1, 2 };
	static const uint8_t auth[] = { 1, 1, 'u', 1, 'p' };
	struct socks_msg m;

	socks_proto_init(p);
	switch (w) {
	case AT_START:
		break;
	case AT_NOAUTH:
		assert_int_equal(parse_exact(p, greet_noauth, 3, &m), 3);
		p->method = SOCKS5_METHOD_NOAUTH;
		break;
	case AT_USERPASS:
	case AT_AUTH_DONE:
		assert_int_equal(parse_exact(p, greet_userpass, 3, &m), 3);
		p->method = SOCKS5_METHOD_USERPASS;
		if (w == AT_AUTH_DONE) {
			assert_int_equal(parse_exact(p, auth, 5, &m), 5);
			assert_int_equal(p->stage, SOCKS_STAGE_S5_REQUEST);
		}
		break;
	}
}

/* Parse one complete message at w and expect it to take all len bytes. */
static void parse_one(enum where w, const uint8_t *msg, size_t len,
		      struct socks_msg *m)
{
	struct socks_parser p;

	parser_at(&p, w);
	assert_int_equal(parse_exact(&p, msg, len, m), (int)len);
}

/* Parse and expect an error with the given reply. */
static void parse_fail(enum where w, const uint8_t *msg, size_t len,
		       int reply)
{
	struct socks_parser p;
	struct socks_msg m, before;

	parser_at(&p, w);
	memset(&m, MSG_FILL, sizeof(m));
	before = m;
	assert_int_equal(parse_exact(&p, msg, len, &m), -1);
	assert_int_equal(p.reply, reply);
	assert_non_null(p.why);
	assert_memory_equal(&m, &before, sizeof(m));
	/* errors are final */
	assert_int_equal(parse_exact(&p, msg, len, &m), -1);
	assert_int_equal(p.reply, SOCKS_REPLY_NONE);
}

/* Every proper prefix of a valid message needs more bytes: 0, stage and
 * *m unchanged. The whole message is then consumed exactly. */
static void check_prefixes(enum where w, const uint8_t *msg, size_t len)
{
	struct socks_parser p;
	struct socks_msg m, before;
	size_t k;
	uint8_t stage;

	for (k = 0; k < len; k++) {
		parser_at(&p, w);
		stage = p.stage;
		memset(&m, MSG_FILL, sizeof(m));
		before = m;
		assert_int_equal(parse_exact(&p, msg, k, &m), 0);
		assert_int_equal(p.stage, stage);
		assert_memory_equal(&m, &before, sizeof(m));
	}
	parser_at(&p, w);
	assert_int_equal(parse_exact(&p, msg, len, &m), (int)len);
}

/* What a simulated daemon got out of a client byte stream. */
struct session {
	struct socks_msg msgs[4];
	size_t used[4]; /* bytes consumed by each message */
	int nmsg;
	int err;        /* parse returned -1 */
	int reply;
	size_t left;    /* bytes never consumed */
};

/* Feed in[] chunk bytes at a time into a buffer the way the daemon does:
 * parse after every arrival until nothing more comes out, drop consumed
 * bytes, and pick the SOCKS5 method after a greeting. Stops parsing once
 * the parser is done; what is left is payload. */
static void run_session(const uint8_t *in, size_t len, size_t chunk,
			bool auth, struct session *s)
{
	struct socks_parser p;
	uint8_t buf[2048];
	size_t have = 0, pos = 0;

	assert_true(len <= sizeof(buf));
	memset(s, 0, sizeof(*s));
	socks_proto_init(&p);
	for (;;) {
		size_t n = len - pos < chunk ? len - pos : chunk;

		memcpy(buf + have, in + pos, n);
		have += n;
		pos += n;
		while (p.stage != SOCKS_STAGE_DONE) {
			struct socks_msg *m = &s->msgs[s->nmsg];
			int r;

			assert_true(s->nmsg < 4);
			r = parse_exact(&p, buf, have, m);
			if (r < 0) {
				s->err = 1;
				s->reply = p.reply;
				s->left = have;
				return;
			}
			if (r == 0)
				break;
			assert_true((size_t)r <= have);
			s->used[s->nmsg++] = (size_t)r;
			memmove(buf, buf + r, have - (size_t)r);
			have -= (size_t)r;
			if (m->kind == SOCKS_MSG_S5_GREETING)
				p.method = socks_proto_select_method(m, auth);
		}
		if (pos == len)
			break;
	}
	s->left = have;
}

/* The same stream fed whole and byte at a time gives the same result. */
static void check_byte_at_a_time(const uint8_t *in, size_t len, bool auth,
				 int nmsg, size_t left)
{
	struct session whole, bytes;

	run_session(in, len, len, auth, &whole);
	run_session(in, len, 1, auth, &bytes);
	assert_int_equal(whole.err, 0);
	assert_int_equal(whole.nmsg, nmsg);
	assert_int_equal(whole.left, left);
	assert_int_equal(bytes.err, 0);
	assert_int_equal(bytes.nmsg, whole.nmsg);
	assert_int_equal(bytes.left, whole.left);
	assert_memory_equal(bytes.used, whole.used, sizeof(whole.used));
	assert_memory_equal(bytes.msgs, whole.msgs,
			    sizeof(whole.msgs[0]) * (size_t)nmsg);
}

static void test_init(void **state)
{
	struct socks_parser p;

	(void)state;
	memset(&p, 0xee, sizeof(p));
	socks_proto_init(&p);
	assert_int_equal(p.stage, SOCKS_STAGE_START);
	assert_int_equal(p.method, SOCKS5_METHOD_NONE);
	assert_int_equal(p.reply, SOCKS_REPLY_NONE);
	assert_null(p.why);
}

/* ---- SOCKS4 / SOCKS4A server side ---- */

static const uint8_t s4_connect[] = { 4, 1, 0x00, 0x50, 127, 0, 0, 1,
				      'b', 'o', 'b', 0 };
static const uint8_t s4a_connect[] = { 4, 1, 0x01, 0xbb, 0, 0, 0, 7, 0,
				       'e', 'x', 'a', 'm', 'p', 'l', 'e',
				       '.', 'c', 'o', 'm', 0 };

static void test_s4_connect(void **state)
{
	static const uint8_t v4[4] = { 127, 0, 0, 1 };
	struct socks_parser p;
	struct socks_msg m;

	(void)state;
	socks_proto_init(&p);
	assert_int_equal(parse_exact(&p, s4_connect, sizeof(s4_connect), &m),
			 (int)sizeof(s4_connect));
	assert_int_equal(m.kind, SOCKS_MSG_S4_REQUEST);
	assert_int_equal(m.version, 4);
	assert_int_equal(m.cmd, SOCKS4_CMD_CONNECT);
	assert_false(m.socks4a);
	assert_int_equal(m.target.type, ADDR_IPV4);
	assert_int_equal(m.target.port, 80);
	assert_memory_equal(m.target.u.v4, v4, 4);
	assert_int_equal(m.ulen, 3);
	assert_string_equal(m.user, "bob");
	assert_int_equal(m.plen, 0);
	assert_string_equal(m.pass, "");
	assert_int_equal(p.stage, SOCKS_STAGE_DONE);

	/* nothing may follow */
	assert_int_equal(parse_exact(&p, s4_connect, sizeof(s4_connect), &m),
			 -1);
	assert_int_equal(p.reply, SOCKS_REPLY_NONE);
}

static void test_s4_bind_and_other_cmds(void **state)
{
	uint8_t msg[sizeof(s4_connect)];
	struct socks_msg m;

	(void)state;
	memcpy(msg, s4_connect, sizeof(msg));
	msg[1] = SOCKS4_CMD_BIND;
	parse_one(AT_START, msg, sizeof(msg), &m);
	assert_int_equal(m.cmd, 2);
	assert_int_equal(m.target.type, ADDR_IPV4);
	/* the caller rejects unknown commands; the parser hands them over */
	msg[1] = 0x7f;
	parse_one(AT_START, msg, sizeof(msg), &m);
	assert_int_equal(m.cmd, 0x7f);
}

static void test_s4_empty_userid_and_zero_ip(void **state)
{
	/* DSTIP 0.0.0.0 is not SOCKS4A (x must be non-zero) */
	static const uint8_t msg[] = { 4, 1, 0xff, 0xff, 0, 0, 0, 0, 0 };
	struct socks_msg m;

	(void)state;
	parse_one(AT_START, msg, sizeof(msg), &m);
	assert_false(m.socks4a);
	assert_int_equal(m.target.type, ADDR_IPV4);
	assert_int_equal(m.target.port, 65535);
	assert_int_equal(m.ulen, 0);
	assert_string_equal(m.user, "");
}

static void test_s4a_name(void **state)
{
	struct socks_msg m;

	(void)state;
	parse_one(AT_START, s4a_connect, sizeof(s4a_connect), &m);
	assert_int_equal(m.kind, SOCKS_MSG_S4_REQUEST);
	assert_true(m.socks4a);
	assert_int_equal(m.cmd, SOCKS4_CMD_CONNECT);
	assert_int_equal(m.target.type, ADDR_DOMAIN);
	assert_int_equal(m.target.port, 443);
	assert_int_equal(m.target.namelen, 11);
	assert_string_equal(m.target.u.name, "example.com");
	assert_int_equal(m.ulen, 0);
}

static void test_s4a_literal_name_stays_domain(void **state)
{
	static const uint8_t msg[] = { 4, 1, 0, 80, 0, 0, 0, 0xff, 'u', 0,
				       '1', '0', '.', '0', '.', '0', '.', '1',
				       0 };
	struct socks_msg m;

	(void)state;
	parse_one(AT_START, msg, sizeof(msg), &m);
	assert_true(m.socks4a);
	assert_int_equal(m.target.type, ADDR_DOMAIN);
	assert_string_equal(m.target.u.name, "10.0.0.1");
	assert_int_equal(m.target.namelen, 8);
	assert_string_equal(m.user, "u");
}

/* n bytes of a host name: labels of 63 'n' between dots (so 253 bytes
 * is the longest valid name, 254 with a trailing dot). */
static void fill_name(uint8_t *dst, size_t n)
{
	for (size_t i = 0; i < n; i++)
		dst[i] = i % 64 == 63 ? '.' : 'n';
}

static void s4a_with_name(uint8_t *msg, size_t nlen)
{
	static const uint8_t hdr[9] = { 4, 1, 0, 80, 0, 0, 0, 1, 0 };

	memcpy(msg, hdr, sizeof(hdr));
	fill_name(msg + 9, nlen);
	msg[9 + nlen] = 0;
}

static void test_s4a_name_limits(void **state)
{
	uint8_t msg[8 + 1 + 257];
	struct socks_parser p;
	struct socks_msg m;
	size_t k;

	(void)state;
	/* 253 bytes: the longest name; 254 with a trailing dot */
	s4a_with_name(msg, 253);
	parse_one(AT_START, msg, 9 + 254, &m);
	assert_int_equal(m.target.namelen, 253);
	assert_int_equal(strlen(m.target.u.name), 253);
	check_prefixes(AT_START, msg, 9 + 254);
	s4a_with_name(msg, 254);
	msg[9 + 253] = '.';
	parse_one(AT_START, msg, 9 + 255, &m);
	assert_int_equal(m.target.namelen, 254);

	/* 254 and 255 bytes without the trailing dot: a bad name */
	s4a_with_name(msg, 254);
	parse_fail(AT_START, msg, 9 + 255, SOCKS4_REJECTED);
	s4a_with_name(msg, 255);
	parse_fail(AT_START, msg, 9 + 256, SOCKS4_REJECTED);

	/* 256 bytes: rejected as soon as the 256th byte arrives */
	fill_name(msg + 9, 257);
	socks_proto_init(&p);
	for (k = 0; k < 9 + 256; k++)
		assert_int_equal(parse_exact(&p, msg, k, &m), 0);
	assert_int_equal(parse_exact(&p, msg, 9 + 256, &m), -1);
	assert_int_equal(p.reply, SOCKS4_REJECTED);

	/* empty name */
	msg[9] = 0;
	parse_fail(AT_START, msg, 10, SOCKS4_REJECTED);
}

/* Regression (issue 9, defect 1): a SOCKS4A name holding '%' reached
 * evdns, which read it as an IPv6 zone and called if_nametoindex(); the
 * front's seccomp filter killed it. Such names are refused by the parser
 * with 91, and every prefix of them still just needs more bytes. */
static void test_s4a_bad_names_refused(void **state)
{
	static const char *const bad[] = {
		"a%lo", "x%y", "fe80::1%lo", "a..b", ".a", "..", ".",
		"a b", "caf\xc3\xa9", "a/b", "a:b", "[::1]", "a\x7f",
		"a*b", "a,b", "-%-",
	};
	uint8_t msg[9 + 32];
	size_t n;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		n = strlen(bad[i]);
		s4a_with_name(msg, 0);
		memcpy(msg + 9, bad[i], n + 1);
		parse_fail(AT_START, msg, 9 + n + 1, SOCKS4_REJECTED);
	}
	/* IPv6 literals and underscores are names a client may send */
	s4a_with_name(msg, 0);
	memcpy(msg + 9, "::ffff:127.0.0.1", 17);
	check_prefixes(AT_START, msg, 9 + 17);
	memcpy(msg + 9, "_srv.a-b.", 10);
	check_prefixes(AT_START, msg, 9 + 10);
}

static void fill_s4_userid(uint8_t *msg, size_t idlen)
{
	static const uint8_t hdr[8] = { 4, 1, 0x1f, 0x90, 192, 0, 2, 1 };

	memcpy(msg, hdr, 8);
	memset(msg + 8, 'a', idlen);
}

static void test_s4_userid_255(void **state)
{
	uint8_t msg[8 + 256];
	struct socks_msg m;

	(void)state;
	fill_s4_userid(msg, 255);
	msg[8 + 255] = 0;
	parse_one(AT_START, msg, sizeof(msg), &m);
	assert_int_equal(m.ulen, 255);
	assert_int_equal(strlen(m.user), 255);
	assert_int_equal(m.user[0], 'a');
	assert_int_equal(m.target.port, 8080);
}

static void test_s4_userid_256(void **state)
{
	uint8_t msg[8 + 257];
	struct socks_parser p;
	struct socks_msg m;
	size_t k;

	(void)state;
	fill_s4_userid(msg, 256);
	msg[8 + 256] = 0;
	/* whole, even with its NUL present */
	parse_fail(AT_START, msg, sizeof(msg), SOCKS4_REJECTED);
	/* exactly 256 bytes, no NUL yet */
	parse_fail(AT_START, msg, 8 + 256, SOCKS4_REJECTED);

	/* byte at a time: 0 until the 256th USERID byte, then 91 */
	socks_proto_init(&p);
	for (k = 0; k < 8 + 256; k++)
		assert_int_equal(parse_exact(&p, msg, k, &m), 0);
	assert_int_equal(parse_exact(&p, msg, 8 + 256, &m), -1);
	assert_int_equal(p.reply, SOCKS4_REJECTED);
}

static void test_s4_prefixes(void **state)
{
	uint8_t msg[8 + 256];

	(void)state;
	check_prefixes(AT_START, s4_connect, sizeof(s4_connect));
	check_prefixes(AT_START, s4a_connect, sizeof(s4a_connect));
	fill_s4_userid(msg, 255);
	msg[8 + 255] = 0;
	check_prefixes(AT_START, msg, sizeof(msg));
}

static void test_s4_streams(void **state)
{
	uint8_t in[64];
	size_t n = sizeof(s4a_connect);

	(void)state;
	check_byte_at_a_time(s4_connect, sizeof(s4_connect), false, 1, 0);
	/* request followed by payload: the payload stays */
	memcpy(in, s4a_connect, n);
	memcpy(in + n, "GET / HTTP/1.0\r\n", 16);
	check_byte_at_a_time(in, n + 16, false, 1, 16);
}

static void test_bad_first_byte(void **state)
{
	static const uint8_t bytes[] = { 0, 1, 3, 6, 'G', 'C', 0x16, 0xff };
	struct socks_parser p;
	struct socks_msg m;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bytes); i++)
		parse_fail(AT_START, &bytes[i], 1, SOCKS_REPLY_NONE);
	socks_proto_init(&p);
	assert_int_equal(parse_exact(&p, NULL, 0, &m), 0);
	assert_int_equal(p.stage, SOCKS_STAGE_START);
}

/* ---- SOCKS5 server side ---- */

static const uint8_t s5_greet[] = { 5, 2, 0, 2 };
static const uint8_t s5_auth[] = { 1, 3, 'b', 'o', 'b', 6, 's', 'e', 'c',
				   'r', 'e', 't' };
static const uint8_t s5_req_v4[] = { 5, 1, 0, 1, 192, 168, 1, 2, 0x1f,
				     0x90 };
static const uint8_t s5_req_v6[] = { 5, 1, 0, 4, 0x20, 0x01, 0x0d, 0xb8,
				     0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1,
				     0x01, 0xbb };
static const uint8_t s5_req_dom[] = { 5, 1, 0, 3, 11, 'e', 'x', 'a', 'm',
				      'p', 'l', 'e', '.', 'c', 'o', 'm',
				      0, 80 };

static void test_s5_greeting(void **state)
{
	struct socks_parser p;
	struct socks_msg m;

	(void)state;
	socks_proto_init(&p);
	/* a stale choice must not survive the greeting */
	p.method = SOCKS5_METHOD_USERPASS;
	assert_int_equal(parse_exact(&p, s5_greet, sizeof(s5_greet), &m), 4);
	assert_int_equal(m.kind, SOCKS_MSG_S5_GREETING);
	assert_int_equal(m.version, 5);
	assert_int_equal(m.nmethods, 2);
	assert_int_equal(m.methods[0], SOCKS5_METHOD_NOAUTH);
	assert_int_equal(m.methods[1], SOCKS5_METHOD_USERPASS);
	assert_int_equal(p.stage, SOCKS_STAGE_S5_METHOD);
	assert_int_equal(p.method, SOCKS5_METHOD_NONE);
}

static void test_s5_greeting_255_methods(void **state)
{
	uint8_t msg[2 + 255];
	struct socks_msg m;
	size_t i;

	(void)state;
	msg[0] = 5;
	msg[1] = 255;
	for (i = 0; i < 255; i++)
		msg[2 + i] = (uint8_t)(i + 1);
	parse_one(AT_START, msg, sizeof(msg), &m);
	assert_int_equal(m.nmethods, 255);
	assert_memory_equal(m.methods, msg + 2, 255);
	check_prefixes(AT_START, msg, sizeof(msg));
	assert_int_equal(socks_proto_select_method(&m, true),
			 SOCKS5_METHOD_USERPASS);
}

static void test_s5_auth(void **state)
{
	struct socks_parser p;
	struct socks_msg m;

	(void)state;
	parser_at(&p, AT_USERPASS);
	assert_int_equal(parse_exact(&p, s5_auth, sizeof(s5_auth), &m),
			 (int)sizeof(s5_auth));
	assert_int_equal(m.kind, SOCKS_MSG_S5_AUTH);
	assert_int_equal(m.ulen, 3);
	assert_string_equal(m.user, "bob");
	assert_int_equal(m.plen, 6);
	assert_string_equal(m.pass, "secret");
	assert_int_equal(p.stage, SOCKS_STAGE_S5_REQUEST);
}

static void test_s5_auth_255(void **state)
{
	uint8_t msg[3 + 255 + 255];
	struct socks_msg m;

	(void)state;
	msg[0] = 1;
	msg[1] = 255;
	memset(msg + 2, 'u', 255);
	msg[2 + 255] = 255;
	memset(msg + 3 + 255, 'p', 255);
	parse_one(AT_USERPASS, msg, sizeof(msg), &m);
	assert_int_equal(m.ulen, 255);
	assert_int_equal(m.plen, 255);
	assert_int_equal(strlen(m.user), 255);
	assert_int_equal(strlen(m.pass), 255);
	assert_int_equal(m.pass[0], 'p');
	check_prefixes(AT_USERPASS, msg, sizeof(msg));
}

static void test_s5_request_v4(void **state)
{
	static const uint8_t v4[4] = { 192, 168, 1, 2 };
	struct socks_parser p;
	struct socks_msg m;

	(void)state;
	parser_at(&p, AT_NOAUTH);
	assert_int_equal(parse_exact(&p, s5_req_v4, sizeof(s5_req_v4), &m),
			 10);
	assert_int_equal(m.kind, SOCKS_MSG_S5_REQUEST);
	assert_int_equal(m.version, 5);
	assert_int_equal(m.cmd, SOCKS5_CMD_CONNECT);
	assert_int_equal(m.target.type, ADDR_IPV4);
	assert_memory_equal(m.target.u.v4, v4, 4);
	assert_int_equal(m.target.port, 8080);
	assert_int_equal(p.stage, SOCKS_STAGE_DONE);
	assert_int_equal(parse_exact(&p, s5_req_v4, sizeof(s5_req_v4), &m),
			 -1);
	assert_int_equal(p.reply, SOCKS_REPLY_NONE);
}

static void test_s5_request_v6(void **state)
{
	struct socks_msg m;

	(void)state;
	parse_one(AT_AUTH_DONE, s5_req_v6, sizeof(s5_req_v6), &m);
	assert_int_equal(m.target.type, ADDR_IPV6);
	assert_memory_equal(m.target.u.v6, s5_req_v6 + 4, 16);
	assert_int_equal(m.target.port, 443);
}

static void test_s5_request_domain(void **state)
{
	uint8_t msg[4 + 1 + 255 + 2];
	struct socks_msg m;

	(void)state;
	parse_one(AT_NOAUTH, s5_req_dom, sizeof(s5_req_dom), &m);
	assert_int_equal(m.target.type, ADDR_DOMAIN);
	assert_int_equal(m.target.namelen, 11);
	assert_string_equal(m.target.u.name, "example.com");
	assert_int_equal(m.target.port, 80);

	memcpy(msg, s5_req_dom, 4);
	msg[4] = 253;
	fill_name(msg + 5, 253);
	msg[5 + 253] = 0x12;
	msg[5 + 254] = 0x34;
	parse_one(AT_NOAUTH, msg, 5 + 255, &m);
	assert_int_equal(m.target.namelen, 253);
	assert_int_equal(strlen(m.target.u.name), 253);
	assert_int_equal(m.target.port, 0x1234);
	check_prefixes(AT_NOAUTH, msg, 5 + 255);

	/* 254 bytes with a trailing dot; without it, or 255, a bad name */
	msg[4] = 254;
	fill_name(msg + 5, 254);
	msg[5 + 253] = '.';
	msg[5 + 254] = 0;
	msg[5 + 255] = 80;
	parse_one(AT_NOAUTH, msg, 5 + 256, &m);
	assert_int_equal(m.target.namelen, 254);
	msg[5 + 253] = 'n';
	parse_fail(AT_NOAUTH, msg, 5 + 256, SOCKS5_REP_FAIL);
	msg[4] = 255;
	fill_name(msg + 5, 255);
	msg[5 + 255] = 0;
	msg[5 + 256] = 80;
	parse_fail(AT_NOAUTH, msg, sizeof(msg), SOCKS5_REP_FAIL);
}

static void test_s5_request_cmds_and_rsv(void **state)
{
	uint8_t msg[sizeof(s5_req_v4)];
	struct socks_msg m;

	(void)state;
	memcpy(msg, s5_req_v4, sizeof(msg));
	msg[1] = SOCKS5_CMD_BIND;
	parse_one(AT_NOAUTH, msg, sizeof(msg), &m);
	assert_int_equal(m.cmd, SOCKS5_CMD_BIND);
	msg[1] = SOCKS5_CMD_UDP_ASSOCIATE;
	msg[2] = 0xff; /* RSV is ignored */
	parse_one(AT_NOAUTH, msg, sizeof(msg), &m);
	assert_int_equal(m.cmd, SOCKS5_CMD_UDP_ASSOCIATE);
	msg[1] = 0x42;
	parse_one(AT_NOAUTH, msg, sizeof(msg), &m);
	assert_int_equal(m.cmd, 0x42);
}

static void test_s5_bad_atyp(void **state)
{
	uint8_t msg[] = { 5, 1, 0, 9 };

	(void)state;
	/* reported right after ATYP, without waiting for an address */
	parse_fail(AT_NOAUTH, msg, sizeof(msg), SOCKS5_REP_ATYP_UNSUPPORTED);
	msg[3] = 0;
	parse_fail(AT_NOAUTH, msg, sizeof(msg), SOCKS5_REP_ATYP_UNSUPPORTED);
	msg[3] = 2;
	parse_fail(AT_AUTH_DONE, msg, sizeof(msg),
		   SOCKS5_REP_ATYP_UNSUPPORTED);
}

static void test_s5_bad_domain(void **state)
{
	static const uint8_t empty[] = { 5, 1, 0, 3, 0 };
	static const uint8_t nul[] = { 5, 1, 0, 3, 3, 'a', 0, 'b', 0, 80 };
	/* Regression (issue 9, defect 1): '%' reached evdns (an IPv6 zone:
	 * if_nametoindex(), killed by the front's filter) */
	static const char *const bad[] = { "x%y", "a%lo", "fe80::1%lo",
					   "a..b", "a b", "\xff", "a.-%" };
	uint8_t msg[5 + 16 + 2];
	size_t n;

	(void)state;
	parse_fail(AT_NOAUTH, empty, sizeof(empty), SOCKS5_REP_FAIL);
	parse_fail(AT_NOAUTH, nul, sizeof(nul), SOCKS5_REP_FAIL);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		n = strlen(bad[i]);
		memcpy(msg, (const uint8_t[]){ 5, 1, 0, 3 }, 4);
		msg[4] = (uint8_t)n;
		memcpy(msg + 5, bad[i], n);
		msg[5 + n] = 0;
		msg[6 + n] = 80;
		/* nothing is said before the whole name is there */
		for (size_t k = 0; k < 7 + n; k++) {
			struct socks_parser p;
			struct socks_msg m;

			parser_at(&p, AT_NOAUTH);
			assert_int_equal(parse_exact(&p, msg, k, &m), 0);
		}
		parse_fail(AT_NOAUTH, msg, 7 + n, SOCKS5_REP_FAIL);
	}
}

static void test_s5_nmethods_zero(void **state)
{
	static const uint8_t msg[] = { 5, 0 };

	(void)state;
	parse_fail(AT_START, msg, sizeof(msg), SOCKS_REPLY_NOMETHOD);
}

static void test_s5_auth_errors(void **state)
{
	static const uint8_t ver5[] = { 5 };
	static const uint8_t ver0[] = { 0, 1, 'u', 1, 'p' };
	static const uint8_t ulen0[] = { 1, 0 };
	static const uint8_t plen0[] = { 1, 1, 'u', 0 };
	static const uint8_t nul_user[] = { 1, 2, 'u', 0 };
	static const uint8_t nul_pass[] = { 1, 1, 'u', 2, 0, 'p' };

	(void)state;
	parse_fail(AT_USERPASS, ver5, sizeof(ver5), SOCKS_REPLY_AUTHFAIL);
	parse_fail(AT_USERPASS, ver0, sizeof(ver0), SOCKS_REPLY_AUTHFAIL);
	parse_fail(AT_USERPASS, ulen0, sizeof(ulen0), SOCKS_REPLY_AUTHFAIL);
	parse_fail(AT_USERPASS, plen0, sizeof(plen0), SOCKS_REPLY_AUTHFAIL);
	parse_fail(AT_USERPASS, nul_user, sizeof(nul_user),
		   SOCKS_REPLY_AUTHFAIL);
	parse_fail(AT_USERPASS, nul_pass, sizeof(nul_pass),
		   SOCKS_REPLY_AUTHFAIL);
}

static void test_s5_request_bad_version(void **state)
{
	static const uint8_t v4[] = { 4 };
	static const uint8_t v1[] = { 1, 1, 0, 1, 1, 2, 3, 4, 0, 80 };

	(void)state;
	parse_fail(AT_NOAUTH, v4, sizeof(v4), SOCKS_REPLY_NONE);
	/* an auth request when NOAUTH was chosen is a bad request */
	parse_fail(AT_NOAUTH, v1, sizeof(v1), SOCKS_REPLY_NONE);
	parse_fail(AT_AUTH_DONE, v4, sizeof(v4), SOCKS_REPLY_NONE);
}

static void test_s5_method_not_selected(void **state)
{
	struct socks_parser p;
	struct socks_msg m;

	(void)state;
	socks_proto_init(&p);
	assert_int_equal(parse_exact(&p, s5_greet, sizeof(s5_greet), &m), 4);
	assert_int_equal(parse_exact(&p, s5_req_v4, sizeof(s5_req_v4), &m),
			 -1);
	assert_int_equal(p.reply, SOCKS_REPLY_NONE);
	assert_string_equal(p.why, "method not selected");

	/* a method we do not implement (GSSAPI) is a caller bug as well */
	socks_proto_init(&p);
	assert_int_equal(parse_exact(&p, s5_greet, sizeof(s5_greet), &m), 4);
	p.method = 0x01;
	assert_int_equal(parse_exact(&p, s5_req_v4, sizeof(s5_req_v4), &m),
			 -1);
	assert_int_equal(p.reply, SOCKS_REPLY_NONE);
}

static void test_s5_prefixes(void **state)
{
	(void)state;
	check_prefixes(AT_START, s5_greet, sizeof(s5_greet));
	check_prefixes(AT_USERPASS, s5_auth, sizeof(s5_auth));
	check_prefixes(AT_NOAUTH, s5_req_v4, sizeof(s5_req_v4));
	check_prefixes(AT_AUTH_DONE, s5_req_v6, sizeof(s5_req_v6));
	check_prefixes(AT_NOAUTH, s5_req_dom, sizeof(s5_req_dom));
}

static size_t cat(uint8_t *out, size_t off, const uint8_t *b, size_t n)
{
	memcpy(out + off, b, n);
	return off + n;
}

static void test_s5_streams(void **state)
{
	static const uint8_t greet_noauth[] = { 5, 1, 0 };
	uint8_t in[128];
	size_t n;

	(void)state;
	/* no auth, IPv4, payload */
	n = cat(in, 0, greet_noauth, sizeof(greet_noauth));
	n = cat(in, n, s5_req_v4, sizeof(s5_req_v4));
	n = cat(in, n, (const uint8_t *)"hello", 5);
	check_byte_at_a_time(in, n, false, 2, 5);

	/* auth, IPv6 */
	n = cat(in, 0, s5_greet, sizeof(s5_greet));
	n = cat(in, n, s5_auth, sizeof(s5_auth));
	n = cat(in, n, s5_req_v6, sizeof(s5_req_v6));
	check_byte_at_a_time(in, n, true, 3, 0);

	/* client offers both, no auth required: domain, payload */
	n = cat(in, 0, s5_greet, sizeof(s5_greet));
	n = cat(in, n, s5_req_dom, sizeof(s5_req_dom));
	n = cat(in, n, (const uint8_t *)"\x16\x03\x01", 3);
	check_byte_at_a_time(in, n, false, 2, 3);
}

static void test_s5_pipelined(void **state)
{
	static const uint8_t greet_noauth[] = { 5, 1, 0 };
	static const char payload[] = "GET / HTTP/1.1\r\n\r\n";
	const size_t plen = sizeof(payload) - 1;
	uint8_t in[128];
	struct socks_parser p;
	struct socks_msg m;
	size_t n, off = 0;
	int r;

	(void)state;
	n = cat(in, 0, greet_noauth, sizeof(greet_noauth));
	n = cat(in, n, s5_req_v4, sizeof(s5_req_v4));
	n = cat(in, n, (const uint8_t *)payload, plen);

	socks_proto_init(&p);
	r = parse_exact(&p, in, n, &m);
	assert_int_equal(r, 3);
	assert_int_equal(m.kind, SOCKS_MSG_S5_GREETING);
	off += (size_t)r;
	p.method = socks_proto_select_method(&m, false);
	assert_int_equal(p.method, SOCKS5_METHOD_NOAUTH);
	r = parse_exact(&p, in + off, n - off, &m);
	assert_int_equal(r, 10);
	assert_int_equal(m.kind, SOCKS_MSG_S5_REQUEST);
	assert_int_equal(m.target.port, 8080);
	off += (size_t)r;
	assert_int_equal(off + plen, n);
	assert_memory_equal(in + off, payload, plen);

	/* with auth: greeting, auth, request, payload in one buffer */
	n = cat(in, 0, s5_greet, sizeof(s5_greet));
	n = cat(in, n, s5_auth, sizeof(s5_auth));
	n = cat(in, n, s5_req_dom, sizeof(s5_req_dom));
	n = cat(in, n, (const uint8_t *)payload, plen);
	socks_proto_init(&p);
	off = 0;
	r = parse_exact(&p, in, n, &m);
	assert_int_equal(r, (int)sizeof(s5_greet));
	off += (size_t)r;
	p.method = socks_proto_select_method(&m, true);
	assert_int_equal(p.method, SOCKS5_METHOD_USERPASS);
	r = parse_exact(&p, in + off, n - off, &m);
	assert_int_equal(r, (int)sizeof(s5_auth));
	assert_string_equal(m.user, "bob");
	off += (size_t)r;
	r = parse_exact(&p, in + off, n - off, &m);
	assert_int_equal(r, (int)sizeof(s5_req_dom));
	assert_string_equal(m.target.u.name, "example.com");
	off += (size_t)r;
	assert_int_equal(off, sizeof(s5_greet) + sizeof(s5_auth) +
				      sizeof(s5_req_dom));
	assert_int_equal(n - off, plen);
}

static void test_select_method(void **state)
{
	struct socks_msg g;

	(void)state;
	memset(&g, 0, sizeof(g));
	g.nmethods = 2;
	g.methods[0] = 2;
	g.methods[1] = 0;
	assert_int_equal(socks_proto_select_method(&g, false), 2);
	assert_int_equal(socks_proto_select_method(&g, true), 2);

	g.nmethods = 1;
	g.methods[0] = 0;
	assert_int_equal(socks_proto_select_method(&g, true), 0xff);
	assert_int_equal(socks_proto_select_method(&g, false), 0);

	g.nmethods = 2;
	g.methods[0] = 1;
	g.methods[1] = 2;
	assert_int_equal(socks_proto_select_method(&g, false), 2);
	assert_int_equal(socks_proto_select_method(&g, true), 2);

	g.methods[0] = 0;
	g.methods[1] = 2;
	assert_int_equal(socks_proto_select_method(&g, false), 0);
	assert_int_equal(socks_proto_select_method(&g, true), 2);

	g.methods[0] = 1;
	g.methods[1] = 0x80;
	assert_int_equal(socks_proto_select_method(&g, false), 0xff);

	/* entries beyond nmethods are not looked at */
	g.nmethods = 1;
	g.methods[0] = 1;
	g.methods[1] = 0;
	assert_int_equal(socks_proto_select_method(&g, false), 0xff);
	g.nmethods = 0;
	assert_int_equal(socks_proto_select_method(&g, false), 0xff);
}

/* ---- server-side encoders ---- */

static void test_server_encoders(void **state)
{
	static const uint8_t s4_ok[8] = { 0, 90, 0, 0, 0, 0, 0, 0 };
	static const uint8_t s4_rej[8] = { 0, 91, 0, 0, 0, 0, 0, 0 };
	uint8_t out[8];

	(void)state;
	memset(out, 0xee, sizeof(out));
	assert_int_equal(socks_proto_s4_reply(out, SOCKS4_GRANTED), 8);
	assert_memory_equal(out, s4_ok, 8);
	memset(out, 0xee, sizeof(out));
	assert_int_equal(socks_proto_s4_reply(out, SOCKS4_REJECTED), 8);
	assert_memory_equal(out, s4_rej, 8);

	assert_int_equal(socks_proto_s5_method_reply(out, 0x02), 2);
	assert_int_equal(out[0], 5);
	assert_int_equal(out[1], 2);
	assert_int_equal(socks_proto_s5_method_reply(out, 0xff), 2);
	assert_int_equal(out[0], 5);
	assert_int_equal(out[1], 0xff);

	assert_int_equal(socks_proto_s5_auth_reply(out, 0), 2);
	assert_int_equal(out[0], 1);
	assert_int_equal(out[1], 0);
	assert_int_equal(socks_proto_s5_auth_reply(out, 1), 2);
	assert_int_equal(out[0], 1);
	assert_int_equal(out[1], 1);
}

static void test_s5_reply(void **state)
{
	static const uint8_t null_bnd[10] = { 5, 7, 0, 1, 0, 0, 0, 0, 0, 0 };
	static const uint8_t v4[10] = { 5, 0, 0, 1, 203, 0, 113, 5, 0x04,
					0x38 };
	static const uint8_t v6[22] = { 5, 0, 0, 4, 0x20, 0x01, 0x0d, 0xb8,
					0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2,
					0x01, 0xbb };
	struct sockaddr_in sin;
	struct sockaddr_in6 sin6;
	struct sockaddr_un sun;
	uint8_t out[22];

	(void)state;
	memset(out, 0xee, sizeof(out));
	assert_int_equal(socks_proto_s5_reply(out, 7, NULL), 10);
	assert_memory_equal(out, null_bnd, 10);

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons(1080);
	assert_int_equal(inet_pton(AF_INET, "203.0.113.5", &sin.sin_addr), 1);
	memset(out, 0xee, sizeof(out));
	assert_int_equal(socks_proto_s5_reply(out, 0,
					      (const struct sockaddr *)&sin),
			 10);
	assert_memory_equal(out, v4, 10);

	memset(&sin6, 0, sizeof(sin6));
	sin6.sin6_family = AF_INET6;
	sin6.sin6_port = htons(443);
	assert_int_equal(inet_pton(AF_INET6, "2001:db8::2", &sin6.sin6_addr),
			 1);
	memset(out, 0xee, sizeof(out));
	assert_int_equal(socks_proto_s5_reply(out, 0,
					      (const struct sockaddr *)&sin6),
			 22);
	assert_memory_equal(out, v6, 22);

	/* neither family: reported as 0.0.0.0:0 */
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	memset(out, 0xee, sizeof(out));
	assert_int_equal(socks_proto_s5_reply(out, 7,
					      (const struct sockaddr *)&sun),
			 10);
	assert_memory_equal(out, null_bnd, 10);
}

/* ---- client side ---- */

static void set_v4(struct netaddr *a, const char *ip, uint16_t port)
{
	memset(a, 0, sizeof(*a));
	a->type = ADDR_IPV4;
	a->port = port;
	assert_int_equal(inet_pton(AF_INET, ip, a->u.v4), 1);
}

static void set_v6(struct netaddr *a, const char *ip, uint16_t port)
{
	memset(a, 0, sizeof(*a));
	a->type = ADDR_IPV6;
	a->port = port;
	assert_int_equal(inet_pton(AF_INET6, ip, a->u.v6), 1);
}

static void set_name(struct netaddr *a, const char *name, uint16_t port)
{
	size_t n = strlen(name);

	assert_true(n <= ADDR_NAME_MAX);
	memset(a, 0, sizeof(*a));
	a->type = ADDR_DOMAIN;
	a->port = port;
	a->namelen = (uint8_t)n;
	memcpy(a->u.name, name, n + 1);
}

typedef size_t (*encode_fn)(uint8_t *out, size_t cap, const void *arg);

/* For every cap below need the encoder returns 0 and writes nothing past
 * cap (the buffer is exactly cap bytes on the heap); with cap == need it
 * writes need bytes. */
static void check_caps(encode_fn fn, const void *arg, size_t need)
{
	size_t cap;

	for (cap = 0; cap <= need; cap++) {
		uint8_t *out = malloc(cap ? cap : 1);

		assert_non_null(out);
		assert_int_equal(fn(out, cap, arg), cap == need ? need : 0);
		free(out);
	}
}

struct c4_args {
	const struct netaddr *target;
	const char *userid;
};

static size_t enc_c4(uint8_t *out, size_t cap, const void *arg)
{
	const struct c4_args *a = arg;

	return socks_proto_c4_request(out, cap, a->target, a->userid);
}

static void test_c4_request_v4(void **state)
{
	static const uint8_t want[] = { 4, 1, 0, 80, 10, 1, 2, 3, 'm', 'e',
					0 };
	static const uint8_t want_anon[] = { 4, 1, 0x1f, 0x90, 10, 1, 2, 3,
					     0 };
	struct netaddr t;
	struct c4_args args = { &t, "me" };
	struct socks_msg m;
	uint8_t out[600];

	(void)state;
	set_v4(&t, "10.1.2.3", 80);
	assert_int_equal(socks_proto_c4_request(out, sizeof(out), &t, "me"),
			 sizeof(want));
	assert_memory_equal(out, want, sizeof(want));
	check_caps(enc_c4, &args, sizeof(want));

	/* what we send parses back to the same target */
	parse_one(AT_START, out, sizeof(want), &m);
	assert_false(m.socks4a);
	assert_memory_equal(&m.target, &t, sizeof(t));
	assert_string_equal(m.user, "me");

	t.port = 8080;
	assert_int_equal(socks_proto_c4_request(out, sizeof(out), &t, NULL),
			 sizeof(want_anon));
	assert_memory_equal(out, want_anon, sizeof(want_anon));
	assert_int_equal(socks_proto_c4_request(out, sizeof(out), &t, ""),
			 sizeof(want_anon));
	assert_memory_equal(out, want_anon, sizeof(want_anon));
}

static void test_c4_request_domain(void **state)
{
	static const uint8_t want[] = { 4, 1, 0x01, 0xbb, 0, 0, 0, 1, 0,
					'e', 'x', 'a', 'm', 'p', 'l', 'e',
					'.', 'o', 'r', 'g', 0 };
	struct netaddr t;
	struct c4_args args = { &t, NULL };
	struct socks_msg m;
	uint8_t out[600];

	(void)state;
	set_name(&t, "example.org", 443);
	assert_int_equal(socks_proto_c4_request(out, sizeof(out), &t, NULL),
			 sizeof(want));
	assert_memory_equal(out, want, sizeof(want));
	check_caps(enc_c4, &args, sizeof(want));
	parse_one(AT_START, out, sizeof(want), &m);
	assert_true(m.socks4a);
	assert_memory_equal(&m.target, &t, sizeof(t));

	/* a name that does not match its namelen, or an empty one */
	t.namelen = 0;
	assert_int_equal(socks_proto_c4_request(out, sizeof(out), &t, NULL),
			 0);
	set_name(&t, "a", 1);
	t.namelen = 3;
	assert_int_equal(socks_proto_c4_request(out, sizeof(out), &t, NULL),
			 0);
	t.type = 2;
	assert_int_equal(socks_proto_c4_request(out, sizeof(out), &t, NULL),
			 0);
}

static void test_c4_request_v6(void **state)
{
	static const uint8_t want[] = { 4, 1, 0, 22, 0, 0, 0, 1, 'u', 0,
					'2', '0', '0', '1', ':', 'd', 'b',
					'8', ':', ':', '1', 0 };
	struct netaddr t;
	struct c4_args args = { &t, "u" };
	struct socks_msg m;
	uint8_t out[600];

	(void)state;
	set_v6(&t, "2001:db8::1", 22);
	assert_int_equal(socks_proto_c4_request(out, sizeof(out), &t, "u"),
			 sizeof(want));
	assert_memory_equal(out, want, sizeof(want));
	check_caps(enc_c4, &args, sizeof(want));
	parse_one(AT_START, out, sizeof(want), &m);
	assert_true(m.socks4a);
	assert_int_equal(m.target.type, ADDR_DOMAIN);
	assert_string_equal(m.target.u.name, "2001:db8::1");
	assert_int_equal(m.target.port, 22);
}

static void test_c4_request_userid_limit(void **state)
{
	char id[257];
	struct netaddr t;
	uint8_t out[600];

	(void)state;
	set_v4(&t, "192.0.2.1", 1);
	memset(id, 'x', 255);
	id[255] = '\0';
	assert_int_equal(socks_proto_c4_request(out, sizeof(out), &t, id),
			 8 + 256);
	assert_int_equal(out[8 + 255], 0);
	id[255] = 'x';
	id[256] = '\0';
	assert_int_equal(socks_proto_c4_request(out, sizeof(out), &t, id), 0);
}

static void test_c4_reply(void **state)
{
	static const uint8_t ok[] = { 0, 90, 0x12, 0x34, 1, 2, 3, 4, 'x', 'y' };
	static const uint8_t bad[] = { 4, 90, 0, 0, 0, 0, 0, 0 };
	uint8_t cd = 0xee;
	size_t k;

	(void)state;
	for (k = 0; k < 8; k++) {
		assert_int_equal(socks_proto_c4_reply(ok, k, &cd), 0);
		assert_int_equal(cd, 0xee);
	}
	assert_int_equal(socks_proto_c4_reply(ok, 8, &cd), 8);
	assert_int_equal(cd, 90);
	assert_int_equal(socks_proto_c4_reply(ok, sizeof(ok), &cd), 8);
	assert_int_equal(socks_proto_c4_reply(bad, 1, &cd), -1);
	assert_int_equal(socks_proto_c4_reply(bad, 8, &cd), -1);
}

static void test_c5_greeting(void **state)
{
	static const uint8_t plain[] = { 5, 1, 0 };
	static const uint8_t with_auth[] = { 5, 2, 0, 2 };
	uint8_t out[8];

	(void)state;
	assert_int_equal(socks_proto_c5_greeting(out, sizeof(out), false), 3);
	assert_memory_equal(out, plain, 3);
	assert_int_equal(socks_proto_c5_greeting(out, sizeof(out), true), 4);
	assert_memory_equal(out, with_auth, 4);
	assert_int_equal(socks_proto_c5_greeting(out, 2, false), 0);
	assert_int_equal(socks_proto_c5_greeting(out, 3, true), 0);
	assert_int_equal(socks_proto_c5_greeting(out, 3, false), 3);
}

static void test_c5_method(void **state)
{
	static const uint8_t ok[] = { 5, 2, 'x' };
	static const uint8_t bad[] = { 4, 0 };
	uint8_t method = 0xee;

	(void)state;
	assert_int_equal(socks_proto_c5_method(ok, 0, &method), 0);
	assert_int_equal(socks_proto_c5_method(ok, 1, &method), 0);
	assert_int_equal(method, 0xee);
	assert_int_equal(socks_proto_c5_method(ok, 3, &method), 2);
	assert_int_equal(method, 2);
	assert_int_equal(socks_proto_c5_method(bad, 1, &method), -1);
	assert_int_equal(socks_proto_c5_method(bad, 2, &method), -1);
}

struct c5_auth_args {
	const char *user, *pass;
};

static size_t enc_c5_auth(uint8_t *out, size_t cap, const void *arg)
{
	const struct c5_auth_args *a = arg;

	return socks_proto_c5_auth(out, cap, a->user, a->pass);
}

static void test_c5_auth(void **state)
{
	static const uint8_t want[] = { 1, 3, 'b', 'o', 'b', 2, 'p', 'w' };
	static const struct c5_auth_args args = { "bob", "pw" };
	char long_s[257];
	uint8_t out[600];
	struct socks_msg m;

	(void)state;
	assert_int_equal(socks_proto_c5_auth(out, sizeof(out), "bob", "pw"),
			 sizeof(want));
	assert_memory_equal(out, want, sizeof(want));
	check_caps(enc_c5_auth, &args, sizeof(want));
	parse_one(AT_USERPASS, out, sizeof(want), &m);
	assert_string_equal(m.user, "bob");
	assert_string_equal(m.pass, "pw");

	assert_int_equal(socks_proto_c5_auth(out, sizeof(out), "", "pw"), 0);
	assert_int_equal(socks_proto_c5_auth(out, sizeof(out), "bob", ""), 0);
	assert_int_equal(socks_proto_c5_auth(out, sizeof(out), NULL, "pw"), 0);
	assert_int_equal(socks_proto_c5_auth(out, sizeof(out), "bob", NULL),
			 0);

	memset(long_s, 'L', 255);
	long_s[255] = '\0';
	assert_int_equal(socks_proto_c5_auth(out, sizeof(out), long_s, long_s),
			 3 + 255 + 255);
	parse_one(AT_USERPASS, out, 3 + 255 + 255, &m);
	assert_string_equal(m.user, long_s);
	assert_string_equal(m.pass, long_s);
	long_s[255] = 'L';
	long_s[256] = '\0';
	assert_int_equal(socks_proto_c5_auth(out, sizeof(out), long_s, "pw"),
			 0);
	assert_int_equal(socks_proto_c5_auth(out, sizeof(out), "bob", long_s),
			 0);
}

static void test_c5_auth_reply(void **state)
{
	static const uint8_t ok[] = { 1, 0 };
	static const uint8_t denied[] = { 1, 1 };
	static const uint8_t bad[] = { 5, 0 };
	uint8_t status = 0xee;

	(void)state;
	assert_int_equal(socks_proto_c5_auth_reply(ok, 0, &status), 0);
	assert_int_equal(socks_proto_c5_auth_reply(ok, 1, &status), 0);
	assert_int_equal(status, 0xee);
	assert_int_equal(socks_proto_c5_auth_reply(ok, 2, &status), 2);
	assert_int_equal(status, 0);
	assert_int_equal(socks_proto_c5_auth_reply(denied, 2, &status), 2);
	assert_int_equal(status, 1);
	assert_int_equal(socks_proto_c5_auth_reply(bad, 1, &status), -1);
	assert_int_equal(socks_proto_c5_auth_reply(bad, 2, &status), -1);
}

static size_t enc_c5_connect(uint8_t *out, size_t cap, const void *arg)
{
	return socks_proto_c5_connect(out, cap, arg);
}

static void test_c5_connect(void **state)
{
	static const uint8_t want4[] = { 5, 1, 0, 1, 198, 51, 100, 7, 0x01,
					 0xbb };
	static const uint8_t want6[] = { 5, 1, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0,
					 0, 0, 0, 0, 0, 0, 0, 1, 0, 53 };
	static const uint8_t wantd[] = { 5, 1, 0, 3, 5, 'a', '.', 'b', '.',
					 'c', 0x1f, 0x90 };
	struct netaddr t;
	struct socks_msg m;
	uint8_t out[600];
	char name[256];

	(void)state;
	set_v4(&t, "198.51.100.7", 443);
	assert_int_equal(socks_proto_c5_connect(out, sizeof(out), &t), 10);
	assert_memory_equal(out, want4, 10);
	check_caps(enc_c5_connect, &t, 10);
	parse_one(AT_NOAUTH, out, 10, &m);
	assert_memory_equal(&m.target, &t, sizeof(t));

	set_v6(&t, "::1", 53);
	assert_int_equal(socks_proto_c5_connect(out, sizeof(out), &t), 22);
	assert_memory_equal(out, want6, 22);
	check_caps(enc_c5_connect, &t, 22);
	parse_one(AT_NOAUTH, out, 22, &m);
	assert_memory_equal(&m.target, &t, sizeof(t));

	set_name(&t, "a.b.c", 8080);
	assert_int_equal(socks_proto_c5_connect(out, sizeof(out), &t),
			 sizeof(wantd));
	assert_memory_equal(out, wantd, sizeof(wantd));
	check_caps(enc_c5_connect, &t, sizeof(wantd));
	parse_one(AT_NOAUTH, out, sizeof(wantd), &m);
	assert_memory_equal(&m.target, &t, sizeof(t));

	memset(name, 'z', 255);
	name[255] = '\0';
	set_name(&t, name, 1);
	assert_int_equal(socks_proto_c5_connect(out, sizeof(out), &t),
			 4 + 1 + 255 + 2);
	assert_int_equal(out[4], 255);
	/* one 255-byte label is no host name: our own server refuses it */
	parse_fail(AT_NOAUTH, out, 4 + 1 + 255 + 2, SOCKS5_REP_FAIL);
	fill_name((uint8_t *)name, 253);
	name[253] = '\0';
	set_name(&t, name, 1);
	assert_int_equal(socks_proto_c5_connect(out, sizeof(out), &t),
			 4 + 1 + 253 + 2);
	parse_one(AT_NOAUTH, out, 4 + 1 + 253 + 2, &m);
	assert_memory_equal(&m.target, &t, sizeof(t));

	t.namelen = 0;
	assert_int_equal(socks_proto_c5_connect(out, sizeof(out), &t), 0);
	set_name(&t, "ab", 1);
	t.namelen = 4; /* runs into the NUL */
	assert_int_equal(socks_proto_c5_connect(out, sizeof(out), &t), 0);
	t.type = 0;
	assert_int_equal(socks_proto_c5_connect(out, sizeof(out), &t), 0);
}

static void test_c5_reply_ip(void **state)
{
	static const uint8_t r4[] = { 5, 0, 0, 1, 10, 0, 0, 9, 0x30, 0x39,
				      'd', 'a', 't', 'a' };
	static const uint8_t r6[] = { 5, 4, 0, 4, 0xfe, 0x80, 0, 0, 0, 0, 0,
				      0, 0, 0, 0, 0, 0, 0, 0, 0x42, 0, 1 };
	struct netaddr bnd, want;
	uint8_t rep = 0xee;

	(void)state;
	assert_int_equal(socks_proto_c5_reply(r4, sizeof(r4), &rep, &bnd), 10);
	assert_int_equal(rep, 0);
	set_v4(&want, "10.0.0.9", 12345);
	assert_memory_equal(&bnd, &want, sizeof(want));
	assert_int_equal(socks_proto_c5_reply(r4, 10, &rep, NULL), 10);

	assert_int_equal(socks_proto_c5_reply(r6, sizeof(r6), &rep, &bnd), 22);
	assert_int_equal(rep, SOCKS5_REP_HOST_UNREACH);
	set_v6(&want, "fe80::42", 1);
	assert_memory_equal(&bnd, &want, sizeof(want));
}

static void test_c5_reply_domain_truncated(void **state)
{
	static const uint8_t r[] = { 5, 0, 0, 3, 11, 'p', 'r', 'o', 'x', 'y',
				     '.', 'l', 'o', 'c', 'a', 'l', 0x04,
				     0x38 };
	struct netaddr bnd, want;
	uint8_t rep;
	size_t k;

	(void)state;
	for (k = 0; k < sizeof(r); k++) {
		uint8_t *copy = malloc(k ? k : 1);

		assert_non_null(copy);
		memcpy(copy, r, k);
		rep = 0xee;
		assert_int_equal(socks_proto_c5_reply(copy, k, &rep, &bnd), 0);
		assert_int_equal(rep, 0xee);
		free(copy);
	}
	assert_int_equal(socks_proto_c5_reply(r, sizeof(r), &rep, &bnd),
			 (int)sizeof(r));
	assert_int_equal(rep, 0);
	set_name(&want, "proxy.local", 1080);
	assert_memory_equal(&bnd, &want, sizeof(want));
}

static void test_c5_reply_errors(void **state)
{
	static const uint8_t ver4[] = { 4, 0, 0, 1, 0, 0, 0, 0, 0, 0 };
	static const uint8_t atyp2[] = { 5, 0, 0, 2 };
	static const uint8_t empty[] = { 5, 0, 0, 3, 0 };
	static const uint8_t nul[] = { 5, 0, 0, 3, 2, 'a', 0, 0, 80 };
	uint8_t rep = 0xee;

	(void)state;
	assert_int_equal(socks_proto_c5_reply(ver4, 1, &rep, NULL), -1);
	assert_int_equal(socks_proto_c5_reply(ver4, sizeof(ver4), &rep, NULL),
			 -1);
	assert_int_equal(socks_proto_c5_reply(atyp2, sizeof(atyp2), &rep,
					      NULL),
			 -1);
	assert_int_equal(socks_proto_c5_reply(empty, sizeof(empty), &rep,
					      NULL),
			 -1);
	assert_int_equal(socks_proto_c5_reply(nul, sizeof(nul), &rep, NULL),
			 -1);
	assert_int_equal(rep, 0xee);
}

/* What our server encodes, our client decodes. */
static void test_s5_reply_roundtrip(void **state)
{
	struct sockaddr_in6 sin6;
	struct netaddr bnd, want;
	uint8_t out[22], rep;

	(void)state;
	memset(&sin6, 0, sizeof(sin6));
	sin6.sin6_family = AF_INET6;
	sin6.sin6_port = htons(65535);
	assert_int_equal(inet_pton(AF_INET6, "2001:db8::7", &sin6.sin6_addr),
			 1);
	assert_int_equal(socks_proto_s5_reply(out, SOCKS5_REP_REFUSED,
					      (const struct sockaddr *)&sin6),
			 22);
	assert_int_equal(socks_proto_c5_reply(out, 22, &rep, &bnd), 22);
	assert_int_equal(rep, SOCKS5_REP_REFUSED);
	set_v6(&want, "2001:db8::7", 65535);
	assert_memory_equal(&bnd, &want, sizeof(want));

	assert_int_equal(socks_proto_s5_reply(out, 0, NULL), 10);
	assert_int_equal(socks_proto_c5_reply(out, 10, &rep, &bnd), 10);
	set_v4(&want, "0.0.0.0", 0);
	assert_memory_equal(&bnd, &want, sizeof(want));
}

static size_t enc_c5_udp_assoc(uint8_t *out, size_t cap, const void *arg)
{
	return socks_proto_c5_request(out, cap, SOCKS5_CMD_UDP_ASSOCIATE, arg);
}

/* The request with another command: the same bytes but CMD. */
static void test_c5_request_cmds(void **state)
{
	static const uint8_t want[] = { 5, 3, 0, 1, 0, 0, 0, 0, 0, 0 };
	struct netaddr t;
	struct socks_msg m;
	uint8_t out[64];

	(void)state;
	set_v4(&t, "0.0.0.0", 0);
	assert_int_equal(socks_proto_c5_request(out, sizeof(out),
						SOCKS5_CMD_UDP_ASSOCIATE, &t),
			 sizeof(want));
	assert_memory_equal(out, want, sizeof(want));
	check_caps(enc_c5_udp_assoc, &t, sizeof(want));
	parse_one(AT_NOAUTH, out, sizeof(want), &m);
	assert_int_equal(m.cmd, SOCKS5_CMD_UDP_ASSOCIATE);
	set_name(&t, "ftp.test", 21);
	assert_int_equal(socks_proto_c5_request(out, sizeof(out),
						SOCKS5_CMD_BIND, &t),
			 4 + 1 + 8 + 2);
	parse_one(AT_NOAUTH, out, 4 + 1 + 8 + 2, &m);
	assert_int_equal(m.cmd, SOCKS5_CMD_BIND);
	assert_memory_equal(&m.target, &t, sizeof(t));
	set_name(&t, "", 1); /* nothing to name */
	assert_int_equal(socks_proto_c5_request(out, sizeof(out),
						SOCKS5_CMD_BIND, &t),
			 0);
}

/* Parse a UDP request header from an exact-size heap copy (a read past
 * len is caught by ASan or valgrind). */
static int udp_parse_exact(const uint8_t *buf, size_t len, uint8_t *frag,
			   struct netaddr *dst)
{
	uint8_t *copy = malloc(len ? len : 1);
	int r;

	assert_non_null(copy);
	memcpy(copy, buf, len);
	r = socks_proto_udp_parse(len ? copy : NULL, len, frag, dst);
	free(copy);
	return r;
}

static size_t enc_udp_header(uint8_t *out, size_t cap, const void *arg)
{
	return socks_proto_udp_header(out, cap, arg);
}

/* RFC 1928 section 7: RSV RSV FRAG ATYP DST.ADDR DST.PORT DATA. Each
 * address type round-trips through the encoder and the parser; the
 * payload is what follows the returned length. */
static void test_udp_header_roundtrip(void **state)
{
	static const uint8_t want4[] = { 0, 0, 0, 1, 127, 0, 0, 1, 0x1f, 0x90 };
	static const uint8_t wantd[] = { 0, 0, 0, 3, 6, 'd', 'n', 's', '.',
					 'i', 'o', 0, 53 };
	struct netaddr a, got;
	uint8_t out[SOCKS_UDP_HDR_MAX + 8], frag = 9;
	char name[256];

	(void)state;
	set_v4(&a, "127.0.0.1", 8080);
	assert_int_equal(socks_proto_udp_header(out, sizeof(out), &a),
			 sizeof(want4));
	assert_memory_equal(out, want4, sizeof(want4));
	check_caps(enc_udp_header, &a, sizeof(want4));
	memcpy(out + sizeof(want4), "data", 4);
	assert_int_equal(udp_parse_exact(out, sizeof(want4) + 4, &frag, &got),
			 sizeof(want4));
	assert_int_equal(frag, 0);
	assert_memory_equal(&got, &a, sizeof(a));

	set_v6(&a, "2001:db8::7", 443);
	assert_int_equal(socks_proto_udp_header(out, sizeof(out), &a), 22);
	check_caps(enc_udp_header, &a, 22);
	assert_int_equal(udp_parse_exact(out, 22, &frag, &got), 22);
	assert_memory_equal(&got, &a, sizeof(a));

	set_name(&a, "dns.io", 53);
	assert_int_equal(socks_proto_udp_header(out, sizeof(out), &a),
			 sizeof(wantd));
	assert_memory_equal(out, wantd, sizeof(wantd));
	check_caps(enc_udp_header, &a, sizeof(wantd));
	assert_int_equal(udp_parse_exact(out, sizeof(wantd), &frag, &got),
			 sizeof(wantd));
	assert_memory_equal(&got, &a, sizeof(a));

	/* the longest header: a 253-byte name */
	fill_name((uint8_t *)name, 253);
	name[253] = '\0';
	set_name(&a, name, 1);
	assert_int_equal(socks_proto_udp_header(out, sizeof(out), &a),
			 4 + 1 + 253 + 2);
	assert_true(4 + 1 + 253 + 2 <= SOCKS_UDP_HDR_MAX);
	assert_int_equal(udp_parse_exact(out, 4 + 1 + 253 + 2, &frag, &got),
			 4 + 1 + 253 + 2);
	assert_memory_equal(&got, &a, sizeof(a));

	/* FRAG is reported, not judged: the relay drops FRAG != 0 */
	set_v4(&a, "10.0.0.1", 1);
	assert_int_equal(socks_proto_udp_header(out, sizeof(out), &a), 10);
	out[2] = 0x81;
	assert_int_equal(udp_parse_exact(out, 10, &frag, &got), 10);
	assert_int_equal(frag, 0x81);
}

/* Truncated at every length, RSV not zero, unknown ATYP, empty names,
 * names with a NUL or not host names: -1, and nothing read past len. */
static void test_udp_header_bad(void **state)
{
	static const uint8_t v4[] = { 0, 0, 0, 1, 127, 0, 0, 1, 0, 7 };
	static const uint8_t v6[] = { 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0,
				      0, 0, 0, 0, 0, 0, 0, 1, 0, 7 };
	static const uint8_t dn[] = { 0, 0, 0, 3, 3, 'a', '.', 'b', 0, 7 };
	static const uint8_t *const whole[] = { v4, v6, dn };
	static const size_t lens[] = { sizeof(v4), sizeof(v6), sizeof(dn) };
	struct netaddr got;
	uint8_t b[32], frag;

	(void)state;
	for (size_t k = 0; k < 3; k++) {
		for (size_t n = 0; n < lens[k]; n++)
			assert_int_equal(udp_parse_exact(whole[k], n, &frag,
							 &got),
					 -1);
		assert_int_equal(udp_parse_exact(whole[k], lens[k], &frag,
						 &got),
				 (int)lens[k]);
	}
	memcpy(b, v4, sizeof(v4));
	b[0] = 1; /* RSV */
	assert_int_equal(udp_parse_exact(b, sizeof(v4), &frag, &got), -1);
	b[0] = 0;
	b[1] = 0x80;
	assert_int_equal(udp_parse_exact(b, sizeof(v4), &frag, &got), -1);
	b[1] = 0;
	for (unsigned atyp = 0; atyp < 256; atyp++) {
		if (atyp == 1 || atyp == 3 || atyp == 4)
			continue;
		b[3] = (uint8_t)atyp;
		assert_int_equal(udp_parse_exact(b, sizeof(v4), &frag, &got),
				 -1);
	}
	memcpy(b, dn, sizeof(dn));
	b[4] = 0; /* an empty name */
	assert_int_equal(udp_parse_exact(b, 7, &frag, &got), -1);
	memcpy(b, dn, sizeof(dn));
	b[6] = 0; /* a NUL inside */
	assert_int_equal(udp_parse_exact(b, sizeof(dn), &frag, &got), -1);
	memcpy(b, dn, sizeof(dn));
	b[6] = ' '; /* not a host name */
	assert_int_equal(udp_parse_exact(b, sizeof(dn), &frag, &got), -1);
	/* nothing to encode, or no room */
	memset(&got, 0, sizeof(got));
	got.type = ADDR_DOMAIN;
	assert_int_equal(socks_proto_udp_header(b, sizeof(b), &got), 0);
	got.type = 9;
	assert_int_equal(socks_proto_udp_header(b, sizeof(b), &got), 0);
}

/* The reply to a UDP ASSOCIATE a chain hop gives: BND is its relay. */
static void test_c5_reply_bnd_is_the_relay(void **state)
{
	static const uint8_t rep[] = { 5, 0, 0, 1, 127, 0, 0, 2, 0x9c, 0x40 };
	struct netaddr bnd, want;
	uint8_t code = 0xff;

	(void)state;
	assert_int_equal(socks_proto_c5_reply(rep, sizeof(rep), &code, &bnd),
			 sizeof(rep));
	assert_int_equal(code, 0);
	set_v4(&want, "127.0.0.2", 40000);
	assert_int_equal(bnd.type, ADDR_IPV4);
	assert_memory_equal(bnd.u.v4, want.u.v4, 4);
	assert_int_equal(bnd.port, 40000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_init),
		cmocka_unit_test(test_s4_connect),
		cmocka_unit_test(test_s4_bind_and_other_cmds),
		cmocka_unit_test(test_s4_empty_userid_and_zero_ip),
		cmocka_unit_test(test_s4a_name),
		cmocka_unit_test(test_s4a_bad_names_refused),
		cmocka_unit_test(test_s4a_literal_name_stays_domain),
		cmocka_unit_test(test_s4a_name_limits),
		cmocka_unit_test(test_s4_userid_255),
		cmocka_unit_test(test_s4_userid_256),
		cmocka_unit_test(test_s4_prefixes),
		cmocka_unit_test(test_s4_streams),
		cmocka_unit_test(test_bad_first_byte),
		cmocka_unit_test(test_s5_greeting),
		cmocka_unit_test(test_s5_greeting_255_methods),
		cmocka_unit_test(test_s5_auth),
		cmocka_unit_test(test_s5_auth_255),
		cmocka_unit_test(test_s5_request_v4),
		cmocka_unit_test(test_s5_request_v6),
		cmocka_unit_test(test_s5_request_domain),
		cmocka_unit_test(test_s5_request_cmds_and_rsv),
		cmocka_unit_test(test_s5_bad_atyp),
		cmocka_unit_test(test_s5_bad_domain),
		cmocka_unit_test(test_s5_nmethods_zero),
		cmocka_unit_test(test_s5_auth_errors),
		cmocka_unit_test(test_s5_request_bad_version),
		cmocka_unit_test(test_s5_method_not_selected),
		cmocka_unit_test(test_s5_prefixes),
		cmocka_unit_test(test_s5_streams),
		cmocka_unit_test(test_s5_pipelined),
		cmocka_unit_test(test_select_method),
		cmocka_unit_test(test_server_encoders),
		cmocka_unit_test(test_s5_reply),
		cmocka_unit_test(test_c4_request_v4),
		cmocka_unit_test(test_c4_request_domain),
		cmocka_unit_test(test_c4_request_v6),
		cmocka_unit_test(test_c4_request_userid_limit),
		cmocka_unit_test(test_c4_reply),
		cmocka_unit_test(test_c5_greeting),
		cmocka_unit_test(test_c5_method),
		cmocka_unit_test(test_c5_auth),
		cmocka_unit_test(test_c5_auth_reply),
		cmocka_unit_test(test_c5_connect),
		cmocka_unit_test(test_c5_reply_ip),
		cmocka_unit_test(test_c5_reply_domain_truncated),
		cmocka_unit_test(test_c5_reply_errors),
		cmocka_unit_test(test_s5_reply_roundtrip),
		cmocka_unit_test(test_c5_request_cmds),
		cmocka_unit_test(test_udp_header_roundtrip),
		cmocka_unit_test(test_udp_header_bad),
		cmocka_unit_test(test_c5_reply_bnd_is_the_relay),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
