/* Unit tests for src/common/proxyuri.c */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "common/proxyuri.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

static int parse(struct proxy_hop *hop, const char *uri, const char **err)
{
	*err = NULL;
	return proxyuri_parse(hop, uri, strlen(uri), err);
}

/* Parse must fail with exactly this message. */
static void expect_error(const char *uri, const char *msg)
{
	struct proxy_hop hop;
	const char *err = NULL;

	if (parse(&hop, uri, &err) != -1)
		fail_msg("accepted \"%s\"", uri);
	if (err == NULL || strcmp(err, msg) != 0)
		fail_msg("\"%s\": error \"%s\", want \"%s\"", uri,
			 err != NULL ? err : "(null)", msg);
}

static void expect_host(const struct proxy_hop *hop, const char *want)
{
	char buf[ADDR_STRLEN];

	assert_true(addr_format(&hop->addr, buf, sizeof(buf)) > 0);
	assert_string_equal(buf, want);
}

/* --- schemes, hosts, ports --- */

static void test_schemes_and_default_ports(void **state)
{
	struct proxy_hop hop;
	const char *err;

	(void)state;
	assert_int_equal(parse(&hop, "socks5://127.0.0.1:1081", &err), 0);
	assert_int_equal(hop.scheme, PROXY_SOCKS5);
	assert_int_equal(hop.has_user, 0);
	assert_int_equal(hop.has_pass, 0);
	assert_int_equal(hop.addr.type, ADDR_IPV4);
	expect_host(&hop, "127.0.0.1:1081");

	assert_int_equal(parse(&hop, "socks5://proxy.example", &err), 0);
	assert_int_equal(hop.addr.type, ADDR_DOMAIN);
	expect_host(&hop, "proxy.example:1080");

	assert_int_equal(parse(&hop, "socks4a://proxy.example", &err), 0);
	assert_int_equal(hop.scheme, PROXY_SOCKS4A);
	expect_host(&hop, "proxy.example:1080");

	assert_int_equal(parse(&hop, "http://proxy.example", &err), 0);
	assert_int_equal(hop.scheme, PROXY_HTTP);
	expect_host(&hop, "proxy.example:80");

	assert_int_equal(parse(&hop, "http://proxy.example:3128/", &err), 0);
	expect_host(&hop, "proxy.example:3128");
	assert_int_equal(parse(&hop, "socks5://h/", &err), 0);
	expect_host(&hop, "h:1080");
}

#define UNKNOWN_SCHEME                                                       \
	"unknown proxy scheme (use socks4://, socks4a://, socks5://, "       \
	"socks5h:// or http://)"

/* The error lists the schemes there are (issue 15). */
static void test_unknown_schemes(void **state)
{
	static const char *const bad[] = {
		"socks4s://h:1080", "https://h", "SOCKS5://h", "Http://h",
		"socks5hh://h", "socks5:/h", "socks5:h", "socks5", "socks",
		"", "://h", " socks5://h", "ftp://h", "socks4a:/",
	};
	size_t i;

	(void)state;
	for (i = 0; i < ARRAY_LEN(bad); i++)
		expect_error(bad[i], UNKNOWN_SCHEME);
}

/* Issue 15: socks5h:// (curl's spelling) is socks5://, which always sends
 * names to the proxy; socks4:// is a hop of its own (sent IPv4 addresses),
 * named socks4 again when formatted. */
