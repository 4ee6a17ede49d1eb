/* addr: parse, format and classify network addresses. Pure functions:
 * no sockets, no allocation, no name resolution. */
#include "common/addr.h"
#include "common/outbuf.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/un.h>

#define V4_TEXT_MAX 15 /* "255.255.255.255" */
#define V6_TEXT_MAX 45 /* "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255" */
#define PORT_TEXT_MAX 5

/* A "host:port" string cut into its parts, without copying. */
struct hostport {
	const char *host;
	size_t hostlen;
	const char *port;
	size_t portlen;
	bool bracketed; /* host was written as "[...]" */
	bool has_port;  /* a ':' separator was present */
};

static bool has_byte(const char *s, size_t len, char c)
{
	return len > 0 && memchr(s, c, len) != NULL;
}

static bool has_bracket(const char *s, size_t len)
{
	return has_byte(s, len, '[') || has_byte(s, len, ']');
}

/* s[0] == '['. Accepts "[host]" and "[host]:port". */
static int split_bracketed(const char *s, size_t len, struct hostport *hp)
{
	const char *rb = memchr(s, ']', len);
	size_t used;

	if (rb == NULL)
		return -1;
	used = (size_t)(rb - s) + 1;
	hp->bracketed = true;
	hp->host = s + 1;
	hp->hostlen = used - 2;
	if (has_byte(hp->host, hp->hostlen, '['))
		return -1;
	hp->port = s + len;
	if (used == len)
		return 0;
	if (s[used] != ':')
		return -1;
	hp->has_port = true;
	hp->port = s + used + 1;
	hp->portlen = len - used - 1;
	return 0;
}

/* The port separator is the last ':'; the host may not hold another. */
static int split_plain(const char *s, size_t len, struct hostport *hp)
{
	const char *colon = len > 0 ? memrchr(s, ':', len) : NULL;

	hp->host = s;
	if (colon == NULL) {
		hp->hostlen = len;
		hp->port = s + len;
		return 0;
	}
	hp->hostlen = (size_t)(colon - s);
	if (has_byte(s, hp->hostlen, ':'))
		return -1;
	hp->has_port = true;
	hp->port = colon + 1;
	hp->portlen = len - hp->hostlen - 1;
	return 0;
}

static int split(const char *s, size_t len, struct hostport *hp)
{
	int rc;

	memset(hp, 0, sizeof(*hp));
	if (s == NULL || has_byte(s, len, '\0'))
		return -1;
	if (len > 0 && s[0] == '[')
		rc = split_bracketed(s, len, hp);
	else
		rc = split_plain(s, len, hp);
	if (rc != 0)
		return -1;
	if (!hp->bracketed && has_bracket(hp->host, hp->hostlen))
		return -1;
	if (has_bracket(hp->port, hp->portlen) ||
	    has_byte(hp->port, hp->portlen, ':'))
		return -1;
	return 0;
}

static int copy_part(char *dst, size_t cap, const char *src, size_t n)
{
	if (dst == NULL || n >= cap)
		return -1;
	memcpy(dst, src, n);
	dst[n] = '\0';
	return 0;
}

int addr_splithostport(const char *s, size_t len, char *host, size_t hostcap,
		       char *port, size_t portcap)
{
	struct hostport hp;

	if (split(s, len, &hp) != 0 || !hp.has_port)
		return -1;
	if (copy_part(host, hostcap, hp.host, hp.hostlen) != 0)
		return -1;
	return copy_part(port, portcap, hp.port, hp.portlen);
}

int addr_parse_port(const char *s, size_t len, uint16_t *port)
{
	uint32_t v = 0;
	size_t i;

	if (s == NULL || len == 0 || len > PORT_TEXT_MAX)
		return -1;
	for (i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (uint32_t)(s[i] - '0');
	}
	if (v > UINT16_MAX)
		return -1;
	if (port != NULL)
		*port = (uint16_t)v;
	return 0;
}

static int set_v4(struct netaddr *a, const char *s, size_t len)
{
	char tmp[V4_TEXT_MAX + 1];

	if (len > V4_TEXT_MAX)
		return -1;
	memcpy(tmp, s, len);
	tmp[len] = '\0';
	if (inet_pton(AF_INET, tmp, a->u.v4) != 1)
		return -1;
	a->type = ADDR_IPV4;
	return 0;
}

