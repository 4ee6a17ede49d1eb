/* Unit tests for src/common/addr.c */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/un.h>

#include "common/addr.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* --- addr_splithostport --- */

static void expect_split(const char *s, const char *host, const char *port)
{
	char h[ADDR_STRLEN], p[8];

	memset(h, 'x', sizeof(h));
	memset(p, 'x', sizeof(p));
	assert_int_equal(addr_splithostport(s, strlen(s), h, sizeof(h), p,
					    sizeof(p)), 0);
	assert_string_equal(h, host);
	assert_string_equal(p, port);
}

static int split(const char *s, size_t len)
{
	char h[ADDR_STRLEN], p[8];

	return addr_splithostport(s, len, h, sizeof(h), p, sizeof(p));
}

static void test_split_valid(void **state)
{
	(void)state;
	expect_split("example.com:80", "example.com", "80");
	expect_split("1.2.3.4:65535", "1.2.3.4", "65535");
	expect_split("[::1]:80", "::1", "80");
	expect_split("[2001:db8::1]:443", "2001:db8::1", "443");
	expect_split(":1080", "", "1080");
	expect_split("[::1]:", "::1", "");
	expect_split("host:", "host", "");
	expect_split(":", "", "");
	expect_split("[]:80", "", "80");
	/* the port is split, not parsed */
	expect_split("host:+8x", "host", "+8x");
}

static void test_split_invalid(void **state)
{
	static const char *const bad[] = {
		"::1:80",       /* IPv6 must be bracketed */
		"a:b:80",       /* two colons */
		"[::1]80",      /* junk after ']' */
		"[::1",         /* unmatched '[' */
		"::1]:80",      /* unmatched ']' */
		"a]:80",        /* ']' in plain host */
		"a[b:80",       /* '[' in plain host */
		"[[::1]]:80",   /* nested brackets */
		"[::1]:8]0",    /* bracket in port */
		"[::1]:80:90",  /* colon in port */
		"host",         /* no separator */
		"[::1]",        /* no separator */
		"",             /* nothing */
	};
	size_t i;

	(void)state;
	for (i = 0; i < ARRAY_LEN(bad); i++) {
		if (split(bad[i], strlen(bad[i])) != -1)
			fail_msg("accepted \"%s\"", bad[i]);
	}
	assert_int_equal(split("ab\0c:80", 7), -1); /* embedded NUL */
	assert_int_equal(split(NULL, 0), -1);
}

static void test_split_len_respected(void **state)
{
	char h[16], p[8];

	(void)state;
	/* only the first 7 bytes are looked at */
	assert_int_equal(addr_splithostport("host:80:garbage", 7, h, sizeof(h),
					    p, sizeof(p)), 0);
	assert_string_equal(h, "host");
	assert_string_equal(p, "80");
}

static void test_split_buffers(void **state)
{
	char h[4], p[3];

	(void)state;
	/* exact fit: "abc" + NUL, "80" + NUL */
	assert_int_equal(addr_splithostport("abc:80", 6, h, 4, p, 3), 0);
	assert_string_equal(h, "abc");
	assert_string_equal(p, "80");
	/* one byte short for the host, then for the port */
	assert_int_equal(addr_splithostport("abc:80", 6, h, 3, p, 3), -1);
	assert_int_equal(addr_splithostport("abc:80", 6, h, 4, p, 2), -1);
	assert_int_equal(addr_splithostport("abc:80", 6, NULL, 0, p, 3), -1);
	assert_int_equal(addr_splithostport("abc:80", 6, h, 4, NULL, 0), -1);
	/* an empty host still needs room for the NUL */
	assert_int_equal(addr_splithostport(":80", 3, h, 1, p, 3), 0);
	assert_string_equal(h, "");
	assert_int_equal(addr_splithostport(":80", 3, h, 0, p, 3), -1);
}

/* --- addr_parse_port --- */

static void test_parse_port(void **state)
{
	static const struct {
		const char *s;
		int rc;
		uint16_t port;
	} cases[] = {
		{ "0", 0, 0 },
		{ "1", 0, 1 },
		{ "80", 0, 80 },
		{ "00080", 0, 80 },
		{ "65535", 0, 65535 },
		{ "65536", -1, 0 },
		{ "99999", -1, 0 },
		{ "123456", -1, 0 },
		{ "000080", -1, 0 },
		{ "", -1, 0 },
		{ "+80", -1, 0 },
		{ "-1", -1, 0 },
		{ " 80", -1, 0 },
		{ "80 ", -1, 0 },
		{ "8a", -1, 0 },
		{ "0x50", -1, 0 },
	};
	uint16_t port;
	size_t i;

	(void)state;
	for (i = 0; i < ARRAY_LEN(cases); i++) {
		port = 4242;
		if (addr_parse_port(cases[i].s, strlen(cases[i].s), &port) !=
		    cases[i].rc)
			fail_msg("port \"%s\": wrong result", cases[i].s);
		if (cases[i].rc == 0)
			assert_int_equal(port, cases[i].port);
		else
			assert_int_equal(port, 4242); /* untouched */
	}
	assert_int_equal(addr_parse_port("8080", 2, &port), 0);
	assert_int_equal(port, 80);
	assert_int_equal(addr_parse_port("8\0", 2, &port), -1);
	assert_int_equal(addr_parse_port(NULL, 0, &port), -1);
}