static void test_socks5h_and_socks4(void **state)
{
	struct proxy_hop hop;
	const char *err;
	char buf[128];

	(void)state;
	assert_int_equal(parse(&hop, "socks5h://u:p@proxy.example:1081", &err),
			 0);
	assert_int_equal(hop.scheme, PROXY_SOCKS5);
	assert_string_equal(hop.user, "u");
	assert_true(proxyuri_format(&hop, buf, sizeof(buf)) > 0);
	assert_string_equal(buf, "socks5://u@proxy.example:1081");
	assert_int_equal(parse(&hop, "socks5h://10.0.0.1", &err), 0);
	assert_int_equal(hop.addr.port, 1080);
	assert_int_equal(parse(&hop, "socks4://10.0.0.1", &err), 0);
	assert_int_equal(hop.scheme, PROXY_SOCKS4);
	assert_int_equal(hop.addr.port, 1080);
	assert_int_equal(parse(&hop, "socks4://id@gw.example:1090", &err), 0);
	assert_true(proxyuri_format(&hop, buf, sizeof(buf)) > 0);
	assert_string_equal(buf, "socks4://id@gw.example:1090");
	assert_string_equal(proxyuri_scheme_name(PROXY_SOCKS4), "socks4");
}

static void test_ipv6_hosts(void **state)
{
	struct proxy_hop hop;
	const char *err;

	(void)state;
	assert_int_equal(parse(&hop, "socks5://[::1]:1080", &err), 0);
	assert_int_equal(hop.addr.type, ADDR_IPV6);
	expect_host(&hop, "[::1]:1080");
	assert_int_equal(parse(&hop, "http://u:p@[2001:db8::1]", &err), 0);
	assert_int_equal(hop.addr.type, ADDR_IPV6);
	expect_host(&hop, "[2001:db8::1]:80");
	assert_string_equal(hop.user, "u");
	assert_int_equal(parse(&hop, "socks4a://[::1]/", &err), 0);
	expect_host(&hop, "[::1]:1080");

	expect_error("socks5://::1:1080", "invalid proxy host or port");
	expect_error("socks5://::1", "invalid proxy host or port");
	expect_error("socks5://[::1", "invalid proxy host or port");
	expect_error("socks5://::1]:1", "invalid proxy host or port");
	expect_error("socks5://[fe80::1%25eth0]:1080",
		     "invalid proxy host or port");
	expect_error("socks5://[1.2.3.4]:1080", "invalid proxy host or port");
}

static void test_ports(void **state)
{
	struct proxy_hop hop;
	const char *err;

	(void)state;
	assert_int_equal(parse(&hop, "socks5://h:65535", &err), 0);
	assert_int_equal(hop.addr.port, 65535);
	assert_int_equal(parse(&hop, "socks5://h:1", &err), 0);
	assert_int_equal(hop.addr.port, 1);
	expect_error("socks5://h:0", "invalid proxy port");
	expect_error("socks5://h:65536", "invalid proxy host or port");
	expect_error("socks5://h:", "invalid proxy host or port");
	expect_error("socks5://h:+1", "invalid proxy host or port");
	expect_error("socks5://h:-1", "invalid proxy host or port");
	expect_error("socks5://h:8o", "invalid proxy host or port");
	expect_error("socks5://:1080", "invalid proxy host or port");
	expect_error("socks5://", "invalid proxy host or port");
	expect_error("socks5:///", "invalid proxy host or port");
	expect_error("socks5://u@", "invalid proxy host or port");
	expect_error("socks5://bad host", "invalid proxy host or port");
	expect_error("socks5://127.1", "invalid proxy host or port");
}

static void test_paths(void **state)
{
	(void)state;
	expect_error("socks5://h//", "unexpected path in proxy URI");
	expect_error("socks5://h/x", "unexpected path in proxy URI");
	expect_error("socks5://h:1/x", "unexpected path in proxy URI");
	expect_error("http://h?x=1", "unexpected path in proxy URI");
	expect_error("http://h/?x=1", "unexpected path in proxy URI");
	expect_error("http://h#frag", "unexpected path in proxy URI");
	expect_error("http://u/x@h", "unexpected path in proxy URI");
}

/* --- credentials --- */

