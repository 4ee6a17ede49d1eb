#include "ruleset/rpcall.h"

#include <string.h>
#include <strings.h>

#define RPC_MIME_TYPE "application/x-neosocksd-rpc"

static bool rpcall_ows(char c)
{
	return c == ' ' || c == '\t';
}

/* One parameter, white space trimmed: 1 version=1, 0 another parameter,
 * -1 another version. */
static int rpcall_mime_param(const char *p, size_t n)
{
	if (n < 8 || strncasecmp(p, "version=", 8) != 0)
		return 0;
	p += 8;
	n -= 8;
	return (n == 1 && p[0] == '1') ||
			       (n == 3 && memcmp(p, "\"1\"", 3) == 0)
		       ? 1
		       : -1;
}

bool rpcall_mime_ok(const char *ct, size_t len)
{
	const size_t tlen = sizeof(RPC_MIME_TYPE) - 1;
	const char *p = ct + tlen, *end = ct + len;
	bool version = false;

	if (len < tlen || strncasecmp(ct, RPC_MIME_TYPE, tlen) != 0)
		return false;
	while (p < end && rpcall_ows(*p))
		p++;
	if (p < end && *p != ';')
		return false; /* another type with our name as its prefix */
	while (p < end) {
		const char *s = p + 1, *e;
		int r;

		p = memchr(s, ';', (size_t)(end - s));
		if (p == NULL)
			p = end;
		e = p;
		while (s < e && rpcall_ows(*s))
			s++;
		while (e > s && rpcall_ows(e[-1]))
			e--;
		r = rpcall_mime_param(s, (size_t)(e - s));
		if (r < 0)
			return false;
		version |= r > 0;
	}
	return version;
}
