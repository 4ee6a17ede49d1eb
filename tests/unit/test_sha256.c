/* Unit tests of SHA-256 (ruleset/sha256.c) against the FIPS 180-4
 * examples, at every way of splitting the input. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "ruleset/sha256.h"

static void hex_of(const char *in, size_t len, char out[SHA256_HEX])
{
	sha256_hex(in, len, out);
}

static void test_fips_examples(void **state)
{
	char h[SHA256_HEX];

	(void)state;
	hex_of("", 0, h);
	assert_string_equal(h, "e3b0c44298fc1c149afbf4c8996fb924"
			       "27ae41e4649b934ca495991b7852b855");
	hex_of("abc", 3, h);
	assert_string_equal(h, "ba7816bf8f01cfea414140de5dae2223"
			       "b00361a396177a9cb410ff61f20015ad");
	hex_of("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", 56,
	       h);
	assert_string_equal(h, "248d6a61d20638b8e5c026930c3e6039"
			       "a33ce45964ff2167f6ecedd419db06c1");
}

/* One million 'a', fed in pieces of every size from 1 to 130 bytes. */
static void test_million_a_in_pieces(void **state)
{
	static char a[130];
	struct sha256 c;
	uint8_t d[SHA256_LEN];
	static const uint8_t want[SHA256_LEN] = {
		0xcd, 0xc7, 0x6e, 0x5c, 0x99, 0x14, 0xfb, 0x92, 0x81, 0xa1, 0xc7,
		0xe2, 0x84, 0xd7, 0x3e, 0x67, 0xf1, 0x80, 0x9a, 0x48, 0xa4, 0x97,
		0x20, 0x0e, 0x04, 0x6d, 0x39, 0xcc, 0xc7, 0x11, 0x2c, 0xd0,
	};
	size_t left = 1000000, piece = 1;

	(void)state;
	memset(a, 'a', sizeof(a));
	sha256_init(&c);
	while (left > 0) {
		size_t n = piece < left ? piece : left;

		sha256_update(&c, a, n);
		left -= n;
		piece = piece % sizeof(a) + 1;
	}
	sha256_final(&c, d);
	assert_memory_equal(d, want, SHA256_LEN);
}

/* Lengths around the padding boundary (55, 56, 63, 64, 65 bytes) agree
 * whether fed whole or a byte at a time. */
static void test_padding_boundaries(void **state)
{
	static const size_t lens[] = { 55, 56, 57, 63, 64, 65, 119, 120 };
	char buf[128];

	(void)state;
	memset(buf, 'x', sizeof(buf));
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		struct sha256 c;
		uint8_t whole[SHA256_LEN], bytes[SHA256_LEN];

		sha256_init(&c);
		sha256_update(&c, buf, lens[i]);
		sha256_final(&c, whole);
		sha256_init(&c);
		for (size_t k = 0; k < lens[i]; k++)
			sha256_update(&c, buf + k, 1);
		sha256_final(&c, bytes);
		assert_memory_equal(whole, bytes, SHA256_LEN);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fips_examples),
		cmocka_unit_test(test_million_a_in_pieces),
		cmocka_unit_test(test_padding_boundaries),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