static void test_credentials(void **state)
{
	struct proxy_hop hop;
	const char *err;

	(void)state;
	assert_int_equal(parse(&hop, "socks5://user:pass@h:1080", &err), 0);
	assert_int_equal(hop.has_user, 1);
	assert_int_equal(hop.has_pass, 1);
	assert_string_equal(hop.user, "user");
	assert_string_equal(hop.pass, "pass");
	expect_host(&hop, "h:1080");

	assert_int_equal(parse(&hop, "http://user@h", &err), 0);
	assert_int_equal(hop.has_user, 1);
	assert_int_equal(hop.has_pass, 0);
	assert_string_equal(hop.user, "user");
	assert_string_equal(hop.pass, "");

	assert_int_equal(parse(&hop, "socks5://user:@h", &err), 0);
	assert_int_equal(hop.has_pass, 1);
	assert_string_equal(hop.pass, "");

	/* the password may hold ':'; the last '@' ends the userinfo */
	assert_int_equal(parse(&hop, "socks5://u:a:b@h", &err), 0);
	assert_string_equal(hop.user, "u");
	assert_string_equal(hop.pass, "a:b");
	assert_int_equal(parse(&hop, "socks5://us@er:p@ss@h:1", &err), 0);
	assert_string_equal(hop.user, "us@er");
	assert_string_equal(hop.pass, "p@ss");
	expect_host(&hop, "h:1");

	expect_error("socks5://@h", "empty user name");
	expect_error("socks5://:pass@h", "empty user name");
	expect_error("socks5://us er@h", "invalid character in credentials");
	expect_error("socks5://u:p\x01@h", "invalid character in credentials");
	expect_error("socks5://u:caf\xc3\xa9@h",
		     "invalid character in credentials");
}

static void test_socks4a_password_dropped(void **state)
{
	struct proxy_hop hop;
	const char *err;

	(void)state;
	assert_int_equal(parse(&hop, "socks4a://id:secret@h", &err), 0);
	assert_int_equal(hop.has_user, 1);
	assert_string_equal(hop.user, "id");
	assert_int_equal(hop.has_pass, 0);
	assert_string_equal(hop.pass, "");
	/* still validated */
	expect_error("socks4a://id:%zz@h", "malformed percent escape");
}

static void test_percent_decoding(void **state)
{
	struct proxy_hop hop;
	const char *err;

	(void)state;
	assert_int_equal(parse(&hop, "socks5://%41%62c:%2f%2F%3a%40%25@h", &err),
			 0);
	assert_string_equal(hop.user, "Abc");
	assert_string_equal(hop.pass, "//:@%");
	assert_int_equal(parse(&hop, "socks5://%3A:x@h", &err), 0);
	assert_string_equal(hop.user, ":"); /* escaped ':' stays in the user */
	assert_string_equal(hop.pass, "x");
	assert_int_equal(parse(&hop, "socks5://u:%C3%A9%ff@h", &err), 0);
	assert_string_equal(hop.pass, "\xc3\xa9\xff");
	assert_int_equal(parse(&hop, "socks5://%2C@h", &err), 0);
	assert_string_equal(hop.user, ",");

	expect_error("socks5://%4@h", "malformed percent escape");
	expect_error("socks5://u:%4@h", "malformed percent escape");
	expect_error("socks5://%@h", "malformed percent escape");
	expect_error("socks5://u:p%@h", "malformed percent escape");
	expect_error("socks5://%zz@h", "malformed percent escape");
	expect_error("socks5://%g0@h", "malformed percent escape");
	expect_error("socks5://%0g@h", "malformed percent escape");
	expect_error("socks5://%%41@h", "malformed percent escape");
	expect_error("socks5://%+1@h", "malformed percent escape");
	expect_error("socks5://%00@h", "NUL byte in credentials");
	expect_error("socks5://u:a%00b@h", "NUL byte in credentials");
}

