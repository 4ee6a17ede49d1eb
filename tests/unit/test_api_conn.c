/* Unit tests for the REST API transport (src/ruleset/api_conn.c) through
 * its socket-free connections: what a client sends is fed in, what the
 * server writes is collected. The router is a stub (api_dispatch), as in
 * the fuzz target tests/fuzz/fuzz_api.c.
 *
 * Leaks are found by ASan (make unit) and valgrind (make valgrind) when
 * the binary exits. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <event2/event.h>

#include "common/config.h"
#include "common/log.h"
#include "ruleset/api.h"
#include "ruleset/api_access.h"
#include "ruleset/api_conn.h"
#include "ruleset/api_routes.h"
#include "ruleset/ruleset_main.h"

static struct event_base *base;
static struct api_req *held; /* a request the stub answers later */
static bool hold_next, closed;
static char out[65536];
static size_t outlen;
static unsigned dispatched;

struct event_base *ruleset_base(void)
{
	return base;
}

void api_dispatch(struct api_req *r)
{
	char body[sizeof(r->method) + sizeof(r->path) + 32];
	int n;

	dispatched++;
	if (hold_next) {
		hold_next = false;
		held = r;
		return;
	}
	n = snprintf(body, sizeof(body), "%s %s %zu", r->method, r->path,
		     r->body_len);
	api_reply(r, 200, "text/plain", body, (size_t)n, NULL);
}

static void sink(void *ud, const void *data, size_t len)
{
	(void)ud;
	if (data == NULL) {
		closed = true;
		return;
	}
	assert_true(outlen + len <= sizeof(out));
	memcpy(out + outlen, data, len);
	outlen += len;
}

static int setup(void **state)
{
	struct config c;

	(void)state;
	log_level = LOGL_SILENT;
	base = event_base_new();
	assert_non_null(base);
	config_defaults(&c);
	snprintf(c.restapi, sizeof(c.restapi), "127.0.0.1:9080");
	assert_int_equal(api_configure(&c), 0);
	api_access_set_tokens("", "");
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	event_base_free(base);
	return 0;
}

static struct api_conn *open_conn(void)
{
	struct sockaddr_storage ss;
	struct api_conn *c;

	memset(&ss, 0, sizeof(ss));
	ss.ss_family = AF_INET;
	((struct sockaddr_in *)&ss)->sin_addr.s_addr = htonl(0x7f000001);
	outlen = 0;
	closed = false;
	dispatched = 0;
	held = NULL;
	c = api_conn_open(&ss, sink, NULL);
	assert_non_null(c);
	return c;
}

static long feed(struct api_conn *c, const char *s, bool eof)
{
	return api_conn_feed(c, s, strlen(s), eof);
}

/* Regression (found by the fuzz target api): a connection closed while
 * the body of its request was still arriving leaked the request (1.4 KiB
 * each), however the close came (deadline, client gone). */
static void test_closed_mid_body_frees_the_request(void **state)
{
	static const char partial[] = "POST /ruleset/invoke HTTP/1.1\r\n"
				      "Content-Length: 10\r\n\r\nabc";
	struct api_conn *c = open_conn();

	(void)state;
	assert_int_equal(feed(c, partial, false), (long)strlen(partial));
	assert_int_equal(dispatched, 0);
	api_conn_drop(c); /* as the request deadline would */
	assert_true(closed);
	/* and the client leaving does the same */
	c = open_conn();
	assert_int_equal(feed(c, partial, true), -1);
	assert_true(closed && outlen == 0 && dispatched == 0);
}

static void test_pipelined_answered_in_order(void **state)
{
	struct api_conn *c = open_conn();
	const char *a = "HTTP/1.1 200 OK", *first, *second;

	(void)state;
	hold_next = true;
	assert_true(feed(c, "POST /ruleset/rpcall HTTP/1.1\r\n"
			    "Content-Length: 1\r\n\r\nx"
			    "GET /healthy HTTP/1.1\r\n\r\n",
			 false) > 0);
	/* the second waits for the first's answer */
	assert_non_null(held);
	assert_int_equal(dispatched, 1);
	assert_int_equal(outlen, 0);
	api_reply(held, 200, "text/plain", "first", 5, NULL);
	assert_int_equal(dispatched, 2);
	out[outlen] = '\0';
	first = strstr(out, a);
	assert_non_null(first);
	second = strstr(first + 1, a);
	assert_non_null(second);
	assert_non_null(strstr(first, "\r\n\r\nfirst"));
	assert_non_null(strstr(second, "GET /healthy 0"));
	api_conn_drop(c);
}

/* A request still being answered when its connection closes: the late
 * answer is dropped, and nothing leaks. */
static void test_late_answer_after_close(void **state)
{
	struct api_conn *c = open_conn();

	(void)state;
	hold_next = true;
	assert_true(feed(c, "GET /stats HTTP/1.1\r\n\r\n", false) > 0);
	assert_non_null(held);
	api_conn_drop(c);
	assert_false(api_req_alive(held));
	api_reply(held, 200, NULL, "", 0, NULL);
	assert_int_equal(outlen, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_closed_mid_body_frees_the_request),
		cmocka_unit_test(test_pipelined_answered_in_order),
		cmocka_unit_test(test_late_answer_after_close),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
