/* Unit tests of the bounded growable buffer (common/growbuf.c). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "common/growbuf.h"

#ifdef NEOSOCKSD_SANITIZE
/* test_nomem asks for more than there is: let malloc say no */
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
	return "allocator_may_return_null=1";
}
#endif

static void test_add_and_str(void **state)
{
	struct growbuf b = GROWBUF_INIT(1 << 20);

	(void)state;
	assert_string_equal(growbuf_str(&b), "");
	assert_int_equal(growbuf_add(&b, "abc", 3), 0);
	assert_int_equal(growbuf_add(&b, NULL, 0), 0);
	assert_int_equal(growbuf_add(&b, "de", 2), 0);
	assert_int_equal(b.len, 5);
	assert_string_equal(growbuf_str(&b), "abcde");
	assert_false(b.failed);
	growbuf_free(&b);
	assert_null(b.p);
	assert_int_equal(b.len, 0);
}

/* What does not fit fails the buffer and leaves the data as it was. */
static void test_bound(void **state)
{
	struct growbuf b = GROWBUF_INIT(10);

	(void)state;
	assert_int_equal(growbuf_add(&b, "0123456789", 10), 0);
	assert_int_equal(growbuf_add(&b, "x", 1), -1);
	assert_true(b.failed);
	assert_false(b.nomem);
	assert_int_equal(b.len, 10);
	assert_string_equal(growbuf_str(&b), "0123456789");
	/* sticky: later appends do nothing */
	assert_int_equal(growbuf_add(&b, "", 0), -1);
	growbuf_printf(&b, "%d", 1);
	assert_int_equal(b.len, 10);
	growbuf_free(&b);
}

static void test_bound_at_once(void **state)
{
	struct growbuf b = GROWBUF_INIT(100);
	char big[101];

	(void)state;
	memset(big, 'a', sizeof(big));
	assert_int_equal(growbuf_add(&b, big, sizeof(big)), -1);
	assert_true(b.failed);
	assert_int_equal(b.len, 0);
	assert_null(b.p); /* nothing was allocated for it */
	growbuf_free(&b);
}

/* Doubling, but straight to the bound from half of it: the room never
 * exceeds the bound, and the last step is to the bound exactly. */
static void test_growth(void **state)
{
	const size_t max = 100000;
	struct growbuf b = GROWBUF_INIT(max);
	size_t prev = 0, avail;
	char *p;

	(void)state;
	while ((p = growbuf_room(&b, 1, &avail)) != NULL) {
		assert_true(b.cap <= max);
		assert_true(b.cap >= prev);
		if (b.cap != prev && prev != 0)
			assert_true(b.cap == 2 * prev || b.cap == max);
		prev = b.cap;
		memset(p, 'z', avail);
		growbuf_commit(&b, avail);
	}
	assert_int_equal(b.len, max);
	assert_int_equal(b.cap, max);
	assert_true(b.failed);
	assert_false(b.nomem);
	assert_int_equal(strlen(growbuf_str(&b)), max); /* room for the NUL */
	growbuf_free(&b);
}

static void test_room_min(void **state)
{
	struct growbuf b = GROWBUF_INIT(1 << 20);
	size_t avail;
	char *p;

	(void)state;
	p = growbuf_room(&b, 10000, &avail);
	assert_non_null(p);
	assert_true(avail >= 10000);
	growbuf_commit(&b, 10);
	p = growbuf_room(&b, 1, &avail);
	assert_ptr_equal(p, b.p + 10);
	growbuf_free(&b);
}

static void test_printf(void **state)
{
	struct growbuf b = GROWBUF_INIT(1 << 20);
	char big[5000];

	(void)state;
	growbuf_printf(&b, "%s=%d;", "a", 1);
	memset(big, 'q', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	growbuf_printf(&b, "%s", big); /* longer than the first block */
	growbuf_printf(&b, "!");
	assert_false(b.failed);
	assert_int_equal(b.len, 4 + sizeof(big) - 1 + 1);
	assert_memory_equal(b.p, "a=1;qqq", 7);
	assert_int_equal(growbuf_str(&b)[b.len - 1], '!');
	growbuf_free(&b);
}

static void test_printf_bound(void **state)
{
	struct growbuf b = GROWBUF_INIT(8);

	(void)state;
	growbuf_printf(&b, "1234");
	growbuf_printf(&b, "56789");
	assert_true(b.failed);
	assert_int_equal(b.len, 4);
	assert_string_equal(growbuf_str(&b), "1234");
	growbuf_free(&b);
}

static void test_take(void **state)
{
	struct growbuf b = GROWBUF_INIT(64);
	char *p;

	(void)state;
	assert_int_equal(growbuf_add(&b, "hello", 5), 0);
	p = growbuf_take(&b);
	assert_string_equal(p, "hello");
	assert_null(b.p);
	assert_int_equal(b.len, 0);
	free(p);
	assert_null(growbuf_take(&b));
}

/* Running out of memory is told apart from the bound. */
static void test_nomem(void **state)
{
	struct growbuf b = GROWBUF_INIT(SIZE_MAX / 2);
	size_t avail;

	(void)state;
	if (getenv("NEOSOCKSD_UNDER_VALGRIND") != NULL)
		skip(); /* valgrind warns about the huge request */
	assert_null(growbuf_room(&b, SIZE_MAX / 4, &avail));
	assert_true(b.failed);
	assert_true(b.nomem);
	growbuf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_add_and_str),
		cmocka_unit_test(test_bound),
		cmocka_unit_test(test_bound_at_once),
		cmocka_unit_test(test_growth),
		cmocka_unit_test(test_room_min),
		cmocka_unit_test(test_printf),
		cmocka_unit_test(test_printf_bound),
		cmocka_unit_test(test_take),
		cmocka_unit_test(test_nomem),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