/* "socks5://" + user + ":" + pass + "@h" */
static void make_uri(char *buf, size_t cap, const char *user, size_t ulen,
		     char uc, size_t plen)
{
	size_t n = 0, i;

	n += (size_t)snprintf(buf, cap, "socks5://");
	for (i = 0; i < ulen; i++)
		n += (size_t)snprintf(buf + n, cap - n, "%s", user);
	if (uc != '\0' || plen > 0) {
		buf[n++] = ':';
		memset(buf + n, 'p', plen);
		n += plen;
	}
	assert_true(n + 3 <= cap);
	memcpy(buf + n, "@h", 3);
}

static void test_credential_lengths(void **state)
{
	char uri[2048];
	struct proxy_hop hop;
	const char *err;

	(void)state;
	make_uri(uri, sizeof(uri), "u", 255, 0, 0);
	assert_int_equal(parse(&hop, uri, &err), 0);
	assert_int_equal(strlen(hop.user), 255);

	make_uri(uri, sizeof(uri), "u", 256, 0, 0);
	expect_error(uri, "credentials too long");

	make_uri(uri, sizeof(uri), "%41", 255, 0, 0);
	assert_int_equal(parse(&hop, uri, &err), 0);
	assert_int_equal(strlen(hop.user), 255);
	assert_int_equal(hop.user[254], 'A');

	make_uri(uri, sizeof(uri), "%41", 256, 0, 0);
	expect_error(uri, "credentials too long");

	make_uri(uri, sizeof(uri), "u", 1, ':', 255);
	assert_int_equal(parse(&hop, uri, &err), 0);
	assert_int_equal(strlen(hop.pass), 255);

	make_uri(uri, sizeof(uri), "u", 1, ':', 256);
	expect_error(uri, "credentials too long");
}

static void test_uri_length(void **state)
{
	char uri[2048];
	struct proxy_hop hop;
	const char *err;

	(void)state;
	/* 9 + 765 + 1 + 246 + 2 = 1023 */
	make_uri(uri, sizeof(uri), "%41", 255, ':', 246);
	assert_int_equal(strlen(uri), PROXYURI_MAX);
	assert_int_equal(parse(&hop, uri, &err), 0);
	assert_int_equal(strlen(hop.pass), 246);

	make_uri(uri, sizeof(uri), "%41", 255, ':', 247);
	assert_int_equal(strlen(uri), PROXYURI_MAX + 1);
	expect_error(uri, "proxy URI too long");
}

static void test_bounds(void **state)
{
	struct proxy_hop hop;
	const char *err = NULL;

	(void)state;
	/* len is respected: the trailing garbage is never looked at */
	assert_int_equal(proxyuri_parse(&hop, "socks5://h:1080,xyz", 15, &err),
			 0);
	assert_int_equal(hop.addr.port, 1080);
	/* embedded NUL */
	assert_int_equal(proxyuri_parse(&hop, "socks5://h\0x", 12, &err), -1);
	assert_non_null(err);
	assert_int_equal(proxyuri_parse(&hop, "socks5://u\0@h", 13, &err), -1);
	/* err may be NULL */
	assert_int_equal(proxyuri_parse(&hop, "bogus", 5, NULL), -1);
	assert_int_equal(proxyuri_parse(&hop, NULL, 0, &err), -1);
	assert_int_equal(proxyuri_parse(NULL, "socks5://h", 10, &err), -1);
}

static void test_failure_wipes_hop(void **state)
{
	struct proxy_hop hop;
	const char *err;

	(void)state;
	/* credentials parse, then the port fails */
	assert_int_equal(parse(&hop, "socks5://user:secret@h:99999", &err), -1);
	assert_int_equal(hop.has_user, 0);
	assert_int_equal(hop.has_pass, 0);
	assert_string_equal(hop.user, "");
	assert_string_equal(hop.pass, "");
	assert_int_equal(hop.scheme, 0);
}

/* --- chains --- */

static int chain(struct proxy_hop *hops, size_t cap, size_t *n,
		 const char *csv, const char **err)
{
	*err = NULL;
	*n = 99;
	return proxyuri_parse_chain(hops, cap, n, csv, strlen(csv), err);
}