/* --- addr_parse / addr_set_host --- */

static int parse(struct netaddr *a, const char *s, int defport)
{
	return addr_parse(a, s, strlen(s), defport);
}

static void test_parse_ipv4(void **state)
{
	static const uint8_t want[4] = { 1, 2, 3, 4 };
	struct netaddr a;

	(void)state;
	assert_int_equal(parse(&a, "1.2.3.4:80", -1), 0);
	assert_int_equal(a.type, ADDR_IPV4);
	assert_int_equal(a.port, 80);
	assert_memory_equal(a.u.v4, want, 4);
	assert_int_equal(parse(&a, "1.2.3.4:0", -1), 0);
	assert_int_equal(a.port, 0);
	assert_int_equal(parse(&a, "255.255.255.255:65535", -1), 0);
	assert_int_equal(a.port, 65535);
	assert_int_equal(parse(&a, "1.2.3.4", 1080), 0);
	assert_int_equal(a.type, ADDR_IPV4);
	assert_int_equal(a.port, 1080);
}

static void test_parse_ipv6(void **state)
{
	static const uint8_t want[16] = { 0x20, 0x01, 0x0d, 0xb8, [15] = 1 };
	struct netaddr a;

	(void)state;
	assert_int_equal(parse(&a, "[2001:db8::1]:443", -1), 0);
	assert_int_equal(a.type, ADDR_IPV6);
	assert_int_equal(a.port, 443);
	assert_memory_equal(a.u.v6, want, 16);
	assert_int_equal(parse(&a, "[::1]", 53), 0);
	assert_int_equal(a.type, ADDR_IPV6);
	assert_int_equal(a.port, 53);
	assert_int_equal(a.u.v6[15], 1);
	assert_int_equal(parse(&a, "[::ffff:1.2.3.4]:1", -1), 0);
	assert_int_equal(a.type, ADDR_IPV6);
	assert_int_equal(a.u.v6[10], 0xff);
	assert_int_equal(a.u.v6[15], 4);
}

static void test_parse_domain(void **state)
{
	struct netaddr a;

	(void)state;
	assert_int_equal(parse(&a, "example.com:8080", -1), 0);
	assert_int_equal(a.type, ADDR_DOMAIN);
	assert_int_equal(a.namelen, 11);
	assert_string_equal(a.u.name, "example.com");
	assert_int_equal(a.port, 8080);
	assert_int_equal(parse(&a, "example.com", 443), 0);
	assert_int_equal(a.port, 443);
	assert_int_equal(parse(&a, "example.com.:1", -1), 0);
	assert_string_equal(a.u.name, "example.com.");
	/* digits are fine when the last label is not a number */
	assert_int_equal(parse(&a, "1e100.net:443", -1), 0);
	assert_int_equal(parse(&a, "1.2.3.4a:1", -1), 0);
	assert_int_equal(parse(&a, "localhost:1", -1), 0);
	assert_int_equal(parse(&a, "under_score.x-y:1", -1), 0);
	assert_int_equal(a.type, ADDR_DOMAIN);
}

/* n bytes of labels of 63 'n' between dots */
static void fill_name(char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		s[i] = i % 64 == 63 ? '.' : 'n';
	s[n] = '\0';
}

static void test_parse_name_length(void **state)
{
	char s[ADDR_NAME_MAX + 16];
	struct netaddr a;

	(void)state;
	fill_name(s, 253);
	strcpy(s + 253, ":1");
	assert_int_equal(parse(&a, s, -1), 0);
	assert_int_equal(a.type, ADDR_DOMAIN);
	assert_int_equal(a.namelen, 253);
	assert_int_equal(strlen(a.u.name), 253);
	strcpy(s + 253, ".:1");
	assert_int_equal(parse(&a, s, -1), 0);
	assert_int_equal(a.namelen, 254);

	fill_name(s, 254);
	strcpy(s + 254, ":1");
	assert_int_equal(parse(&a, s, -1), -1);
	fill_name(s, ADDR_NAME_MAX + 1);
	strcpy(s + ADDR_NAME_MAX + 1, ":1");
	assert_int_equal(parse(&a, s, -1), -1);
}

/* addr_name_valid(): what may reach a resolver. Regression (issue 9,
 * defect 1): "a%lo" reached evdns, which called if_nametoindex() for the
 * "zone" and the front's seccomp filter killed the process. */