/* Zone ids ("fe80::1%eth0") are refused by inet_pton. */
static int set_v6(struct netaddr *a, const char *s, size_t len)
{
	char tmp[V6_TEXT_MAX + 1];

	if (len > V6_TEXT_MAX)
		return -1;
	memcpy(tmp, s, len);
	tmp[len] = '\0';
	if (inet_pton(AF_INET6, tmp, a->u.v6) != 1)
		return -1;
	a->type = ADDR_IPV6;
	return 0;
}

/* Letters, digits, '-' and '_' (the LDH rule of RFC 952/1123, plus the
 * underscore that SRV-style and some internal names carry). */
static bool label_char_ok(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '-' || c == '_';
}

static bool dns_name_valid(const char *s, size_t len)
{
	size_t label = 0;

	if (len > 0 && s[len - 1] == '.')
		len--; /* one trailing dot: a fully qualified name */
	if (len == 0 || len > ADDR_DNS_NAME_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '.') {
			if (label == 0)
				return false; /* empty label: "..", ".a" */
			label = 0;
			continue;
		}
		if (!label_char_ok((unsigned char)s[i]) ||
		    ++label > ADDR_DNS_LABEL_MAX)
			return false;
	}
	return label > 0;
}

static bool v6_literal(const char *s, size_t len)
{
	char tmp[V6_TEXT_MAX + 1];
	struct in6_addr a6;

	if (len == 0 || len > V6_TEXT_MAX || memchr(s, '\0', len) != NULL)
		return false;
	memcpy(tmp, s, len);
	tmp[len] = '\0';
	return inet_pton(AF_INET6, tmp, &a6) == 1;
}

bool addr_name_valid(const char *name, size_t len)
{
	if (name == NULL)
		return false;
	if (len > 0 && memchr(name, ':', len) != NULL)
		return v6_literal(name, len);
	return dns_name_valid(name, len);
}

bool addr_unmap(struct netaddr *a)
{
	static const uint8_t mapped[12] = { [10] = 0xff, [11] = 0xff };
	uint8_t v4[4];

	if (a == NULL || a->type != ADDR_IPV6 ||
	    memcmp(a->u.v6, mapped, sizeof(mapped)) != 0)
		return false;
	memcpy(v4, a->u.v6 + 12, sizeof(v4));
	memset(&a->u, 0, sizeof(a->u));
	memcpy(a->u.v4, v4, sizeof(v4));
	a->type = ADDR_IPV4;
	return true;
}

bool addr_equal(const struct netaddr *a, const struct netaddr *b)
{
	if (a->type != b->type || a->port != b->port)
		return false;
	switch (a->type) {
	case ADDR_IPV4:
		return memcmp(a->u.v4, b->u.v4, 4) == 0;
	case ADDR_IPV6:
		return memcmp(a->u.v6, b->u.v6, 16) == 0;
	default:
		return a->namelen == b->namelen &&
		       memcmp(a->u.name, b->u.name, a->namelen) == 0;
	}
}

static bool is_hex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
	       (c >= 'A' && c <= 'F');
}

/* True when the last label (one trailing dot ignored) is a number, decimal
 * or "0x" hex: such a name is a malformed IPv4 literal ("127.1", "1.2.3.256",
 * "0x7f.1") that a resolver might still turn into an address. */
static bool looks_numeric(const char *s, size_t len)
{
	const char *dot, *label;
	size_t n, i;

	if (len > 1 && s[len - 1] == '.')
		len--;
	dot = memrchr(s, '.', len);
	label = dot != NULL ? dot + 1 : s;
	n = len - (size_t)(label - s);
	if (n == 0)
		return false;
	i = 0;
	if (n >= 2 && label[0] == '0' && (label[1] == 'x' || label[1] == 'X')) {
		for (i = 2; i < n && is_hex(label[i]); i++)
			;
		return i == n;
	}
	for (; i < n && label[i] >= '0' && label[i] <= '9'; i++)
		;
	return i == n;
}

static int set_name(struct netaddr *a, const char *s, size_t len)
{
	if (!dns_name_valid(s, len) || looks_numeric(s, len))
		return -1;
	memcpy(a->u.name, s, len);
	a->u.name[len] = '\0';
	a->namelen = (uint8_t)len;
	a->type = ADDR_DOMAIN;
	return 0;
}