static void test_chain_valid(void **state)
{
	struct proxy_hop hops[PROXYCHAIN_MAX];
	const char *err;
	size_t n;

	(void)state;
	assert_int_equal(chain(hops, 4, &n, "socks5://a:1", &err), 0);
	assert_int_equal(n, 1);
	expect_host(&hops[0], "a:1");

	assert_int_equal(chain(hops, 4, &n,
			       "socks5://u:p@a,http://[::1]:8080/,socks4a://c",
			       &err), 0);
	assert_int_equal(n, 3);
	assert_int_equal(hops[0].scheme, PROXY_SOCKS5);
	assert_string_equal(hops[0].user, "u");
	assert_string_equal(hops[0].pass, "p");
	expect_host(&hops[0], "a:1080");
	assert_int_equal(hops[1].scheme, PROXY_HTTP);
	expect_host(&hops[1], "[::1]:8080");
	assert_int_equal(hops[2].scheme, PROXY_SOCKS4A);
	expect_host(&hops[2], "c:1080");

	/* exactly cap hops */
	assert_int_equal(chain(hops, 2, &n, "http://a,http://b", &err), 0);
	assert_int_equal(n, 2);
}

static void test_chain_errors(void **state)
{
	struct proxy_hop hops[PROXYCHAIN_MAX + 2];
	const char *err;
	size_t n;

	(void)state;
	assert_int_equal(chain(hops, 4, &n, "", &err), -1);
	assert_string_equal(err, "empty proxy in chain");
	assert_int_equal(n, 0);
	assert_int_equal(chain(hops, 4, &n, ",socks5://a", &err), -1);
	assert_string_equal(err, "empty proxy in chain");
	assert_int_equal(chain(hops, 4, &n, "socks5://a,", &err), -1);
	assert_string_equal(err, "empty proxy in chain");
	assert_int_equal(n, 0);
	assert_int_equal(chain(hops, 4, &n, "socks5://a,,socks5://b", &err), -1);
	assert_string_equal(err, "empty proxy in chain");

	assert_int_equal(chain(hops, 2, &n, "http://a,http://b,http://c", &err),
			 -1);
	assert_string_equal(err, "too many proxies");
	assert_int_equal(n, 0);
	assert_int_equal(chain(hops, 0, &n, "http://a", &err), -1);
	assert_string_equal(err, "too many proxies");

	/* an element's own error comes through */
	assert_int_equal(chain(hops, 4, &n, "socks5://a,ftp://b", &err), -1);
	assert_string_equal(err, UNKNOWN_SCHEME);
	assert_int_equal(n, 0);
	assert_int_equal(chain(hops, 4, &n, "socks5://a, socks5://b", &err), -1);
	assert_string_equal(err, UNKNOWN_SCHEME);
	/* hops parsed before the error are wiped */
	assert_int_equal(chain(hops, 4, &n, "socks5://u:p@a,bad", &err), -1);
	assert_string_equal(hops[0].pass, "");
	assert_int_equal(hops[0].has_pass, 0);

	assert_int_equal(proxyuri_parse_chain(hops, 4, NULL, "http://a", 8,
					      &err), -1);
	assert_int_equal(proxyuri_parse_chain(NULL, 4, &n, "http://a", 8,
					      &err), -1);
	assert_int_equal(proxyuri_parse_chain(hops, 4, &n, NULL, 0, &err), -1);
}