static void test_name_valid(void **state)
{
	static const char *const good[] = {
		"a", "A", "0", "_", "-", "localhost", "localhost.",
		"example.com", "EXAMPLE.com.", "a-b_c.d", "xn--caf-dma.example",
		"1.2.3.4", "127.1", "_dmarc.example.org", "::1",
		"::ffff:127.0.0.1", "2001:db8::1", "::",
	};
	static const char *const bad[] = {
		"", ".", "..", ".a", "a..b", "a.b..", "a%lo", "x%y", "%",
		"a%25lo", "fe80::1%lo", "fe80::1%25lo", "[::1]", "::1]", ":",
		"a:b", "a b", " a", "a ", "a\tb", "a/b", "a@b", "a*b", "a,b",
		"a!b", "a~b", "a+b", "a=b", "a\\b", "a\x7f", "\x80",
		"caf\xc3\xa9", "a\"b", "a'b", "a;b", "a\rb", "a\nb",
		"::ffff:127.0.0.1%lo", "1.2.3.4%lo",
	};
	char s[ADDR_NAME_MAX + 2];
	size_t i;

	(void)state;
	for (i = 0; i < ARRAY_LEN(good); i++)
		if (!addr_name_valid(good[i], strlen(good[i])))
			fail_msg("refused \"%s\"", good[i]);
	for (i = 0; i < ARRAY_LEN(bad); i++)
		if (addr_name_valid(bad[i], strlen(bad[i])))
			fail_msg("accepted \"%s\"", bad[i]);
	assert_false(addr_name_valid(NULL, 0));

	/* NUL anywhere, and the length is what is checked, not the NUL */
	assert_false(addr_name_valid("a\0b", 3));
	assert_false(addr_name_valid("a\0", 2));
	assert_true(addr_name_valid("ab%", 2));
	assert_false(addr_name_valid("::1\0", 4));

	/* lengths: 253 (+ a trailing dot) is the longest name */
	fill_name(s, 253);
	assert_true(addr_name_valid(s, 253));
	s[253] = '.';
	assert_true(addr_name_valid(s, 254));
	s[253] = 'n';
	assert_false(addr_name_valid(s, 254));
	s[254] = '.';
	assert_false(addr_name_valid(s, 255)); /* 254 + dot */

	/* labels: 63 bytes, not 64; an empty label anywhere is refused */
	memset(s, 'a', 64);
	assert_true(addr_name_valid(s, 63));
	assert_false(addr_name_valid(s, 64));
	s[63] = '.';
	assert_true(addr_name_valid(s, 64));
	memcpy(s, "a..", 3);
	assert_false(addr_name_valid(s, 3));

	/* every byte value, alone and inside a name: only LDH and '_' (a
	 * '.' alone is an empty name, ':' alone no IPv6 literal) */
	for (i = 0; i < 256; i++) {
		char c = (char)i;
		bool want = (i >= 'a' && i <= 'z') || (i >= 'A' && i <= 'Z') ||
			    (i >= '0' && i <= '9') || i == '-' || i == '_';

		if (addr_name_valid(&c, 1) != want)
			fail_msg("byte 0x%02zx: wrong answer", i);
		/* and the same byte inside a name */
		memcpy(s, "ab.c", 4);
		s[1] = c;
		if (addr_name_valid(s, 4) != want)
			fail_msg("byte 0x%02zx inside a name", i);
	}
}

static void test_unmap(void **state)
{
	struct netaddr a;

	(void)state;
	assert_int_equal(parse(&a, "[::ffff:127.0.0.1]:80", -1), 0);
	assert_true(addr_unmap(&a));
	assert_int_equal(a.type, ADDR_IPV4);
	assert_int_equal(a.port, 80);
	assert_memory_equal(a.u.v4, ((const uint8_t[]){ 127, 0, 0, 1 }), 4);
	assert_false(addr_unmap(&a)); /* already IPv4 */
	assert_int_equal(parse(&a, "[::ffff:7f00:1]:1", -1), 0);
	assert_true(addr_unmap(&a));
	assert_memory_equal(a.u.v4, ((const uint8_t[]){ 127, 0, 0, 1 }), 4);
	/* not mapped: IPv4-compatible, NAT64, loopback, names */
	assert_int_equal(parse(&a, "[::127.0.0.1]:1", -1), 0);
	assert_false(addr_unmap(&a));
	assert_int_equal(parse(&a, "[64:ff9b::127.0.0.1]:1", -1), 0);
	assert_false(addr_unmap(&a));
	assert_int_equal(parse(&a, "[::1]:1", -1), 0);
	assert_false(addr_unmap(&a));
	assert_int_equal(a.type, ADDR_IPV6);
	assert_int_equal(parse(&a, "example.com:1", -1), 0);
	assert_false(addr_unmap(&a));
	assert_false(addr_unmap(NULL));
}

static void test_equal(void **state)
{
	struct netaddr a, b;

	(void)state;
	assert_int_equal(parse(&a, "127.0.0.1:80", -1), 0);
	assert_int_equal(parse(&b, "127.0.0.1:80", -1), 0);
	assert_true(addr_equal(&a, &b));
	b.port = 81;
	assert_false(addr_equal(&a, &b)); /* the port counts */
	assert_int_equal(parse(&b, "127.0.0.2:80", -1), 0);
	assert_false(addr_equal(&a, &b));
	assert_int_equal(parse(&b, "[::ffff:127.0.0.1]:80", -1), 0);
	assert_false(addr_equal(&a, &b)); /* mapped is another type... */
	assert_true(addr_unmap(&b));
	assert_true(addr_equal(&a, &b)); /* ...until unmapped */
	assert_int_equal(parse(&a, "[::1]:53", -1), 0);
	assert_int_equal(parse(&b, "[::1]:53", -1), 0);
	assert_true(addr_equal(&a, &b));
	b.u.v6[15] = 2;
	assert_false(addr_equal(&a, &b));
	assert_int_equal(parse(&a, "example.com:1", -1), 0);
	assert_int_equal(parse(&b, "example.com:1", -1), 0);
	assert_true(addr_equal(&a, &b));
	assert_int_equal(parse(&b, "example.co:1", -1), 0);
	assert_false(addr_equal(&a, &b)); /* a prefix is not the name */
	assert_int_equal(parse(&b, "Example.com:1", -1), 0);
	assert_false(addr_equal(&a, &b)); /* byte for byte */
}

