/* proxyuri: parse and format outbound proxy URIs and chains. Pure. */
#include "common/hexdigit.h"
#include "common/outbuf.h"
#include "common/proxyuri.h"

#include <stdbool.h>
#include <string.h>

#define SCHEME(s) s "://", sizeof(s "://") - 1

struct scheme_def {
	const char *prefix; /* "name://" */
	size_t plen;
	uint8_t scheme;     /* enum proxy_scheme */
	uint16_t port;      /* default port */
	const char *name;
};

/* The first row of a scheme is its name in logs and config() */
static const struct scheme_def schemes[] = {
	{ SCHEME("socks4a"), PROXY_SOCKS4A, 1080, "socks4a" },
	{ SCHEME("socks4"), PROXY_SOCKS4, 1080, "socks4" },
	{ SCHEME("socks5"), PROXY_SOCKS5, 1080, "socks5" },
	/* curl's name for "the proxy resolves": what socks5:// does here */
	{ SCHEME("socks5h"), PROXY_SOCKS5, 1080, "socks5" },
	{ SCHEME("http"), PROXY_HTTP, 80, "http" },
};

#define NSCHEMES (sizeof(schemes) / sizeof(schemes[0]))

static int fail(const char **err, const char *msg)
{
	if (err != NULL)
		*err = msg;
	return -1;
}

static const struct scheme_def *scheme_by_prefix(const char *uri, size_t len)
{
	size_t i;

	for (i = 0; i < NSCHEMES; i++)
		if (len >= schemes[i].plen &&
		    memcmp(uri, schemes[i].prefix, schemes[i].plen) == 0)
			return &schemes[i];
	return NULL;
}

static const struct scheme_def *scheme_by_id(unsigned scheme)
{
	size_t i;

	for (i = 0; i < NSCHEMES; i++)
		if (schemes[i].scheme == scheme)
			return &schemes[i];
	return NULL;
}

/* Decode s[0..len) into dst[PROXY_CRED_MAX + 1]. Raw bytes must be
 * printable ASCII; "%XX" may give any byte but NUL. */
static int pct_decode(char *dst, const char *s, size_t len, const char **err)
{
	size_t i = 0, n = 0;
	int c, hi, lo;

	while (i < len) {
		c = (unsigned char)s[i++];
		if (c == '%') {
			if (len - i < 2)
				return fail(err, "malformed percent escape");
			hi = hex_digit(s[i]);
			lo = hex_digit(s[i + 1]);
			if (hi < 0 || lo < 0)
				return fail(err, "malformed percent escape");
			c = hi * 16 + lo;
			i += 2;
			if (c == 0)
				return fail(err, "NUL byte in credentials");
		} else if (c < 0x21 || c > 0x7e) {
			return fail(err, "invalid character in credentials");
		}
		if (n == PROXY_CRED_MAX)
			return fail(err, "credentials too long");
		dst[n++] = (char)c;
	}
	dst[n] = '\0';
	return 0;
}

/* "user" or "user:pass"; the first ':' separates them. */
static int parse_userinfo(struct proxy_hop *hop, const char *s, size_t len,
			  const char **err)
{
	const char *colon = memchr(s, ':', len);
	size_t ulen = colon != NULL ? (size_t)(colon - s) : len;

	if (ulen == 0)
		return fail(err, "empty user name");
	if (pct_decode(hop->user, s, ulen, err) != 0)
		return -1;
	hop->has_user = 1;
	if (colon == NULL)
		return 0;
	if (pct_decode(hop->pass, colon + 1, len - ulen - 1, err) != 0)
		return -1;
	hop->has_pass = 1;
	return 0;
}

/* The authority ends at the first '/', '?' or '#'. */
static size_t authority_len(const char *s, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (s[i] == '/' || s[i] == '?' || s[i] == '#')
			break;
	return i;
}

static int parse_hop(struct proxy_hop *hop, const char *uri, size_t len,
		     const char **err)
{
	const struct scheme_def *sd;
	const char *auth, *at, *host;
	size_t alen, rest, hostlen;

	if (len > PROXYURI_MAX)
		return fail(err, "proxy URI too long");
	if (memchr(uri, '\0', len) != NULL)
		return fail(err, "NUL byte in proxy URI");
	sd = scheme_by_prefix(uri, len);
	if (sd == NULL)
		return fail(err, "unknown proxy scheme (use socks4://, "
				 "socks4a://, socks5://, socks5h:// or "
				 "http://)");
	auth = uri + sd->plen;
	alen = authority_len(auth, len - sd->plen);
	rest = len - sd->plen - alen;
	if (rest > 1 || (rest == 1 && auth[alen] != '/'))
		return fail(err, "unexpected path in proxy URI");
	at = alen > 0 ? memrchr(auth, '@', alen) : NULL;
	host = auth;
	hostlen = alen;
	if (at != NULL) {
		if (parse_userinfo(hop, auth, (size_t)(at - auth), err) != 0)
			return -1;
		host = at + 1;
		hostlen = alen - (size_t)(at - auth) - 1;
	}
	if (addr_parse(&hop->addr, host, hostlen, sd->port) != 0)
		return fail(err, "invalid proxy host or port");
	if (hop->addr.port == 0)
		return fail(err, "invalid proxy port");
	hop->scheme = sd->scheme;
	if (hop->scheme == PROXY_SOCKS4A) {
		/* SOCKS4a has no password: accepted, then dropped. */
		memset(hop->pass, 0, sizeof(hop->pass));
		hop->has_pass = 0;
	}
	return 0;
}

