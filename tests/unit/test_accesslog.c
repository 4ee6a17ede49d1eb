/* Unit tests of the access line's format (front/accesslog.c): key=value
 * fields, values quoted and escaped only when they must be. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "front/accesslog.h"

static struct sockaddr_in client(void)
{
	struct sockaddr_in in = { .sin_family = AF_INET };

	in.sin_port = htons(34414);
	inet_pton(AF_INET, "127.0.0.1", &in.sin_addr);
	return in;
}

static const char *fmt(const struct accesslog *a)
{
	static char buf[1024];

	assert_true(accesslog_format(a, buf, sizeof(buf)) >= 0);
	return buf;
}

static void test_socks_line(void **state)
{
	struct sockaddr_in in = client();
	struct accesslog a = {
		.client = (struct sockaddr *)&in, .proto = "socks5",
		.target = "example.com:80", .route = "direct", .reply = 0,
		.socks_version = 5, .up = 86, .down = 5000205, .dur = 0.0194,
	};

	(void)state;
	assert_string_equal(fmt(&a),
			    "client=127.0.0.1:34414 proto=socks5 "
			    "target=example.com:80 route=direct reply=00 up=86 "
			    "down=5000205 dur=0.019 outcome=ok");
	/* refused before any dial, SOCKS4's decimal code, a sentence */
	a.route = NULL;
	a.reply = 91;
	a.socks_version = 4;
	a.proto = "socks4a";
	a.block = "loopback";
	a.outcome = "connection blocked by policy";
	assert_string_equal(fmt(&a),
			    "client=127.0.0.1:34414 proto=socks4a "
			    "target=example.com:80 route=- block=loopback "
			    "reply=91 up=86 down=5000205 dur=0.019 "
			    "outcome=\"connection blocked by policy\"");
}

static void test_http_line(void **state)
{
	struct sockaddr_in in = client();
	struct accesslog a = {
		.client = (struct sockaddr *)&in, .proto = "http",
		.user = "alice", .method = "GET",
		.url = "http://example.com/a.txt", .target = "example.com:80",
		.route = "socks5://hop:1080->http://b:3128",
		.to = "10.0.0.5:80", .status = 200, .reply = -1, .up = 240,
		.down = 211, .dur = 0.002,
	};

	(void)state;
	assert_string_equal(fmt(&a),
			    "client=127.0.0.1:34414 proto=http user=alice "
			    "method=GET url=http://example.com/a.txt "
			    "target=example.com:80 "
			    "route=socks5://hop:1080->http://b:3128 "
			    "to=10.0.0.5:80 status=200 up=240 down=211 "
			    "dur=0.002 outcome=ok");
}

/* Nothing from the network can make a field look like two, or end the
 * line: quotes, backslashes, '%' and control bytes are %HH in quotes. */
static void test_values_escaped(void **state)
{
	struct sockaddr_in in = client();
	struct accesslog a = {
		.client = (struct sockaddr *)&in, .proto = "http",
		.reply = -1, .outcome = "bad \"x\" a\\b 5% \n\x1b end",
	};
	char user[64];

	(void)state;
	assert_non_null(strstr(fmt(&a), " outcome=\"bad %22x%22 a%5Cb 5%25 "
					"%0A%1B end\""));
	a.outcome = "";
	assert_non_null(strstr(fmt(&a), " outcome=\"\""));
	accesslog_user_text("ev il\x1b[31m\"%", user, sizeof(user));
	assert_string_equal(user, "ev%20il%1B[31m%22%25");
	a.user = user;
	assert_non_null(strstr(fmt(&a), " user=ev%20il%1B[31m%22%25 "));
}

static void test_cut_is_reported(void **state)
{
	struct sockaddr_in in = client();
	struct accesslog a = { .client = (struct sockaddr *)&in,
			       .proto = "socks5", .reply = -1 };
	char small[40];

	(void)state;
	assert_int_equal(accesslog_format(&a, small, sizeof(small)), -1);
	assert_true(strlen(small) < sizeof(small));
	assert_memory_equal(small, "client=127.0.0.1:34414 ", 23);
}

static void test_driver_fields(void **state)
{
	struct sockaddr_in in = client();
	const struct accesslog_field more[] = {
		{ "relay", "127.0.0.1:41377" }, { "dests", "3" },
		{ "note", NULL },               { "odd", "a b\"c" },
	};
	struct accesslog a = {
		.client = (struct sockaddr *)&in, .proto = "socks5-udp",
		.reply = 0, .socks_version = 5, .more = more, .nmore = 4,
		.up = 9600, .down = 8800, .dur = 4.21,
	};

	(void)state;
	/* after reply, in order; a NULL value left out, others escaped */
	assert_string_equal(fmt(&a),
			    "client=127.0.0.1:34414 proto=socks5-udp route=- "
			    "reply=00 relay=127.0.0.1:41377 dests=3 "
			    "odd=\"a b%22c\" up=9600 down=8800 dur=4.210 "
			    "outcome=ok");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_socks_line),
		cmocka_unit_test(test_http_line),
		cmocka_unit_test(test_driver_fields),
		cmocka_unit_test(test_values_escaped),
		cmocka_unit_test(test_cut_is_reported),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