static void test_parse_invalid(void **state)
{
	static const char *const bad[] = {
		"1.2.3.4:",           /* empty port */
		"1.2.3.4:65536",
		"1.2.3.4:+80",
		"1.2.3.4:-1",
		"1.2.3.4: 80",
		"1.2.3.4:8o",
		":80",                /* empty host */
		"[]:80",
		"::1:80",             /* unbracketed IPv6 */
		"[::1]:",
		"[::1",
		"::1]:80",
		"[::1]x",
		"[fe80::1%eth0]:80",  /* zone id */
		"[fe80::1%25eth0]:80",
		"[1.2.3.4]:80",       /* brackets only for IPv6 */
		"[example.com]:80",
		"[::1::2]:80",
		"[12345::]:80",
		"1.2.3:80",           /* not a strict dotted quad */
		"1.2.3.256:80",
		"127.1:80",
		"01.2.3.4:80",
		"0x7f.0.0.1:80",
		"0x7f000001:80",
		"2130706433:80",
		"1.2.3.4.:80",
		"a.0x:80",
		"a%lo:80",            /* '%': an IPv6 zone to libevent */
		"x%y:80",
		"a..b:80",            /* empty label */
		".a:80",
		"a*b:80",
		"a b:80",             /* bad name characters */
		"a/b:80",
		"a@b:80",
		"a\tb:80",
		"a\x7f:80",
		"caf\xc3\xa9:80",
	};
	struct netaddr a;
	size_t i;

	(void)state;
	for (i = 0; i < ARRAY_LEN(bad); i++) {
		if (parse(&a, bad[i], 80) != -1)
			fail_msg("accepted \"%s\"", bad[i]);
	}
}

static void test_parse_default_port(void **state)
{
	struct netaddr a;

	(void)state;
	assert_int_equal(parse(&a, "example.com", -1), -1);
	assert_int_equal(parse(&a, "1.2.3.4", -1), -1);
	assert_int_equal(parse(&a, "[::1]", -1), -1);
	assert_int_equal(parse(&a, "example.com", 0), 0);
	assert_int_equal(a.port, 0);
	assert_int_equal(parse(&a, "example.com", 65535), 0);
	assert_int_equal(a.port, 65535);
	assert_int_equal(parse(&a, "example.com", 65536), -1);
	/* an explicit port wins over the default */
	assert_int_equal(parse(&a, "example.com:1", 80), 0);
	assert_int_equal(a.port, 1);
}

static void test_parse_bounds(void **state)
{
	struct netaddr a;

	(void)state;
	/* embedded NUL in host, in port, in brackets */
	assert_int_equal(addr_parse(&a, "ab\0c:80", 7, -1), -1);
	assert_int_equal(addr_parse(&a, "ab:8\0", 5, -1), -1);
	assert_int_equal(addr_parse(&a, "[::1\0]:80", 9, -1), -1);
	/* len is respected */
	assert_int_equal(addr_parse(&a, "1.2.3.4:80xyz", 10, -1), 0);
	assert_int_equal(a.port, 80);
	assert_int_equal(addr_parse(&a, "", 0, 80), -1);
	assert_int_equal(addr_parse(&a, NULL, 0, 80), -1);
	assert_int_equal(addr_parse(NULL, "a:1", 3, 80), -1);
}

static void test_parse_failure_keeps_output(void **state)
{
	struct netaddr a;

	(void)state;
	assert_int_equal(parse(&a, "example.com:80", -1), 0);
	assert_int_equal(parse(&a, "bad host:81", -1), -1);
	assert_int_equal(a.type, ADDR_DOMAIN);
	assert_string_equal(a.u.name, "example.com");
	assert_int_equal(a.port, 80);
}

static void test_set_host(void **state)
{
	struct netaddr a;

	(void)state;
	assert_int_equal(addr_set_host(&a, "1.2.3.4", 7, 80), 0);
	assert_int_equal(a.type, ADDR_IPV4);
	assert_int_equal(a.port, 80);
	assert_int_equal(addr_set_host(&a, "::1", 3, 81), 0);
	assert_int_equal(a.type, ADDR_IPV6);
	assert_int_equal(a.u.v6[15], 1);
	assert_int_equal(a.port, 81);
	assert_int_equal(addr_set_host(&a, "[::2]", 5, 82), 0);
	assert_int_equal(a.type, ADDR_IPV6);
	assert_int_equal(a.u.v6[15], 2);
	assert_int_equal(addr_set_host(&a, "example.org", 11, 83), 0);
	assert_int_equal(a.type, ADDR_DOMAIN);
	assert_string_equal(a.u.name, "example.org");
	assert_int_equal(a.port, 83);

	assert_int_equal(addr_set_host(&a, "", 0, 1), -1);
	assert_int_equal(addr_set_host(&a, "[]", 2, 1), -1);
	assert_int_equal(addr_set_host(&a, "fe80::1%1", 9, 1), -1);
	assert_int_equal(addr_set_host(&a, "a:b", 3, 1), -1);
	assert_int_equal(addr_set_host(&a, "[1.2.3.4]", 9, 1), -1);
	assert_int_equal(addr_set_host(&a, "[::1", 4, 1), -1);
	assert_int_equal(addr_set_host(&a, "1.2.3.4:80", 10, 1), -1);
	assert_int_equal(addr_set_host(&a, "10.1", 4, 1), -1);
	assert_int_equal(addr_set_host(&a, "a\0b", 3, 1), -1);
	assert_int_equal(addr_set_host(&a, NULL, 0, 1), -1);
}