/* On failure the hop is wiped so no partial credentials remain. */
int proxyuri_parse(struct proxy_hop *hop, const char *uri, size_t len,
		   const char **err)
{
	if (hop == NULL || uri == NULL)
		return fail(err, "invalid argument");
	memset(hop, 0, sizeof(*hop));
	if (parse_hop(hop, uri, len, err) == 0)
		return 0;
	memset(hop, 0, sizeof(*hop));
	return -1;
}

/* cap is also bounded by PROXYCHAIN_MAX. On failure *n is 0 and the hops
 * parsed so far are wiped. */
int proxyuri_parse_chain(struct proxy_hop *hops, size_t cap, size_t *n,
			 const char *csv, size_t len, const char **err)
{
	const char *p, *end, *comma;
	size_t count = 0, elen;

	if (n != NULL)
		*n = 0;
	if (hops == NULL || n == NULL || csv == NULL)
		return fail(err, "invalid argument");
	if (cap > PROXYCHAIN_MAX)
		cap = PROXYCHAIN_MAX;
	p = csv;
	end = csv + len;
	for (;;) {
		comma = memchr(p, ',', (size_t)(end - p));
		elen = (size_t)((comma != NULL ? comma : end) - p);
		if (elen == 0) {
			fail(err, "empty proxy in chain");
			break;
		}
		if (count == cap) {
			fail(err, "too many proxies");
			break;
		}
		if (proxyuri_parse(&hops[count], p, elen, err) != 0)
			break;
		count++;
		if (comma == NULL) {
			*n = count;
			return 0;
		}
		p = comma + 1;
	}
	memset(hops, 0, count * sizeof(hops[0]));
	return -1;
}

/* Bytes that may stand unescaped in a user name: RFC 3986 unreserved and
 * sub-delims, except ',' (the chain separator). */
static bool user_char_plain(unsigned char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9'))
		return true;
	return c != '\0' && strchr("-._~!$&'()*+;=", c) != NULL;
}

/* Write the user name so that it parses back to the same bytes, and so
 * that no control character reaches a log line. */
static void out_user(struct outbuf *o, const char *user)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t i, n = strnlen(user, PROXY_CRED_MAX + 1);
	unsigned char c;
	char esc[3];

	for (i = 0; i < n; i++) {
		c = (unsigned char)user[i];
		if (user_char_plain(c)) {
			out_put(o, user + i, 1);
			continue;
		}
		esc[0] = '%';
		esc[1] = hex[c >> 4];
		esc[2] = hex[c & 0xf];
		out_put(o, esc, sizeof(esc));
	}
}

int proxyuri_format(const struct proxy_hop *hop, char *buf, size_t cap)
{
	const struct scheme_def *sd;
	char host[ADDR_STRLEN];
	struct outbuf o;

	out_init(&o, buf, cap);
	sd = hop != NULL ? scheme_by_id(hop->scheme) : NULL;
	if (o.fail || sd == NULL ||
	    addr_format(&hop->addr, host, sizeof(host)) < 0)
		return -1;
	out_str(&o, sd->prefix);
	if (hop->has_user) {
		out_user(&o, hop->user);
		out_put(&o, "@", 1);
	}
	out_str(&o, host);
	return out_end(&o);
}

int proxyuri_format_chain(const struct proxy_hop *hops, size_t n,
			  const char *sep, char *buf, size_t cap)
{
	size_t off = 0, slen = strlen(sep);

	if (cap == 0)
		return -1;
	buf[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		size_t s = i > 0 ? slen : 0;
		int k;

		if (s >= cap - off)
			return -1;
		memcpy(buf + off, sep, s);
		k = proxyuri_format(&hops[i], buf + off + s, cap - off - s);
		if (k < 0) {
			buf[off] = '\0'; /* no dangling separator */
			return -1;
		}
		off += s + (size_t)k;
	}
	return (int)off;
}

const char *proxyuri_scheme_name(enum proxy_scheme s)
{
	const struct scheme_def *sd = scheme_by_id((unsigned)s);

	return sd != NULL ? sd->name : "unknown";
}
