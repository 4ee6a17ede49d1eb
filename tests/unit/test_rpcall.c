/* Unit tests of the RPC wire format's one media-type check (rpcall.c),
 * which both /ruleset/rpcall and the RPC client use. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "ruleset/rpcall.h"

static bool ok(const char *ct)
{
	return rpcall_mime_ok(ct, strlen(ct));
}

static void test_accepted(void **state)
{
	(void)state;
	assert_true(ok(RPC_MIME));
	assert_true(ok("application/x-neosocksd-rpc;version=1"));
	assert_true(ok("APPLICATION/X-NeoSocksD-RPC; Version=1"));
	assert_true(ok("application/x-neosocksd-rpc; version=\"1\""));
	assert_true(ok("application/x-neosocksd-rpc ;\tversion=1 "));
	assert_true(ok("application/x-neosocksd-rpc;charset=x; version=\"1\""));
	assert_true(ok("application/x-neosocksd-rpc; version=1; q=0.5"));
	assert_true(ok("application/x-neosocksd-rpc; version=1; version=1"));
}

static void test_refused(void **state)
{
	(void)state;
	assert_false(ok(""));
	assert_false(ok("text/plain"));
	assert_false(ok("text/plain; version=1"));
	assert_false(ok("application/x-neosocksd-rpc"));
	assert_false(ok("application/x-neosocksd-rpc;"));
	assert_false(ok("application/x-neosocksd-rpc; charset=utf-8"));
	assert_false(ok("application/x-neosocksd-rpc; version=2"));
	assert_false(ok("application/x-neosocksd-rpc; version=10"));
	assert_false(ok("application/x-neosocksd-rpc; version=1x"));
	assert_false(ok("application/x-neosocksd-rpc; version=\"1\"x"));
	assert_false(ok("application/x-neosocksd-rpc; version="));
	assert_false(ok("application/x-neosocksd-rpc; version=1; version=2"));
	assert_false(ok("application/x-neosocksd-rpc; version=2; version=1"));
	/* another type that starts with ours */
	assert_false(ok("application/x-neosocksd-rpcx; version=1"));
	assert_false(ok("application/x-neosocksd-rp"));
}

/* The value is a span of a bigger buffer: nothing past len is read. */
static void test_span(void **state)
{
	static const char buf[] = "application/x-neosocksd-rpc; version=1x";

	(void)state;
	assert_true(rpcall_mime_ok(buf, sizeof(buf) - 2));
	assert_false(rpcall_mime_ok(buf, sizeof(buf) - 1));
	assert_false(rpcall_mime_ok(buf, 10));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_accepted),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_span),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