/* --- formatting --- */

static void test_format(void **state)
{
	struct netaddr a;
	char buf[ADDR_STRLEN];

	(void)state;
	assert_int_equal(parse(&a, "1.2.3.4:80", -1), 0);
	assert_int_equal(addr_format(&a, buf, sizeof(buf)), 10);
	assert_string_equal(buf, "1.2.3.4:80");
	assert_int_equal(addr_format_host(&a, buf, sizeof(buf)), 7);
	assert_string_equal(buf, "1.2.3.4");

	assert_int_equal(parse(&a, "[::1]:0", -1), 0);
	assert_int_equal(addr_format(&a, buf, sizeof(buf)), 7);
	assert_string_equal(buf, "[::1]:0");
	assert_int_equal(addr_format_host(&a, buf, sizeof(buf)), 3);
	assert_string_equal(buf, "::1");

	assert_int_equal(parse(&a, "[2001:DB8:0:0:0:0:0:1]:65535", -1), 0);
	assert_int_equal(addr_format(&a, buf, sizeof(buf)), 19);
	assert_string_equal(buf, "[2001:db8::1]:65535");

	assert_int_equal(parse(&a, "[::ffff:10.0.0.1]:1", -1), 0);
	assert_int_equal(addr_format(&a, buf, sizeof(buf)), 19);
	assert_string_equal(buf, "[::ffff:10.0.0.1]:1");

	assert_int_equal(parse(&a, "example.com:443", -1), 0);
	assert_int_equal(addr_format(&a, buf, sizeof(buf)), 15);
	assert_string_equal(buf, "example.com:443");
	assert_int_equal(addr_format_host(&a, buf, sizeof(buf)), 11);
	assert_string_equal(buf, "example.com");
}

static void test_format_longest(void **state)
{
	char s[ADDR_NAME_MAX + 8], buf[ADDR_STRLEN];
	struct netaddr a;

	(void)state;
	fill_name(s, 253);
	strcpy(s + 253, ".:65535");
	assert_int_equal(parse(&a, s, -1), 0);
	assert_int_equal(addr_format(&a, buf, sizeof(buf)), 260);
	assert_string_equal(buf, s);

	assert_int_equal(parse(&a, "[ffff:ffff:ffff:ffff:ffff:ffff:"
				   "255.255.255.255]:65535", -1), 0);
	assert_in_range(addr_format(&a, buf, sizeof(buf)), 1, ADDR_STRLEN - 1);
}

/* Writes nothing at or past cap; returns -1 when one byte short. */
static void check_fit(int (*fn)(const struct netaddr *, char *, size_t),
		      const struct netaddr *a, const char *want)
{
	size_t n = strlen(want);
	char buf[300];

	assert_true(n + 2 <= sizeof(buf));
	memset(buf, '#', sizeof(buf));
	assert_int_equal(fn(a, buf, n + 1), (int)n);
	assert_string_equal(buf, want);
	assert_int_equal(buf[n + 1], '#');

	memset(buf, '#', sizeof(buf));
	assert_int_equal(fn(a, buf, n), -1);
	assert_int_equal(buf[n], '#');
	assert_int_equal(buf[0], '\0'); /* empty string on failure */

	assert_int_equal(fn(a, buf, 0), -1);
	assert_int_equal(fn(a, NULL, 0), -1);
}

static void test_format_small_buffers(void **state)
{
	struct netaddr a;

	(void)state;
	assert_int_equal(parse(&a, "1.2.3.4:80", -1), 0);
	check_fit(addr_format, &a, "1.2.3.4:80");
	check_fit(addr_format_host, &a, "1.2.3.4");
	assert_int_equal(parse(&a, "[2001:db8::1]:65535", -1), 0);
	check_fit(addr_format, &a, "[2001:db8::1]:65535");
	check_fit(addr_format_host, &a, "2001:db8::1");
	assert_int_equal(parse(&a, "a.example:1", -1), 0);
	check_fit(addr_format, &a, "a.example:1");
	check_fit(addr_format_host, &a, "a.example");
}

static void test_format_invalid(void **state)
{
	struct netaddr a;
	char buf[64];

	(void)state;
	memset(&a, 0, sizeof(a));
	assert_int_equal(addr_format(&a, buf, sizeof(buf)), -1);
	assert_int_equal(addr_format_host(&a, buf, sizeof(buf)), -1);
	a.type = ADDR_DOMAIN; /* namelen 0 */
	assert_int_equal(addr_format(&a, buf, sizeof(buf)), -1);
	a.type = 2;
	assert_int_equal(addr_format(&a, buf, sizeof(buf)), -1);
	assert_int_equal(addr_format(NULL, buf, sizeof(buf)), -1);
	assert_int_equal(addr_format_host(NULL, buf, sizeof(buf)), -1);
}

