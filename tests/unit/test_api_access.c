/* Unit tests of the REST API's access policy (api_access.c): the client
 * allowlist, the connection slots, bearer tokens and their levels, the
 * Host and Origin rules. */
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

static void setup_api_hosts(const char *restapi, const char *allow,
			    const char *hosts)
{
	static struct config c;

	memset(&c, 0, sizeof(c));
	snprintf(c.restapi, sizeof(c.restapi), "%s", restapi);
	snprintf(c.api_allow, sizeof(c.api_allow), "%s", allow);
	snprintf(c.api_host, sizeof(c.api_host), "%s", hosts);
	assert_int_equal(api_access_setup(&c), 0);
	api_access_set_tokens("", "");
}

static void setup_api(const char *restapi, const char *allow)
{
	setup_api_hosts(restapi, allow, "");
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

static const char *last_why; /* the sentence of the last check */

/* The status api_access_check gives a request of these header lines
 * (each ending in CRLF). */
static int check_as(const char *method, const char *path, const char *fields,
		    bool unix_socket, const char *host_here, int *level)
{
	static char buf[2048];
	struct http1_head h;
	struct http1_parser p;
	struct api_access_peer who = { unix_socket, host_here, false, false };
	int n = snprintf(buf, sizeof(buf), "%s %s HTTP/1.1\r\n%s\r\n", method,
			 path, fields);
	int status;

	http1_parser_init(&p, HTTP1_REQUEST);
	assert_int_equal(http1_parse(&p, buf, (size_t)n, &h), n);
	*level = -1;
	last_why = NULL;
	status = api_access_check(buf, &h, &who, method, path, level,
				  &last_why);
	/* a 403 always says why, nothing else does */
	assert_true((status == 403) == (last_why != NULL));
	return status;
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

/* Without a token, a browser-borne request is refused: an Origin, or a
 * Host that is not a name of this API (DNS rebinding). */
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
	assert_non_null(strstr(last_why, "--api-host"));
	assert_int_equal(check("GET", "/stats", "Host: 127.0.0.2:9080\r\n",
			       &level),
			 403);
	/* a name that only starts like a loopback one */
	assert_int_equal(check("GET", "/stats",
			       "Host: localhost.evil.example:9080\r\n", &level),
			 403);
	assert_int_equal(check("GET", "/stats", "Host: [::1]x:9080\r\n",
			       &level),
			 403);
	assert_int_equal(check("GET", "/stats",
			       "Origin: http://127.0.0.1:9080\r\n", &level),
			 403);
	assert_non_null(strstr(last_why, "Origin"));
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

/* Issue 15: an SSH tunnel (ssh -L 19080:127.0.0.1:9080, then
 * http://localhost:19080/) sends the tunnel's port: loopback names are
 * accepted with any port. */
static void test_loopback_names_any_port(void **state)
{
	int level;

	(void)state;
	setup_api("127.0.0.1:9080", "");
	assert_int_equal(check("GET", "/stats", "Host: localhost:19080\r\n",
			       &level),
			 0);
	assert_int_equal(check("GET", "/stats", "Host: 127.0.0.1:1\r\n",
			       &level),
			 0);
	assert_int_equal(check("GET", "/stats", "Host: [::1]:19080\r\n",
			       &level),
			 0);
	assert_int_equal(check("GET", "/stats", "Host: localhost\r\n",
			       &level),
			 0);
	assert_int_equal(check("GET", "/stats", "Host: localhost.:80\r\n",
			       &level),
			 0);
}

/* Issue 15: --api-host NAME,... names the API answers to without a
 * token, with any port; other names still get 403. */
static void test_api_host_names(void **state)
{
	int level;

	(void)state;
	setup_api_hosts("0.0.0.0:9080", "10.0.0.0/8",
			"proxy1.corp,Proxy1.example.,[2001:db8::5],192.0.2.9");
	assert_int_equal(check("GET", "/stats", "Host: proxy1.corp:9080\r\n",
			       &level),
			 0);
	assert_int_equal(check("GET", "/stats", "Host: PROXY1.CORP\r\n",
			       &level),
			 0);
	assert_int_equal(check("GET", "/stats",
			       "Host: proxy1.example:9080\r\n", &level),
			 0);
	assert_int_equal(check("GET", "/stats",
			       "Host: [2001:db8::5]:9080\r\n", &level),
			 0);
	assert_int_equal(check("GET", "/stats", "Host: 192.0.2.9:9080\r\n",
			       &level),
			 0);
	assert_int_equal(check("GET", "/stats", "Host: proxy2.corp:9080\r\n",
			       &level),
			 403);
	assert_int_equal(check("GET", "/stats", "Host: corp:9080\r\n",
			       &level),
			 403);
}

/* Issue 15: with a token Host does not matter (an admin reaches the API
 * by any name), and a client without credentials gets 401 before any
 * Host decision could tell which names are known. */
static void test_token_host_any_and_401_first(void **state)
{
	static const char adm[] = "Authorization: Bearer " ADMIN "\r\n";
	int level;

	(void)state;
	setup_api("0.0.0.0:9080", "");
	api_access_set_tokens(ADMIN, RO);
	assert_int_equal(check("GET", "/stats",
			       "Host: proxy1.corp:9080\r\n"
			       "Authorization: Bearer " RO "\r\n",
			       &level),
			 0);
	assert_int_equal(check("POST", "/ruleset/update",
			       "Host: anything.example\r\n"
			       "Authorization: Bearer " ADMIN "\r\n",
			       &level),
			 0);
	assert_int_equal(level, API_ADMIN);
	assert_int_equal(check("GET", "/stats", "Host: evil.example\r\n",
			       &level),
			 401);
	assert_int_equal(check("GET", "/stats", "Host: localhost\r\n", &level),
			 401);
	assert_int_equal(check("GET", "/stats",
			       "Host: evil.example\r\nOrigin: null\r\n",
			       &level),
			 401);
	/* Origin still refuses, after the credentials */
	assert_int_equal(check("GET", "/metrics", "Origin: null\r\n"
			       "Authorization: Bearer " ADMIN "\r\n", &level),
			 403);
	assert_int_equal(check("GET", "/metrics", adm, &level), 0);
}

static void test_parse_hosts(void **state)
{
	char out[4][API_HOST_LEN + 1];

	(void)state;
	assert_int_equal(api_access_parse_hosts("", out, 4), 0);
	assert_int_equal(api_access_parse_hosts("a.b,2001:db8::1,[::2],1.2.3.4",
						out, 4),
			 4);
	assert_string_equal(out[0], "a.b");
	assert_string_equal(out[1], "[2001:db8::1]");
	assert_string_equal(out[2], "[::2]");
	assert_string_equal(out[3], "1.2.3.4");
	assert_int_equal(api_access_parse_hosts("a,b,c,d,e", out, 4), -1);
	assert_int_equal(api_access_parse_hosts("a:80", out, 4), -1);
	assert_int_equal(api_access_parse_hosts("a,,b", out, 4), -1);
	assert_int_equal(api_access_parse_hosts("[a.b]", out, 4), -1);
	assert_int_equal(api_access_parse_hosts("bad name", out, 4), -1);
}

/* A unix-socket --api: Host is not checked there. */
static void test_unix_api(void **state)
{
	int level;

	(void)state;
	setup_api("/run/neosocksd/api.sock", "");
	assert_int_equal(check("GET", "/stats", "Host: evil.example\r\n",
			       &level),
			 403);
	assert_int_equal(check_as("GET", "/stats", "Host: evil.example\r\n",
				  true, "", &level),
			 0);
}

static void setup_slots(const char *allow, int max, int reserved,
			int per_addr)
{
	static struct config c;

	memset(&c, 0, sizeof(c));
	snprintf(c.restapi, sizeof(c.restapi), "127.0.0.1:9080");
	snprintf(c.api_allow, sizeof(c.api_allow), "%s", allow);
	c.api_max_conns = max;
	c.api_reserved = reserved;
	c.api_max_conns_per_addr = per_addr;
	assert_int_equal(api_access_setup(&c), 0);
}

/* A read-only client certificate caps what any token gives; without
 * tokens it alone decides. */
static void test_cert_readonly(void **state)
{
	static char buf[2048];
	struct http1_head h;
	struct http1_parser p;
	struct api_access_peer who = { false, "", true, false };
	const char *why;
	int level, n;

	(void)state;
	setup_api("127.0.0.1:9080", "");
	api_access_set_tokens(ADMIN, RO);
	n = snprintf(buf, sizeof(buf),
		     "POST /ruleset/gc HTTP/1.1\r\nAuthorization: Bearer "
		     "%s\r\n\r\n",
		     ADMIN);
	http1_parser_init(&p, HTTP1_REQUEST);
	assert_int_equal(http1_parse(&p, buf, (size_t)n, &h), n);
	assert_int_equal(api_access_check(buf, &h, &who, "POST", "/ruleset/gc",
					  &level, &why),
			 403);
	assert_non_null(strstr(why, "client certificate is read-only"));
	assert_int_equal(api_access_check(buf, &h, &who, "GET", "/stats",
					  &level, &why),
			 0);
	assert_int_equal(level, API_READ);
	who.cert_readonly = false;
	assert_int_equal(api_access_check(buf, &h, &who, "POST", "/ruleset/gc",
					  &level, &why),
			 0);
	assert_int_equal(level, API_ADMIN);
	/* no tokens: the certificate alone */
	api_access_set_tokens("", "");
	n = snprintf(buf, sizeof(buf), "POST /ruleset/gc HTTP/1.1\r\n\r\n");
	http1_parser_init(&p, HTTP1_REQUEST);
	assert_int_equal(http1_parse(&p, buf, (size_t)n, &h), n);
	who.cert_readonly = true;
	assert_int_equal(api_access_check(buf, &h, &who, "POST", "/ruleset/gc",
					  &level, &why),
			 403);
	/* a token is still needed when one is configured */
	api_access_set_tokens(ADMIN, "");
	assert_int_equal(api_access_check(buf, &h, &who, "GET", "/stats",
					  &level, &why),
			 401);
}

/* Over TLS a Host naming something else is no sign of DNS rebinding: a
 * browser would not have accepted our certificate for that name. Origin
 * still is (a cross-site request). */
static void test_tls_host(void **state)
{
	static char buf[2048];
	struct http1_head h;
	struct http1_parser p;
	struct api_access_peer who = { false, "192.0.2.1:9080", false, true };
	const char *why;
	int level, n;

	(void)state;
	setup_api("192.0.2.1:9080", "");
	n = snprintf(buf, sizeof(buf),
		     "GET /stats HTTP/1.1\r\nHost: proxy1.corp:9080\r\n\r\n");
	http1_parser_init(&p, HTTP1_REQUEST);
	assert_int_equal(http1_parse(&p, buf, (size_t)n, &h), n);
	assert_int_equal(api_access_check(buf, &h, &who, "GET", "/stats",
					  &level, &why),
			 0);
	who.tls = false;
	assert_int_equal(api_access_check(buf, &h, &who, "GET", "/stats",
					  &level, &why),
			 403);
	who.tls = true;
	n = snprintf(buf, sizeof(buf),
		     "GET /stats HTTP/1.1\r\nOrigin: https://evil.test\r\n"
		     "\r\n");
	http1_parser_init(&p, HTTP1_REQUEST);
	assert_int_equal(http1_parse(&p, buf, (size_t)n, &h), n);
	assert_int_equal(api_access_check(buf, &h, &who, "GET", "/stats",
					  &level, &why),
			 403);
}

/* What the per-address cap counts as one client: an IPv4 address (also
 * when IPv4-mapped), an IPv6 /64; a unix-socket client is not counted. */
static void test_slot_keys(void **state)
{
	struct sockaddr_storage a, b;
	struct sockaddr_un un = { .sun_family = AF_UNIX };
	struct api_access_key ka, kb;

	(void)state;
	a = v4("192.0.2.1");
	b = v6("::ffff:192.0.2.1");
	api_access_key_of(&a, &ka);
	api_access_key_of(&b, &kb);
	assert_int_equal(ka.len, 4);
	assert_true(api_access_key_eq(&ka, &kb));
	b = v4("192.0.2.2");
	api_access_key_of(&b, &kb);
	assert_false(api_access_key_eq(&ka, &kb));
	a = v6("2001:db8:1:2::1");
	b = v6("2001:db8:1:2:ffff::9");
	api_access_key_of(&a, &ka);
	api_access_key_of(&b, &kb);
	assert_int_equal(ka.len, 8);
	assert_true(api_access_key_eq(&ka, &kb)); /* the same /64 */
	b = v6("2001:db8:1:3::1");
	api_access_key_of(&b, &kb);
	assert_false(api_access_key_eq(&ka, &kb));
	memcpy(&a, &un, sizeof(un));
	api_access_key_of(&a, &ka);
	assert_int_equal(ka.len, 0);
}

/* Who may take a reserved slot: without --api-allow, loopback and unix
 * clients; with it, those it admits (and no one else). */
static void test_slot_trusted(void **state)
{
	struct sockaddr_storage ss;
	struct sockaddr_un un = { .sun_family = AF_UNIX };

	(void)state;
	setup_slots("", 64, -1, 8);
	ss = v4("127.0.0.5");
	assert_true(api_access_trusted(&ss));
	ss = v6("::1");
	assert_true(api_access_trusted(&ss));
	ss = v6("::ffff:127.0.0.1");
	assert_true(api_access_trusted(&ss));
	ss = v4("203.0.113.9");
	assert_false(api_access_trusted(&ss));
	ss = v6("2001:db8::1");
	assert_false(api_access_trusted(&ss));
	memcpy(&ss, &un, sizeof(un));
	assert_true(api_access_trusted(&ss));

	setup_slots("10.0.0.0/8", 64, -1, 8);
	ss = v4("10.9.9.9");
	assert_true(api_access_trusted(&ss));
	ss = v4("127.0.0.1");
	assert_false(api_access_trusted(&ss)); /* not on the list */
}

/* The reserved slots are the last ones; the per-address cap counts the
 * client's own connections, once slots run short. */
static void test_slot_room(void **state)
{
	struct sockaddr_storage ss = v4("203.0.113.9");
	struct api_access_key k, none = { 0 };

	(void)state;
	api_access_key_of(&ss, &k);
	setup_slots("", 64, -1, 8); /* reserved: 64 / 16 = 4 */
	assert_null(api_access_room(0, 0, &k, false));
	assert_null(api_access_room(59, 0, &k, false));
	assert_non_null(api_access_room(60, 0, &k, false));
	assert_null(api_access_room(60, 0, &k, true));
	assert_null(api_access_room(63, 0, &k, true));
	assert_non_null(api_access_room(64, 0, &k, true));
	/* the per-address cap applies once less than a quarter (16) of the
	 * slots are free: a burst from one address is served before that */
	assert_null(api_access_room(48, 48, &k, false));
	assert_null(api_access_room(49, 7, &k, false));
	assert_non_null(api_access_room(49, 8, &k, false));
	assert_non_null(api_access_room(49, 8, &k, true));
	assert_null(api_access_room(49, 8, &none, false)); /* unix: uncapped */

	setup_slots("", 8, 0, 2); /* no reserved slots */
	assert_null(api_access_room(6, 6, &k, false)); /* 2 of 8 free */
	assert_null(api_access_room(7, 1, &k, false)); /* 1 free */
	assert_non_null(api_access_room(7, 2, &k, false));
	assert_non_null(api_access_room(8, 0, &k, true));
	setup_slots("", 4, 9, 2); /* at most all slots but one */
	assert_null(api_access_room(0, 0, &k, false));
	assert_non_null(api_access_room(1, 0, &k, false));
	assert_null(api_access_room(3, 0, &k, true));
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
		cmocka_unit_test(test_loopback_names_any_port),
		cmocka_unit_test(test_api_host_names),
		cmocka_unit_test(test_token_host_any_and_401_first),
		cmocka_unit_test(test_parse_hosts),
		cmocka_unit_test(test_unix_api),
		cmocka_unit_test(test_cert_readonly),
		cmocka_unit_test(test_tls_host),
		cmocka_unit_test(test_slot_keys),
		cmocka_unit_test(test_slot_trusted),
		cmocka_unit_test(test_slot_room),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
