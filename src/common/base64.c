/* base64 (RFC 4648 section 4): standard alphabet, padding required.
 *
 * The decoder is strict: the input length must be a multiple of four,
 * '=' may only appear as one or two final padding characters, no
 * whitespace or other bytes outside the alphabet are accepted, and the
 * unused bits before the padding must be zero (canonical encoding). */
#include "common/base64.h"

#include <limits.h>
#include <stdint.h>

static const char base64_alphabet[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* The 6-bit value of an alphabet character, or -1. */
static int base64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

int base64_encode(char *out, size_t cap, const void *in, size_t n)
{
	const unsigned char *s = in;
	size_t i, o = 0;

	/* keep BASE64_ENCLEN(n) + 1 within int without overflowing */
	if (n > (size_t)(INT_MAX - 4) / 4 * 3)
		return -1;
	if (cap < BASE64_ENCLEN(n) + 1)
		return -1;
	for (i = 0; i + 3 <= n; i += 3) {
		uint32_t v = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8 |
			     s[i + 2];

		out[o++] = base64_alphabet[v >> 18 & 0x3f];
		out[o++] = base64_alphabet[v >> 12 & 0x3f];
		out[o++] = base64_alphabet[v >> 6 & 0x3f];
		out[o++] = base64_alphabet[v & 0x3f];
	}
	if (n - i == 1) {
		uint32_t v = (uint32_t)s[i] << 16;

		out[o++] = base64_alphabet[v >> 18 & 0x3f];
		out[o++] = base64_alphabet[v >> 12 & 0x3f];
		out[o++] = '=';
		out[o++] = '=';
	} else if (n - i == 2) {
		uint32_t v = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8;

		out[o++] = base64_alphabet[v >> 18 & 0x3f];
		out[o++] = base64_alphabet[v >> 12 & 0x3f];
		out[o++] = base64_alphabet[v >> 6 & 0x3f];
		out[o++] = '=';
	}
	out[o] = '\0';
	return (int)o;
}

/* Number of padding characters in the final quad (0..2). A '=' anywhere
 * else is left to the alphabet check. */
static int base64_padding(const char *q)
{
	if (q[3] != '=')
		return 0;
	return q[2] == '=' ? 2 : 1;
}

int base64_decode(void *out, size_t cap, const char *in, size_t n)
{
	unsigned char *d = out;
	size_t i, o = 0, need;
	int pad;

	if (n % 4 != 0 || n / 4 * 3 > INT_MAX)
		return -1;
	if (n == 0)
		return 0;
	pad = base64_padding(in + n - 4);
	need = n / 4 * 3 - (size_t)pad;
	if (need > cap)
		return -1;
	for (i = 0; i < n; i += 4) {
		size_t k, nchars = (i + 4 == n) ? 4 - (size_t)pad : 4;
		uint32_t v = 0;

		for (k = 0; k < 4; k++) {
			unsigned char ch = (unsigned char)in[i + k];
			int c = k < nchars ? base64_value(ch) : 0;

			if (c < 0)
				return -1;
			v = v << 6 | (uint32_t)c;
		}
		/* reject non-zero bits hidden under the padding */
		if ((pad == 1 && nchars == 3 && (v & 0xff) != 0) ||
		    (pad == 2 && nchars == 2 && (v & 0xffff) != 0))
			return -1;
		d[o++] = (unsigned char)(v >> 16);
		if (nchars > 2)
			d[o++] = (unsigned char)(v >> 8);
		if (nchars > 3)
			d[o++] = (unsigned char)v;
	}
	return (int)o;
}