static void test_format_sockaddr(void **state)
{
	struct sockaddr_in sin;
	struct sockaddr_in6 sin6;
	struct sockaddr_un sun;
	char buf[128];

	(void)state;
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons(1080);
	sin.sin_addr.s_addr = htonl(0x7f000001);
	assert_int_equal(addr_format_sockaddr((struct sockaddr *)&sin, buf,
					      sizeof(buf)), 14);
	assert_string_equal(buf, "127.0.0.1:1080");
	assert_int_equal(addr_format_sockaddr((struct sockaddr *)&sin, buf,
					      14), -1);

	memset(&sin6, 0, sizeof(sin6));
	sin6.sin6_family = AF_INET6;
	sin6.sin6_port = htons(443);
	sin6.sin6_addr.s6_addr[15] = 1;
	assert_int_equal(addr_format_sockaddr((struct sockaddr *)&sin6, buf,
					      sizeof(buf)), 9);
	assert_string_equal(buf, "[::1]:443");

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	strcpy(sun.sun_path, "/run/neosocksd.sock");
	assert_int_equal(addr_format_sockaddr((struct sockaddr *)&sun, buf,
					      sizeof(buf)), 19);
	assert_string_equal(buf, "/run/neosocksd.sock");
	assert_int_equal(addr_format_sockaddr((struct sockaddr *)&sun, buf,
					      19), -1);
	/* a full sun_path without a NUL stays in bounds */
	memset(sun.sun_path, 'p', sizeof(sun.sun_path));
	assert_int_equal(addr_format_sockaddr((struct sockaddr *)&sun, buf,
					      sizeof(buf)),
			 (int)sizeof(sun.sun_path));
	/* abstract and unnamed */
	memset(sun.sun_path, 0, sizeof(sun.sun_path));
	strcpy(sun.sun_path + 1, "abstract");
	assert_int_equal(addr_format_sockaddr((struct sockaddr *)&sun, buf,
					      sizeof(buf)), 5);
	assert_string_equal(buf, "unix:");
	sun.sun_path[1] = '\0';
	assert_int_equal(addr_format_sockaddr((struct sockaddr *)&sun, buf,
					      sizeof(buf)), 5);
	assert_string_equal(buf, "unix:");

	sin.sin_family = AF_UNSPEC;
	assert_int_equal(addr_format_sockaddr((struct sockaddr *)&sin, buf,
					      sizeof(buf)), -1);
	assert_int_equal(addr_format_sockaddr(NULL, buf, sizeof(buf)), -1);
}

/* --- sockaddr conversion --- */

static void test_to_from_sockaddr(void **state)
{
	struct sockaddr_storage ss;
	struct sockaddr_in sin;
	struct sockaddr_in6 sin6;
	struct netaddr a, b;

	(void)state;
	assert_int_equal(parse(&a, "192.0.2.7:8080", -1), 0);
	memset(&ss, 0xa5, sizeof(ss));
	assert_int_equal(addr_to_sockaddr(&a, &ss), (int)sizeof(sin));
	memcpy(&sin, &ss, sizeof(sin));
	assert_int_equal(sin.sin_family, AF_INET);
	assert_int_equal(sin.sin_port, htons(8080));
	assert_int_equal(sin.sin_addr.s_addr, htonl(0xc0000207));
	assert_int_equal(addr_from_sockaddr(&b, (struct sockaddr *)&ss), 0);
	assert_int_equal(b.type, ADDR_IPV4);
	assert_int_equal(b.port, 8080);
	assert_memory_equal(b.u.v4, a.u.v4, 4);

	assert_int_equal(parse(&a, "[2001:db8::7]:65535", -1), 0);
	assert_int_equal(addr_to_sockaddr(&a, &ss), (int)sizeof(sin6));
	memcpy(&sin6, &ss, sizeof(sin6));
	assert_int_equal(sin6.sin6_family, AF_INET6);
	assert_int_equal(sin6.sin6_port, htons(65535));
	assert_int_equal(sin6.sin6_scope_id, 0);
	assert_int_equal(sin6.sin6_flowinfo, 0);
	assert_memory_equal(&sin6.sin6_addr, a.u.v6, 16);
	assert_int_equal(addr_from_sockaddr(&b, (struct sockaddr *)&ss), 0);
	assert_int_equal(b.type, ADDR_IPV6);
	assert_int_equal(b.port, 65535);
	assert_memory_equal(b.u.v6, a.u.v6, 16);

	assert_int_equal(parse(&a, "example.com:80", -1), 0);
	assert_int_equal(addr_to_sockaddr(&a, &ss), -1);
	a.type = 0;
	assert_int_equal(addr_to_sockaddr(&a, &ss), -1);
	assert_int_equal(addr_to_sockaddr(NULL, &ss), -1);
	assert_int_equal(addr_to_sockaddr(&b, NULL), -1);

	memset(&ss, 0, sizeof(ss));
	ss.ss_family = AF_UNIX;
	assert_int_equal(addr_from_sockaddr(&b, (struct sockaddr *)&ss), -1);
	assert_int_equal(addr_from_sockaddr(&b, NULL), -1);
	assert_int_equal(addr_from_sockaddr(NULL, (struct sockaddr *)&ss), -1);
}

