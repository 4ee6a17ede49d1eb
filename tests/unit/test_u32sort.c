/* u32sort against a reference order, on the sizes the stats use. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/u32sort.h"

static int cmp(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

static void check(uint32_t *a, size_t n)
{
	uint32_t *want = malloc((n ? n : 1) * sizeof(*a));

	assert_non_null(want);
	memcpy(want, a, n * sizeof(*a));
	qsort(want, n, sizeof(*a), cmp);
	u32sort(a, n);
	assert_memory_equal(a, want, n * sizeof(*a));
	free(want);
}

static void test_sizes_and_orders(void **state)
{
	static uint32_t a[1024];
	uint32_t x = 12345;

	(void)state;
	for (size_t n = 0; n <= 1024; n = n < 8 ? n + 1 : n * 2) {
		for (size_t i = 0; i < n; i++) { /* random */
			x = x * 1103515245u + 12345u;
			a[i] = x >> 8;
		}
		check(a, n);
		for (size_t i = 0; i < n; i++) /* descending */
			a[i] = (uint32_t)(n - i);
		check(a, n);
		for (size_t i = 0; i < n; i++) /* many equal */
			a[i] = (uint32_t)(i % 3);
		check(a, n);
		for (size_t i = 0; i < n; i++) /* extremes */
			a[i] = i % 2 ? UINT32_MAX : 0;
		check(a, n);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sizes_and_orders),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