/* Fill *out from a host without port. A bracketed host or one holding a
 * ':' must be IPv6; else IPv4 if it parses as a dotted quad, else a name. */
static int set_host(struct netaddr *out, const char *s, size_t len,
		    uint16_t port, bool bracketed)
{
	struct netaddr a;
	int rc;

	memset(&a, 0, sizeof(a));
	if (has_byte(s, len, '\0'))
		return -1;
	if (bracketed || has_byte(s, len, ':'))
		rc = set_v6(&a, s, len);
	else if (set_v4(&a, s, len) == 0)
		rc = 0;
	else
		rc = set_name(&a, s, len);
	if (rc != 0)
		return -1;
	a.port = port;
	*out = a;
	return 0;
}

int addr_parse(struct netaddr *a, const char *s, size_t len, int default_port)
{
	struct hostport hp;
	uint16_t port;

	if (a == NULL || split(s, len, &hp) != 0)
		return -1;
	if (hp.has_port) {
		if (addr_parse_port(hp.port, hp.portlen, &port) != 0)
			return -1;
	} else {
		if (default_port < 0 || default_port > UINT16_MAX)
			return -1;
		port = (uint16_t)default_port;
	}
	return set_host(a, hp.host, hp.hostlen, port, hp.bracketed);
}

/* Accepts "1.2.3.4", "::1", "[::1]" and names. */
int addr_set_host(struct netaddr *a, const char *host, size_t len,
		  uint16_t port)
{
	if (a == NULL || host == NULL)
		return -1;
	if (len >= 2 && host[0] == '[' && host[len - 1] == ']')
		return set_host(a, host + 1, len - 2, port, true);
	return set_host(a, host, len, port, false);
}