/* --- addr_parse_listen --- */

static void test_parse_listen_valid(void **state)
{
	struct sockaddr_storage ss;
	struct sockaddr_in sin;
	struct sockaddr_in6 sin6;

	(void)state;
	assert_int_equal(addr_parse_listen("127.0.0.1:1080", &ss),
			 (int)sizeof(sin));
	memcpy(&sin, &ss, sizeof(sin));
	assert_int_equal(sin.sin_family, AF_INET);
	assert_int_equal(sin.sin_port, htons(1080));
	assert_int_equal(sin.sin_addr.s_addr, htonl(INADDR_LOOPBACK));

	assert_int_equal(addr_parse_listen("0.0.0.0:80", &ss), (int)sizeof(sin));
	memcpy(&sin, &ss, sizeof(sin));
	assert_int_equal(sin.sin_addr.s_addr, htonl(INADDR_ANY));
	assert_int_equal(sin.sin_port, htons(80));

	assert_int_equal(addr_parse_listen("[::1]:1080", &ss), (int)sizeof(sin6));
	memcpy(&sin6, &ss, sizeof(sin6));
	assert_int_equal(sin6.sin6_family, AF_INET6);
	assert_int_equal(sin6.sin6_port, htons(1080));
	assert_memory_equal(&sin6.sin6_addr, &in6addr_loopback, 16);

	memset(&ss, 0xa5, sizeof(ss));
	assert_int_equal(addr_parse_listen(":1080", &ss), (int)sizeof(sin6));
	memcpy(&sin6, &ss, sizeof(sin6));
	assert_int_equal(sin6.sin6_family, AF_INET6);
	assert_int_equal(sin6.sin6_port, htons(1080));
	assert_memory_equal(&sin6.sin6_addr, &in6addr_any, 16);

	assert_int_equal(addr_parse_listen("[::]:0", &ss), (int)sizeof(sin6));
	memcpy(&sin6, &ss, sizeof(sin6));
	assert_int_equal(sin6.sin6_port, 0);
	assert_int_equal(addr_parse_listen("127.0.0.1:65535", &ss),
			 (int)sizeof(sin));
}

static void test_parse_listen_invalid(void **state)
{
	static const char *const bad[] = {
		"127.0.0.1",      /* port required */
		"127.0.0.1:",
		"[::1]",
		"[::1]:",
		":",
		"",
		"1080",
		"localhost:1080", /* IP literal required */
		"[]:1080",
		"::1:1080",
		"[::1]:65536",
		"127.0.0.1:+80",
		"127.0.0.1:-1",
		"127.1:80",
		"[fe80::1%lo]:80",
		"[127.0.0.1]:80",
	};
	struct sockaddr_storage ss;
	char huge[ADDR_STRLEN + 10];
	size_t i;

	(void)state;
	for (i = 0; i < ARRAY_LEN(bad); i++) {
		if (addr_parse_listen(bad[i], &ss) != -1)
			fail_msg("accepted \"%s\"", bad[i]);
	}
	memset(huge, '1', sizeof(huge) - 1);
	huge[sizeof(huge) - 1] = '\0';
	huge[0] = ':';
	assert_int_equal(addr_parse_listen(huge, &ss), -1);
	assert_int_equal(addr_parse_listen(NULL, &ss), -1);
	assert_int_equal(addr_parse_listen(":80", NULL), -1);
}

/* --- addr_classify --- */

static enum addr_class classify(const char *ip)
{
	struct sockaddr_in sin;
	struct sockaddr_in6 sin6;

	if (strchr(ip, ':') != NULL) {
		memset(&sin6, 0, sizeof(sin6));
		sin6.sin6_family = AF_INET6;
		assert_int_equal(inet_pton(AF_INET6, ip, &sin6.sin6_addr), 1);
		return addr_classify((struct sockaddr *)&sin6);
	}
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	assert_int_equal(inet_pton(AF_INET, ip, &sin.sin_addr), 1);
	return addr_classify((struct sockaddr *)&sin);
}

#define LB ADDR_CLASS_LOOPBACK
#define MC ADDR_CLASS_MULTICAST
#define LO ADDR_CLASS_LOCAL
#define GL ADDR_CLASS_GLOBAL
#define UN ADDR_CLASS_UNKNOWN

