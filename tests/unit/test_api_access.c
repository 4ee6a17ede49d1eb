/* Unit tests of the REST API's access policy (api_access.c): the client
 * allowlist, bearer tokens and their levels, the Host and Origin rules. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/un.h>

#include "common/config.h"
#include "common/http1.h"
#include "ruleset/api_access.h"

#define ADMIN "adm1n-T0ken-abcdefghijklmnop"
#define RO "read0nly-T0ken-qrstuvwxyz0123"

static void setup_api(const char *restapi, const char *allow)
{
	static struct config c;

	memset(&c, 0, sizeof(c));
	snprintf(c.restapi, sizeof(c.restapi), "%s", restapi);
	snprintf(c.api_allow, sizeof(c.api_allow), "%s", allow);
	assert_int_equal(api_access_setup(&c), 0);
	api_access_set_tokens("", "");
}

static struct sockaddr_storage v4(const char *a)
{
	struct sockaddr_storage ss = { 0 };
	struct sockaddr_in *in = (struct sockaddr_in *)&ss;

	in->sin_family = AF_INET;
	assert_int_equal(inet_pton(AF_INET, a, &in->sin_addr), 1);
	return ss;
}

static struct sockaddr_storage v6(const char *a)
{
	struct sockaddr_storage ss = { 0 };
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;

	in6->sin6_family = AF_INET6;
	assert_int_equal(inet_pton(AF_INET6, a, &in6->sin6_addr), 1);
	return ss;
}

/* The status api_access_check gives a request of these header lines
 * (each ending in CRLF). */
static int check_as(const char *method, const char *path, const char *fields,
		    bool unix_socket, const char *host_here, int *level)
{
	static char buf[2048];
	struct http1_head h;
	struct http1_parser p;
	struct api_access_peer who = { unix_socket, host_here };
	int n = snprintf(buf, sizeof(buf), "%s %s HTTP/1.1\r\n%s\r\n", method,
			 path, fields);

	http1_parser_init(&p, HTTP1_REQUEST);
	assert_int_equal(http1_parse(&p, buf, (size_t)n, &h), n);
	*level = -1;
	return api_access_check(buf, &h, &who, method, path, level);
}

static int check(const char *method, const char *path, const char *fields,
		 int *level)
{
	return check_as(method, path, fields, false, "", level);
}

static void test_allowlist(void **state)
{
	struct sockaddr_storage ss;
	struct sockaddr_un un = { .sun_family = AF_UNIX };

	(void)state;
	setup_api("127.0.0.1:9080", "");
	ss = v4("203.0.113.9");
	assert_true(api_access_peer_ok(&ss)); /* no list: everyone */

	setup_api("127.0.0.1:9080", "10.1.0.0/16,2001:db8::/32,192.0.2.7");
	ss = v4("10.1.200.3");
	assert_true(api_access_peer_ok(&ss));
	ss = v4("10.2.0.1");
	assert_false(api_access_peer_ok(&ss));
	ss = v4("192.0.2.7");
	assert_true(api_access_peer_ok(&ss));
	ss = v4("192.0.2.8");
	assert_false(api_access_peer_ok(&ss));
	ss = v6("2001:db8:ffff::1");
	assert_true(api_access_peer_ok(&ss));
	ss = v6("2001:db9::1");
	assert_false(api_access_peer_ok(&ss));
	/* an IPv4 client on a dual-stack socket is IPv4 */
	ss = v6("::ffff:10.1.0.1");
	assert_true(api_access_peer_ok(&ss));
	ss = v6("::ffff:10.3.0.1");
	assert_false(api_access_peer_ok(&ss));
	/* a unix-socket API is guarded by its mode and owner */
	memcpy(&ss, &un, sizeof(un));
	assert_true(api_access_peer_ok(&ss));
}

static void test_allowlist_odd_bits(void **state)
{
	struct sockaddr_storage ss;

	(void)state;
	setup_api("127.0.0.1:9080", "198.51.100.128/25");
	ss = v4("198.51.100.200");
	assert_true(api_access_peer_ok(&ss));
	ss = v4("198.51.100.127");
	assert_false(api_access_peer_ok(&ss));
}

static void test_bad_allowlist(void **state)
{
	static struct config c;

	(void)state;
	memset(&c, 0, sizeof(c));
	snprintf(c.restapi, sizeof(c.restapi), "127.0.0.1:9080");
	snprintf(c.api_allow, sizeof(c.api_allow), "10.0.0.0/33");
	assert_int_equal(api_access_setup(&c), -1);
	snprintf(c.api_allow, sizeof(c.api_allow), "10.0.0.0/8,,");
	assert_int_equal(api_access_setup(&c), -1);
	snprintf(c.api_allow, sizeof(c.api_allow), "example.com");
	assert_int_equal(api_access_setup(&c), -1);
}