static void out_port(struct outbuf *o, uint16_t port)
{
	char tmp[PORT_TEXT_MAX];
	size_t i = sizeof(tmp);
	unsigned v = port;

	do {
		tmp[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v != 0);
	out_put(o, tmp + i, sizeof(tmp) - i);
}

static void out_host(struct outbuf *o, const struct netaddr *a, bool brackets)
{
	char tmp[INET6_ADDRSTRLEN];

	switch (a->type) {
	case ADDR_IPV4:
		if (inet_ntop(AF_INET, a->u.v4, tmp, sizeof(tmp)) == NULL)
			break;
		out_str(o, tmp);
		return;
	case ADDR_IPV6:
		if (inet_ntop(AF_INET6, a->u.v6, tmp, sizeof(tmp)) == NULL)
			break;
		if (brackets)
			out_put(o, "[", 1);
		out_str(o, tmp);
		if (brackets)
			out_put(o, "]", 1);
		return;
	case ADDR_DOMAIN: {
		/* a name taken as-is from a client (SOCKS4A, SOCKS5) may hold
		 * a ':' (an IPv6 literal): bracket it so "host:port" stays
		 * unambiguous */
		bool br = brackets && memchr(a->u.name, ':', a->namelen);

		if (a->namelen == 0)
			break;
		if (br)
			out_put(o, "[", 1);
		out_put(o, a->u.name, a->namelen);
		if (br)
			out_put(o, "]", 1);
		return;
	}
	default:
		break;
	}
	o->fail = true;
}

int addr_format(const struct netaddr *a, char *buf, size_t cap)
{
	struct outbuf o;

	out_init(&o, buf, cap);
	if (a == NULL)
		o.fail = true;
	else
		out_host(&o, a, true);
	out_put(&o, ":", 1);
	if (a != NULL)
		out_port(&o, a->port);
	return out_end(&o);
}

int addr_format_host(const struct netaddr *a, char *buf, size_t cap)
{
	struct outbuf o;

	out_init(&o, buf, cap);
	if (a == NULL)
		o.fail = true;
	else
		out_host(&o, a, false);
	return out_end(&o);
}

/* A pathname socket formats as its path. The caller gives no length, so an
 * abstract name cannot be bounded: it, like an unnamed socket, formats as
 * "unix:". sa must point to a whole struct sockaddr_un. */
static int format_unix(const struct sockaddr *sa, char *buf, size_t cap)
{
	struct sockaddr_un sun;
	struct outbuf o;

	memcpy(&sun, sa, sizeof(sun));
	out_init(&o, buf, cap);
	if (sun.sun_path[0] == '\0')
		out_str(&o, "unix:");
	else
		out_put(&o, sun.sun_path, strnlen(sun.sun_path,
						  sizeof(sun.sun_path)));
	return out_end(&o);
}

int addr_format_sockaddr(const struct sockaddr *sa, char *buf, size_t cap)
{
	struct netaddr a;

	if (sa != NULL && sa->sa_family == AF_UNIX)
		return format_unix(sa, buf, cap);
	if (addr_from_sockaddr(&a, sa) != 0) {
		if (buf != NULL && cap > 0)
			buf[0] = '\0';
		return -1;
	}
	return addr_format(&a, buf, cap);
}

int addr_to_sockaddr(const struct netaddr *a, struct sockaddr_storage *ss)
{
	struct sockaddr_in sin;
	struct sockaddr_in6 sin6;

	if (a == NULL || ss == NULL)
		return -1;
	if (a->type == ADDR_IPV4) {
		memset(&sin, 0, sizeof(sin));
		sin.sin_family = AF_INET;
		sin.sin_port = htons(a->port);
		memcpy(&sin.sin_addr, a->u.v4, sizeof(a->u.v4));
		memset(ss, 0, sizeof(*ss));
		memcpy(ss, &sin, sizeof(sin));
		return (int)sizeof(sin);
	}
	if (a->type == ADDR_IPV6) {
		memset(&sin6, 0, sizeof(sin6));
		sin6.sin6_family = AF_INET6;
		sin6.sin6_port = htons(a->port);
		memcpy(&sin6.sin6_addr, a->u.v6, sizeof(a->u.v6));
		memset(ss, 0, sizeof(*ss));
		memcpy(ss, &sin6, sizeof(sin6));
		return (int)sizeof(sin6);
	}
	return -1;
}

/* The sockaddr is copied out first, so sa need not be aligned. */
int addr_from_sockaddr(struct netaddr *a, const struct sockaddr *sa)
{
	struct sockaddr_in sin;
	struct sockaddr_in6 sin6;

	if (a == NULL || sa == NULL)
		return -1;
	if (sa->sa_family == AF_INET) {
		memcpy(&sin, sa, sizeof(sin));
		memset(a, 0, sizeof(*a));
		a->type = ADDR_IPV4;
		a->port = ntohs(sin.sin_port);
		memcpy(a->u.v4, &sin.sin_addr, sizeof(a->u.v4));
		return 0;
	}
	if (sa->sa_family == AF_INET6) {
		memcpy(&sin6, sa, sizeof(sin6));
		memset(a, 0, sizeof(*a));
		a->type = ADDR_IPV6;
		a->port = ntohs(sin6.sin6_port);
		memcpy(a->u.v6, &sin6.sin6_addr, sizeof(a->u.v6));
		return 0;
	}
	return -1;
}

/* An empty unbracketed host means the IPv6 wildcard "::". */
int addr_parse_listen(const char *s, struct sockaddr_storage *ss)
{
	struct hostport hp;
	struct netaddr a;
	size_t len;
	int rc;

	if (s == NULL || ss == NULL)
		return -1;
	len = strnlen(s, ADDR_STRLEN + 1);
	if (len > ADDR_STRLEN || split(s, len, &hp) != 0 || !hp.has_port)
		return -1;
	memset(&a, 0, sizeof(a));
	if (addr_parse_port(hp.port, hp.portlen, &a.port) != 0)
		return -1;
	if (hp.bracketed) {
		rc = set_v6(&a, hp.host, hp.hostlen);
	} else if (hp.hostlen == 0) {
		a.type = ADDR_IPV6; /* u.v6 is already all zero: "::" */
		rc = 0;
	} else {
		rc = set_v4(&a, hp.host, hp.hostlen);
	}
	if (rc != 0)
		return -1;
	return addr_to_sockaddr(&a, ss);
}

struct prefix {
	uint8_t net[4];
	uint8_t bits; /* at most 32 */
	uint8_t cls;  /* enum addr_class */
};

/* First match wins. */
static const struct prefix v4_prefixes[] = {
	{ { 0 }, 8, ADDR_CLASS_UNKNOWN },
	{ { 127 }, 8, ADDR_CLASS_LOOPBACK },
	{ { 224 }, 4, ADDR_CLASS_MULTICAST },
	{ { 240 }, 4, ADDR_CLASS_UNKNOWN }, /* incl. 255.255.255.255 */
	{ { 10 }, 8, ADDR_CLASS_LOCAL },
	{ { 172, 16 }, 12, ADDR_CLASS_LOCAL },
	{ { 192, 168 }, 16, ADDR_CLASS_LOCAL },
	{ { 169, 254 }, 16, ADDR_CLASS_LOCAL },
	{ { 100, 64 }, 10, ADDR_CLASS_LOCAL },
};

static const struct prefix v6_prefixes[] = {
	{ { 0xff }, 8, ADDR_CLASS_MULTICAST },
	{ { 0xfc }, 7, ADDR_CLASS_LOCAL },
	{ { 0xfe, 0x80 }, 10, ADDR_CLASS_LOCAL },
	{ { 0xfe, 0xc0 }, 10, ADDR_CLASS_LOCAL },
};

static bool prefix_match(const uint8_t *ip, const struct prefix *p)
{
	size_t full = p->bits / 8;
	unsigned rem = p->bits % 8;
	uint8_t mask;

	if (memcmp(ip, p->net, full) != 0)
		return false;
	if (rem == 0)
		return true;
	mask = (uint8_t)(0xffu << (8 - rem));
	return (ip[full] & mask) == p->net[full];
}

static enum addr_class classify_table(const uint8_t *ip,
				      const struct prefix *tab, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (prefix_match(ip, &tab[i]))
			return (enum addr_class)tab[i].cls;
	return ADDR_CLASS_GLOBAL;
}

static enum addr_class classify_v6(const uint8_t ip[16])
{
	static const uint8_t mapped[12] = { [10] = 0xff, [11] = 0xff };
	static const uint8_t zero[16];

	if (memcmp(ip, mapped, sizeof(mapped)) == 0)
		return classify_table(ip + 12, v4_prefixes,
				      sizeof(v4_prefixes) / sizeof(v4_prefixes[0]));
	if (memcmp(ip, zero, 15) == 0) {
		if (ip[15] == 0)
			return ADDR_CLASS_UNKNOWN;
		if (ip[15] == 1)
			return ADDR_CLASS_LOOPBACK;
	}
	return classify_table(ip, v6_prefixes,
			      sizeof(v6_prefixes) / sizeof(v6_prefixes[0]));
}

enum addr_class addr_classify(const struct sockaddr *sa)
{
	struct netaddr a;

	if (addr_from_sockaddr(&a, sa) != 0)
		return ADDR_CLASS_UNKNOWN;
	if (a.type == ADDR_IPV4)
		return classify_table(a.u.v4, v4_prefixes,
				      sizeof(v4_prefixes) / sizeof(v4_prefixes[0]));
	return classify_v6(a.u.v6);
}

const char *addr_class_name(enum addr_class c)
{
	switch (c) {
	case ADDR_CLASS_LOOPBACK:
		return "loopback";
	case ADDR_CLASS_MULTICAST:
		return "multicast";
	case ADDR_CLASS_LOCAL:
		return "local";
	case ADDR_CLASS_GLOBAL:
		return "global";
	case ADDR_CLASS_UNKNOWN:
		break;
	}
	return "unknown";
}

int addr_parse_cidr(const char *s, size_t len, int *family, uint8_t addr[16],
		    int *bits)
{
	char buf[64];
	char *slash;
	int max, b = 0;

	if (len == 0 || len >= sizeof(buf) || memchr(s, '\0', len) != NULL)
		return -1;
	memcpy(buf, s, len);
	buf[len] = '\0';
	slash = strchr(buf, '/');
	if (slash != NULL)
		*slash++ = '\0';
	memset(addr, 0, 16);
	if (inet_pton(AF_INET, buf, addr) == 1)
		*family = AF_INET;
	else if (inet_pton(AF_INET6, buf, addr) == 1)
		*family = AF_INET6;
	else
		return -1;
	max = *family == AF_INET ? 32 : 128;
	if (slash == NULL) {
		*bits = max;
		return 0;
	}
	if (*slash == '\0' || strlen(slash) > 3)
		return -1;
	for (const char *p = slash; *p; p++) {
		if (*p < '0' || *p > '9')
			return -1;
		b = b * 10 + (*p - '0');
	}
	if (b > max)
		return -1;
	*bits = b;
	return 0;
}