static void test_chain_max(void **state)
{
	struct proxy_hop hops[PROXYCHAIN_MAX + 2];
	char csv[512];
	const char *err;
	size_t n, i, len = 0;

	(void)state;
	for (i = 0; i < PROXYCHAIN_MAX; i++)
		len += (size_t)snprintf(csv + len, sizeof(csv) - len,
					"%shttp://h%zu", i ? "," : "", i);
	assert_int_equal(chain(hops, ARRAY_LEN(hops), &n, csv, &err), 0);
	assert_int_equal(n, PROXYCHAIN_MAX);
	expect_host(&hops[PROXYCHAIN_MAX - 1], "h15:80");

	/* one more than PROXYCHAIN_MAX fails even with a larger cap */
	snprintf(csv + len, sizeof(csv) - len, ",http://h16");
	assert_int_equal(chain(hops, ARRAY_LEN(hops), &n, csv, &err), -1);
	assert_string_equal(err, "too many proxies");
}

/* --- formatting --- */

static void test_format(void **state)
{
	struct proxy_hop hop;
	const char *err;
	char buf[512];

	(void)state;
	assert_int_equal(parse(&hop, "socks5://127.0.0.1:1080", &err), 0);
	assert_int_equal(proxyuri_format(&hop, buf, sizeof(buf)), 23);
	assert_string_equal(buf, "socks5://127.0.0.1:1080");

	assert_int_equal(parse(&hop, "socks5://alice:secret@h", &err), 0);
	assert_int_equal(proxyuri_format(&hop, buf, sizeof(buf)), 21);
	assert_string_equal(buf, "socks5://alice@h:1080");
	assert_null(strstr(buf, "secret"));

	assert_int_equal(parse(&hop, "http://[::1]:8080/", &err), 0);
	assert_int_equal(proxyuri_format(&hop, buf, sizeof(buf)), 17);
	assert_string_equal(buf, "http://[::1]:8080");

	assert_int_equal(parse(&hop, "socks4a://id:pw@h", &err), 0);
	assert_int_equal(proxyuri_format(&hop, buf, sizeof(buf)), 19);
	assert_string_equal(buf, "socks4a://id@h:1080");
}

static void test_format_escapes_user(void **state)
{
	struct proxy_hop hop, back;
	const char *err;
	char buf[512];

	(void)state;
	assert_int_equal(parse(&hop, "socks5://a%40b%3Ac%2C%25%0A%FFd_~:x@h",
			       &err), 0);
	assert_int_equal(proxyuri_format(&hop, buf, sizeof(buf)), 40);
	assert_string_equal(buf, "socks5://a%40b%3Ac%2C%25%0A%FFd_~@h:1080");
	/* and it parses back to the same user */
	assert_int_equal(parse(&back, buf, &err), 0);
	assert_string_equal(back.user, hop.user);
	assert_int_equal(back.has_pass, 0);
}

static void test_format_small_buffers(void **state)
{
	static const char want[] = "http://bob@[2001:db8::1]:3128";
	struct proxy_hop hop;
	const char *err;
	char buf[64];
	size_t n = sizeof(want) - 1;

	(void)state;
	assert_int_equal(parse(&hop, "http://bob:pw@[2001:db8::1]:3128", &err),
			 0);
	memset(buf, '#', sizeof(buf));
	assert_int_equal(proxyuri_format(&hop, buf, n + 1), (int)n);
	assert_string_equal(buf, want);
	assert_int_equal(buf[n + 1], '#');

	memset(buf, '#', sizeof(buf));
	assert_int_equal(proxyuri_format(&hop, buf, n), -1);
	assert_int_equal(buf[0], '\0');
	assert_int_equal(buf[n], '#');

	assert_int_equal(proxyuri_format(&hop, buf, 0), -1);
	assert_int_equal(proxyuri_format(&hop, NULL, 0), -1);
}

/* The chain, joined; never a password; what does not fit is left out,
 * whole hops at a time. */