/* Without tokens everyone is an admin; with them the token decides. */
static void test_tokens(void **state)
{
	int level;

	(void)state;
	setup_api("127.0.0.1:9080", "");
	assert_int_equal(check("POST", "/ruleset/update", "", &level), 0);
	assert_int_equal(level, API_ADMIN);

	api_access_set_tokens(ADMIN, RO);
	assert_int_equal(check("GET", "/stats", "", &level), 401);
	assert_int_equal(check("GET", "/stats",
			       "Authorization: Bearer " RO "\r\n", &level),
			 0);
	assert_int_equal(level, API_READ);
	assert_int_equal(check("POST", "/ruleset/gc",
			       "Authorization: Bearer " ADMIN "\r\n", &level),
			 0);
	assert_int_equal(level, API_ADMIN);
	/* the scheme is case-insensitive, spaces before the token are */
	assert_int_equal(check("GET", "/metrics",
			       "Authorization: bearer    " RO "\r\n", &level),
			 0);
	/* a prefix, an extension or another scheme is not the token */
	assert_int_equal(check("GET", "/stats",
			       "Authorization: Bearer read0nly\r\n", &level),
			 401);
	assert_int_equal(check("GET", "/stats",
			       "Authorization: Bearer " RO "x\r\n", &level),
			 401);
	assert_int_equal(check("GET", "/stats",
			       "Authorization: Basic " RO "\r\n", &level),
			 401);
	assert_int_equal(check("GET", "/stats", "Authorization: Bearer\r\n",
			       &level),
			 401);
}

/* Read-only is GET of /healthy, /stats, /metrics; all else is admin. */
static void test_levels(void **state)
{
	static const char ro[] = "Authorization: Bearer " RO "\r\n";
	int level;

	(void)state;
	setup_api("127.0.0.1:9080", "");
	api_access_set_tokens(ADMIN, RO);
	assert_int_equal(check("GET", "/healthy", ro, &level), 0);
	assert_int_equal(check("POST", "/stats", ro, &level), 403);
	assert_int_equal(check("POST", "/ruleset/update", ro, &level), 403);
	assert_int_equal(check("POST", "/ruleset/rpcall", ro, &level), 403);
	assert_int_equal(check("GET", "/ruleset/gc", ro, &level), 403);
	/* only an admin token: a read is an admin's too */
	api_access_set_tokens(ADMIN, "");
	assert_int_equal(check("GET", "/stats", ro, &level), 401);
	assert_int_equal(check("GET", "/stats",
			       "Authorization: Bearer " ADMIN "\r\n", &level),
			 0);
	assert_int_equal(level, API_ADMIN);
}

/* Browser-borne requests: an Origin, or a Host naming something else,
 * are refused before the credentials are looked at. */
static void test_host_and_origin(void **state)
{
	int level;

	(void)state;
	setup_api("127.0.0.1:9080", "");
	assert_int_equal(check("GET", "/stats", "", &level), 0);
	assert_int_equal(check("GET", "/stats", "Host: 127.0.0.1:9080\r\n",
			       &level),
			 0);
	assert_int_equal(check("GET", "/stats", "Host: LOCALHOST:9080\r\n",
			       &level),
			 0);
	assert_int_equal(check("GET", "/stats",
			       "Host: api.neosocksd.internal\r\n", &level),
			 0);
	assert_int_equal(check("GET", "/stats",
			       "Host: api.neosocksd.internal:80\r\n", &level),
			 0);
	assert_int_equal(check("GET", "/stats", "Host: evil.example\r\n",
			       &level),
			 403);
	assert_int_equal(check("GET", "/stats", "Host: localhost:9081\r\n",
			       &level),
			 403);
	assert_int_equal(check("GET", "/stats",
			       "Origin: http://127.0.0.1:9080\r\n", &level),
			 403);
	/* the address the client connected to (a wildcard --api) */
	assert_int_equal(check_as("GET", "/stats", "Host: 10.0.0.5:9080\r\n",
				  false, "10.0.0.5:9080", &level),
			 0);
	/* a unix socket has no name a page could rebind */
	assert_int_equal(check_as("GET", "/stats", "Host: evil.example\r\n",
				  true, "", &level),
			 0);
	/* refused for Origin even with the right token */
	api_access_set_tokens(ADMIN, "");
	assert_int_equal(check("POST", "/ruleset/gc",
			       "Authorization: Bearer " ADMIN "\r\n"
			       "Origin: null\r\n",
			       &level),
			 403);
}

/* A unix-socket --api: Host is not checked, localhost:port is none. */
static void test_unix_api(void **state)
{
	int level;

	(void)state;
	setup_api("/run/neosocksd/api.sock", "");
	assert_int_equal(check("GET", "/stats", "Host: localhost\r\n", &level),
			 403);
	assert_int_equal(check_as("GET", "/stats", "Host: localhost\r\n", true,
				  "", &level),
			 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_allowlist),
		cmocka_unit_test(test_allowlist_odd_bits),
		cmocka_unit_test(test_bad_allowlist),
		cmocka_unit_test(test_tokens),
		cmocka_unit_test(test_levels),
		cmocka_unit_test(test_host_and_origin),
		cmocka_unit_test(test_unix_api),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