static const struct {
	const char *ip;
	enum addr_class cls;
} class_cases[] = {
	{ "0.0.0.0", UN },
	{ "0.0.0.1", UN },
	{ "0.255.255.255", UN },
	{ "1.0.0.0", GL },
	{ "8.8.8.8", GL },
	{ "9.255.255.255", GL },
	{ "10.0.0.0", LO },
	{ "10.255.255.255", LO },
	{ "11.0.0.0", GL },
	{ "100.63.255.255", GL },
	{ "100.64.0.0", LO },
	{ "100.127.255.255", LO },
	{ "100.128.0.0", GL },
	{ "126.255.255.255", GL },
	{ "127.0.0.0", LB },
	{ "127.0.0.1", LB },
	{ "127.255.255.255", LB },
	{ "128.0.0.0", GL },
	{ "169.253.255.255", GL },
	{ "169.254.0.0", LO },
	{ "169.254.255.255", LO },
	{ "169.255.0.0", GL },
	{ "172.15.255.255", GL },
	{ "172.16.0.0", LO },
	{ "172.31.255.255", LO },
	{ "172.32.0.0", GL },
	{ "192.167.255.255", GL },
	{ "192.168.0.0", LO },
	{ "192.168.255.255", LO },
	{ "192.169.0.0", GL },
	{ "223.255.255.255", GL },
	{ "224.0.0.0", MC },
	{ "239.255.255.255", MC },
	{ "240.0.0.0", UN },
	{ "255.255.255.254", UN },
	{ "255.255.255.255", UN },
	{ "::", UN },
	{ "::1", LB },
	{ "::2", GL },
	{ "1::", GL },
	{ "2001:4860:4860::8888", GL },
	{ "fbff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", GL },
	{ "fc00::", LO },
	{ "fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", LO },
	{ "fe00::", GL },
	{ "fe7f:ffff:ffff:ffff:ffff:ffff:ffff:ffff", GL },
	{ "fe80::", LO },
	{ "fe80::1", LO },
	{ "febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff", LO },
	{ "fec0::", LO },
	{ "feff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", LO },
	{ "ff00::", MC },
	{ "ff02::1", MC },
	{ "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", MC },
	{ "::ffff:127.0.0.1", LB },
	{ "::ffff:8.8.8.8", GL },
	{ "::ffff:10.1.2.3", LO },
	{ "::ffff:172.16.0.1", LO },
	{ "::ffff:100.64.0.1", LO },
	{ "::ffff:224.0.0.1", MC },
	{ "::ffff:0.0.0.0", UN },
	{ "::ffff:255.255.255.255", UN },
	{ "::fffe:7f00:1", GL },   /* not IPv4-mapped */
	{ "0:1::ffff:7f00:1", GL }, /* not IPv4-mapped */
};

static void test_classify(void **state)
{
	size_t i;
	enum addr_class got;

	(void)state;
	for (i = 0; i < ARRAY_LEN(class_cases); i++) {
		got = classify(class_cases[i].ip);
		if (got != class_cases[i].cls)
			fail_msg("%s: got %s, want %s", class_cases[i].ip,
				 addr_class_name(got),
				 addr_class_name(class_cases[i].cls));
	}
}

static void test_classify_other(void **state)
{
	struct sockaddr_un sun;

	(void)state;
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	assert_int_equal(addr_classify((struct sockaddr *)&sun), UN);
	assert_int_equal(addr_classify(NULL), UN);
}

static void test_class_name(void **state)
{
	(void)state;
	assert_string_equal(addr_class_name(ADDR_CLASS_LOOPBACK), "loopback");
	assert_string_equal(addr_class_name(ADDR_CLASS_MULTICAST), "multicast");
	assert_string_equal(addr_class_name(ADDR_CLASS_LOCAL), "local");
	assert_string_equal(addr_class_name(ADDR_CLASS_GLOBAL), "global");
	assert_string_equal(addr_class_name(ADDR_CLASS_UNKNOWN), "unknown");
	assert_string_equal(addr_class_name((enum addr_class)0), "unknown");
	assert_string_equal(addr_class_name((enum addr_class)99), "unknown");
}

/* A name with a ':' (taken as-is from a SOCKS client) is bracketed so the
 * "host:port" form stays unambiguous. */
static void test_format_name_with_colon(void **state)
{
	struct netaddr a;
	char buf[64];

	(void)state;
	memset(&a, 0, sizeof(a));
	a.type = ADDR_DOMAIN;
	strcpy(a.u.name, "::1");
	a.namelen = 3;
	a.port = 80;
	assert_int_equal(addr_format(&a, buf, sizeof(buf)), 8);
	assert_string_equal(buf, "[::1]:80");
	assert_int_equal(addr_format_host(&a, buf, sizeof(buf)), 3);
	assert_string_equal(buf, "::1");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_format_name_with_colon),
		cmocka_unit_test(test_split_valid),
		cmocka_unit_test(test_split_invalid),
		cmocka_unit_test(test_split_len_respected),
		cmocka_unit_test(test_split_buffers),
		cmocka_unit_test(test_parse_port),
		cmocka_unit_test(test_parse_ipv4),
		cmocka_unit_test(test_parse_ipv6),
		cmocka_unit_test(test_parse_domain),
		cmocka_unit_test(test_parse_name_length),
		cmocka_unit_test(test_name_valid),
		cmocka_unit_test(test_unmap),
		cmocka_unit_test(test_equal),
		cmocka_unit_test(test_parse_invalid),
		cmocka_unit_test(test_parse_default_port),
		cmocka_unit_test(test_parse_bounds),
		cmocka_unit_test(test_parse_failure_keeps_output),
		cmocka_unit_test(test_set_host),
		cmocka_unit_test(test_format),
		cmocka_unit_test(test_format_longest),
		cmocka_unit_test(test_format_small_buffers),
		cmocka_unit_test(test_format_invalid),
		cmocka_unit_test(test_format_sockaddr),
		cmocka_unit_test(test_to_from_sockaddr),
		cmocka_unit_test(test_parse_listen_valid),
		cmocka_unit_test(test_parse_listen_invalid),
		cmocka_unit_test(test_classify),
		cmocka_unit_test(test_classify_other),
		cmocka_unit_test(test_class_name),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