static void test_format_chain(void **state)
{
	static const char both[] = "socks5://al@10.0.0.1:1080->http://b:3128";
	struct proxy_hop hops[2];
	const char *err;
	size_t n;
	char buf[128];

	(void)state;
	assert_int_equal(proxyuri_parse_chain(hops, 2, &n,
					      "socks5://al:pw@10.0.0.1,"
					      "http://b:3128",
					      strlen("socks5://al:pw@10.0.0.1,"
						     "http://b:3128"),
					      &err),
			 0);
	assert_int_equal(n, 2);
	assert_int_equal(proxyuri_format_chain(hops, 2, "->", buf, sizeof(buf)),
			 (int)strlen(both));
	assert_string_equal(buf, both);
	assert_null(strstr(buf, "pw"));
	assert_int_equal(proxyuri_format_chain(hops, 2, ",", buf, sizeof(buf)),
			 (int)strlen(both) - 1);
	assert_string_equal(buf, "socks5://al@10.0.0.1:1080,http://b:3128");
	assert_int_equal(proxyuri_format_chain(hops, 0, "->", buf, sizeof(buf)),
			 0);
	assert_string_equal(buf, "");
	/* room for the first hop and the separator, not the second */
	assert_int_equal(proxyuri_format_chain(hops, 2, "->", buf, 30), -1);
	assert_string_equal(buf, "socks5://al@10.0.0.1:1080");
	/* not even the separator */
	assert_int_equal(proxyuri_format_chain(hops, 2, "->", buf, 27), -1);
	assert_string_equal(buf, "socks5://al@10.0.0.1:1080");
	assert_int_equal(proxyuri_format_chain(hops, 2, "->", buf, 5), -1);
	assert_string_equal(buf, "");
	assert_int_equal(proxyuri_format_chain(hops, 2, "->", buf, 0), -1);
}

static void test_format_invalid(void **state)
{
	struct proxy_hop hop;
	const char *err;
	char buf[64];

	(void)state;
	assert_int_equal(parse(&hop, "socks5://h", &err), 0);
	hop.scheme = 0;
	assert_int_equal(proxyuri_format(&hop, buf, sizeof(buf)), -1);
	hop.scheme = 9;
	assert_int_equal(proxyuri_format(&hop, buf, sizeof(buf)), -1);
	hop.scheme = PROXY_SOCKS5;
	hop.addr.type = 0;
	assert_int_equal(proxyuri_format(&hop, buf, sizeof(buf)), -1);
	assert_int_equal(proxyuri_format(NULL, buf, sizeof(buf)), -1);
}

static void test_scheme_name(void **state)
{
	(void)state;
	assert_string_equal(proxyuri_scheme_name(PROXY_SOCKS4A), "socks4a");
	assert_string_equal(proxyuri_scheme_name(PROXY_SOCKS5), "socks5");
	assert_string_equal(proxyuri_scheme_name(PROXY_HTTP), "http");
	assert_string_equal(proxyuri_scheme_name((enum proxy_scheme)0),
			    "unknown");
	assert_string_equal(proxyuri_scheme_name((enum proxy_scheme)7),
			    "unknown");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_schemes_and_default_ports),
		cmocka_unit_test(test_unknown_schemes),
		cmocka_unit_test(test_socks5h_and_socks4),
		cmocka_unit_test(test_ipv6_hosts),
		cmocka_unit_test(test_ports),
		cmocka_unit_test(test_paths),
		cmocka_unit_test(test_credentials),
		cmocka_unit_test(test_socks4a_password_dropped),
		cmocka_unit_test(test_percent_decoding),
		cmocka_unit_test(test_credential_lengths),
		cmocka_unit_test(test_uri_length),
		cmocka_unit_test(test_bounds),
		cmocka_unit_test(test_failure_wipes_hop),
		cmocka_unit_test(test_chain_valid),
		cmocka_unit_test(test_chain_errors),
		cmocka_unit_test(test_chain_max),
		cmocka_unit_test(test_format),
		cmocka_unit_test(test_format_escapes_user),
		cmocka_unit_test(test_format_small_buffers),
		cmocka_unit_test(test_format_chain),
		cmocka_unit_test(test_format_invalid),
		cmocka_unit_test(test_scheme_name),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
