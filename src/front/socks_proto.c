/* socks_proto: SOCKS4, SOCKS4A and SOCKS5 (RFC 1928, RFC 1929) wire
 * formats. See socks_proto.h for the contract.
 *
 * The server-side parser keeps no partial state between calls other than
 * the stage: every call decodes the next message from the start of the
 * bytes it is given. Each message is first measured and checked against
 * len; *m is written only once the whole message is present, so a call
 * that returns 0 or -1 leaves *m untouched. Errors are final: the parser
 * moves to SOCKS_STAGE_DONE, so a later call returns -1 with
 * SOCKS_REPLY_NONE. */
#include "front/socks_proto.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#define SOCKS4_HDR_LEN 8   /* VN CD DSTPORT DSTIP */
#define SOCKS5_REQ_HDR 3   /* VER CMD RSV, then ATYP */
#define RFC1929_VERSION 1

/* Outcome of looking for the NUL that ends a SOCKS4 string. */
enum {
	SCAN_TOO_LONG = -1,
	SCAN_NEED_MORE = 0,
	SCAN_FOUND = 1,
};

static uint16_t get_be16(const uint8_t *b)
{
	return (uint16_t)((b[0] << 8) | b[1]);
}

static void put_be16(uint8_t *b, uint16_t v)
{
	b[0] = (uint8_t)(v >> 8);
	b[1] = (uint8_t)(v & 0xff);
}

static bool has_nul(const uint8_t *b, size_t n)
{
	return memchr(b, 0, n) != NULL;
}

static int fail(struct socks_parser *p, int reply, const char *why)
{
	p->stage = SOCKS_STAGE_DONE;
	p->reply = reply;
	p->why = why;
	return -1;
}

static void msg_reset(struct socks_msg *m, uint8_t kind, uint8_t version)
{
	memset(m, 0, sizeof(*m));
	m->kind = kind;
	m->version = version;
}

/* Look for the NUL ending a string of at most max bytes that starts at
 * buf[off] (off <= len). SCAN_FOUND sets *slen (NUL excluded);
 * SCAN_TOO_LONG is reported as soon as max + 1 non-NUL bytes are present,
 * without waiting for more input. */
static int scan_cstr(const uint8_t *buf, size_t len, size_t off, size_t max,
		     size_t *slen)
{
	size_t avail = len - off;
	size_t n = avail < max + 1 ? avail : max + 1;
	const uint8_t *nul = memchr(buf + off, 0, n);

	if (nul != NULL) {
		*slen = (size_t)(nul - (buf + off));
		return SCAN_FOUND;
	}
	return n > max ? SCAN_TOO_LONG : SCAN_NEED_MORE;
}

/* Measure a SOCKS5 ATYP + address + port field starting at b[0] (ATYP),
 * len >= 1. Returns its length, 0 if more bytes are needed, -1 for an
 * unknown ATYP (known from the ATYP byte alone) or -2 for an empty domain
 * (known from its length byte). */
static int s5_addr_len(const uint8_t *b, size_t len)
{
	size_t need;

	switch (b[0]) {
	case ADDR_IPV4:
		need = 1 + 4 + 2;
		break;
	case ADDR_IPV6:
		need = 1 + 16 + 2;
		break;
	case ADDR_DOMAIN:
		if (len < 2)
			return 0;
		if (b[1] == 0)
			return -2;
		need = 2 + (size_t)b[1] + 2;
		break;
	default:
		return -1;
	}
	return len < need ? 0 : (int)need;
}

/* Decode a complete ATYP + address + port field (as measured by
 * s5_addr_len) into a. A domain is NUL-terminated. */
static void s5_addr_decode(const uint8_t *b, struct netaddr *a)
{
	const uint8_t *port;

	memset(a, 0, sizeof(*a));
	a->type = b[0];
	switch (b[0]) {
	case ADDR_IPV4:
		memcpy(a->u.v4, b + 1, 4);
		port = b + 1 + 4;
		break;
	case ADDR_IPV6:
		memcpy(a->u.v6, b + 1, 16);
		port = b + 1 + 16;
		break;
	default: /* ADDR_DOMAIN */
		a->namelen = b[1];
		memcpy(a->u.name, b + 2, a->namelen);
		a->u.name[a->namelen] = '\0';
		port = b + 2 + a->namelen;
		break;
	}
	a->port = get_be16(port);
}

/* A complete SOCKS5 domain field (ATYP 3) holding a NUL cannot be
 * represented as a netaddr name. */
static bool s5_domain_has_nul(const uint8_t *b)
{
	return b[0] == ADDR_DOMAIN && has_nul(b + 2, b[1]);
}

/* SOCKS4: VN CD DSTPORT DSTIP USERID NUL, and for SOCKS4A (DSTIP 0.0.0.x,
 * x != 0) a host name and NUL after that. */
static int parse_s4(struct socks_parser *p, const uint8_t *buf, size_t len,
		    struct socks_msg *m)
{
	size_t ulen, nlen = 0, off;
	bool s4a;
	int r;

	if (len < SOCKS4_HDR_LEN)
		return 0;
	r = scan_cstr(buf, len, SOCKS4_HDR_LEN, SOCKS_USERID_MAX, &ulen);
	if (r == SCAN_TOO_LONG)
		return fail(p, SOCKS4_REJECTED, "SOCKS4 USERID too long");
	if (r == SCAN_NEED_MORE)
		return 0;
	off = SOCKS4_HDR_LEN + ulen + 1;

	s4a = buf[4] == 0 && buf[5] == 0 && buf[6] == 0 && buf[7] != 0;
	if (s4a) {
		r = scan_cstr(buf, len, off, ADDR_NAME_MAX, &nlen);
		if (r == SCAN_TOO_LONG)
			return fail(p, SOCKS4_REJECTED,
				    "SOCKS4A host name too long");
		if (r == SCAN_NEED_MORE)
			return 0;
		if (nlen == 0)
			return fail(p, SOCKS4_REJECTED,
				    "SOCKS4A empty host name");
		if (!addr_name_valid((const char *)buf + off, nlen))
			return fail(p, SOCKS4_REJECTED,
				    "SOCKS4A bad host name");
	}

	msg_reset(m, SOCKS_MSG_S4_REQUEST, 4);
	m->cmd = buf[1];
	m->socks4a = s4a;
	m->target.port = get_be16(buf + 2);
	if (s4a) {
		/* The name is kept as ADDR_DOMAIN exactly as sent, even when
		 * it spells an IPv4 or IPv6 literal: the resolver handles
		 * literals, and rules see what the client asked for. */
		m->target.type = ADDR_DOMAIN;
		m->target.namelen = (uint8_t)nlen;
		memcpy(m->target.u.name, buf + off, nlen);
		m->target.u.name[nlen] = '\0';
		off += nlen + 1;
	} else {
		m->target.type = ADDR_IPV4;
		memcpy(m->target.u.v4, buf + 4, 4);
	}
	m->ulen = (uint8_t)ulen;
	memcpy(m->user, buf + SOCKS4_HDR_LEN, ulen);
	m->user[ulen] = '\0';
	p->stage = SOCKS_STAGE_DONE;
	return (int)off;
}

/* SOCKS5 greeting: VER NMETHODS METHODS. */
static int parse_s5_greeting(struct socks_parser *p, const uint8_t *buf,
			     size_t len, struct socks_msg *m)
{
	size_t n;

	if (len < 2)
		return 0;
	n = buf[1];
	if (n == 0)
		return fail(p, SOCKS_REPLY_NOMETHOD,
			    "SOCKS5 greeting offers no methods");
	if (len < 2 + n)
		return 0;

	msg_reset(m, SOCKS_MSG_S5_GREETING, 5);
	m->nmethods = (uint8_t)n;
	memcpy(m->methods, buf + 2, n);
	p->stage = SOCKS_STAGE_S5_METHOD;
	p->method = SOCKS5_METHOD_NONE; /* the caller must choose */
	return (int)(2 + n);
}

/* RFC 1929: VER(1) ULEN UNAME PLEN PASSWD. Called with len >= 1. */
static int parse_s5_auth(struct socks_parser *p, const uint8_t *buf,
			 size_t len, struct socks_msg *m)
{
	size_t ulen, plen;

	if (buf[0] != RFC1929_VERSION)
		return fail(p, SOCKS_REPLY_AUTHFAIL,
			    "RFC 1929 version is not 1");
	if (len < 2)
		return 0;
	ulen = buf[1];
	if (ulen == 0)
		return fail(p, SOCKS_REPLY_AUTHFAIL, "RFC 1929 empty user");
	if (len < 2 + ulen)
		return 0;
	if (has_nul(buf + 2, ulen))
		return fail(p, SOCKS_REPLY_AUTHFAIL, "RFC 1929 NUL in user");
	if (len < 2 + ulen + 1)
		return 0;
	plen = buf[2 + ulen];
	if (plen == 0)
		return fail(p, SOCKS_REPLY_AUTHFAIL,
			    "RFC 1929 empty password");
	if (len < 3 + ulen + plen)
		return 0;
	if (has_nul(buf + 3 + ulen, plen))
		return fail(p, SOCKS_REPLY_AUTHFAIL,
			    "RFC 1929 NUL in password");

	msg_reset(m, SOCKS_MSG_S5_AUTH, 5);
	m->ulen = (uint8_t)ulen;
	memcpy(m->user, buf + 2, ulen);
	m->user[ulen] = '\0';
	m->plen = (uint8_t)plen;
	memcpy(m->pass, buf + 3 + ulen, plen);
	m->pass[plen] = '\0';
	p->stage = SOCKS_STAGE_S5_REQUEST;
	return (int)(3 + ulen + plen);
}

/* SOCKS5 request: VER CMD RSV ATYP DST.ADDR DST.PORT. Called with
 * len >= 1. */
static int parse_s5_request(struct socks_parser *p, const uint8_t *buf,
			    size_t len, struct socks_msg *m)
{
	const uint8_t *a;
	int alen;

	if (buf[0] != 5)
		return fail(p, SOCKS_REPLY_NONE,
			    "SOCKS5 request version is not 5");
	if (len <= SOCKS5_REQ_HDR)
		return 0;
	a = buf + SOCKS5_REQ_HDR;
	alen = s5_addr_len(a, len - SOCKS5_REQ_HDR);
	if (alen == -1)
		return fail(p, SOCKS5_REP_ATYP_UNSUPPORTED,
			    "SOCKS5 unknown address type");
	if (alen == -2)
		return fail(p, SOCKS5_REP_FAIL, "SOCKS5 empty domain name");
	if (alen == 0)
		return 0;
	if (s5_domain_has_nul(a))
		return fail(p, SOCKS5_REP_FAIL, "SOCKS5 NUL in domain name");
	if (a[0] == ADDR_DOMAIN && !addr_name_valid((const char *)a + 2, a[1]))
		return fail(p, SOCKS5_REP_FAIL, "SOCKS5 bad domain name");

	msg_reset(m, SOCKS_MSG_S5_REQUEST, 5);
	m->cmd = buf[1];
	s5_addr_decode(a, &m->target);
	p->stage = SOCKS_STAGE_DONE;
	return SOCKS5_REQ_HDR + alen;
}

/* Stage S5_METHOD: the message after the greeting depends on the method
 * the caller chose. */
static int parse_after_greeting(struct socks_parser *p, const uint8_t *buf,
				size_t len, struct socks_msg *m)
{
	switch (p->method) {
	case SOCKS5_METHOD_USERPASS:
		return len == 0 ? 0 : parse_s5_auth(p, buf, len, m);
	case SOCKS5_METHOD_NOAUTH:
		return len == 0 ? 0 : parse_s5_request(p, buf, len, m);
	case SOCKS5_METHOD_NONE:
		return fail(p, SOCKS_REPLY_NONE, "method not selected");
	default:
		return fail(p, SOCKS_REPLY_NONE, "unsupported method");
	}
}

void socks_proto_init(struct socks_parser *p)
{
	p->stage = SOCKS_STAGE_START;
	p->method = SOCKS5_METHOD_NONE;
	p->reply = SOCKS_REPLY_NONE;
	p->why = NULL;
}

int socks_proto_parse(struct socks_parser *p, const uint8_t *buf, size_t len,
		      struct socks_msg *m)
{
	switch (p->stage) {
	case SOCKS_STAGE_START:
		if (len == 0)
			return 0;
		if (buf[0] == 4)
			return parse_s4(p, buf, len, m);
		if (buf[0] == 5)
			return parse_s5_greeting(p, buf, len, m);
		return fail(p, SOCKS_REPLY_NONE, "unknown SOCKS version");
	case SOCKS_STAGE_S5_METHOD:
		return parse_after_greeting(p, buf, len, m);
	case SOCKS_STAGE_S5_REQUEST:
		return len == 0 ? 0 : parse_s5_request(p, buf, len, m);
	default:
		return fail(p, SOCKS_REPLY_NONE, "no more SOCKS messages");
	}
}

uint8_t socks_proto_select_method(const struct socks_msg *greeting,
				  bool auth_required)
{
	size_t i;

	for (i = 0; i < greeting->nmethods; i++) {
		uint8_t method = greeting->methods[i];

		if (method == SOCKS5_METHOD_NOAUTH && !auth_required)
			return SOCKS5_METHOD_NOAUTH;
		if (method == SOCKS5_METHOD_USERPASS)
			return SOCKS5_METHOD_USERPASS;
	}
	return SOCKS5_METHOD_NONE;
}

size_t socks_proto_s4_reply(uint8_t out[8], uint8_t cd)
{
	memset(out, 0, 8);
	out[1] = cd;
	return 8;
}

size_t socks_proto_s5_method_reply(uint8_t out[2], uint8_t method)
{
	out[0] = 5;
	out[1] = method;
	return 2;
}

size_t socks_proto_s5_auth_reply(uint8_t out[2], uint8_t status)
{
	out[0] = RFC1929_VERSION;
	out[1] = status;
	return 2;
}

size_t socks_proto_s5_reply(uint8_t out[22], uint8_t rep,
			    const struct sockaddr *bnd)
{
	out[0] = 5;
	out[1] = rep;
	out[2] = 0;
	if (bnd != NULL && bnd->sa_family == AF_INET6) {
		struct sockaddr_in6 in6;

		memcpy(&in6, bnd, sizeof(in6));
		out[3] = ADDR_IPV6;
		memcpy(out + 4, &in6.sin6_addr, 16);
		memcpy(out + 20, &in6.sin6_port, 2);
		return 22;
	}
	out[3] = ADDR_IPV4;
	if (bnd != NULL && bnd->sa_family == AF_INET) {
		struct sockaddr_in in4;

		memcpy(&in4, bnd, sizeof(in4));
		memcpy(out + 4, &in4.sin_addr, 4);
		memcpy(out + 8, &in4.sin_port, 2);
	} else {
		memset(out + 4, 0, 6);
	}
	return 10;
}

/* Client side. */

/* The host name of a SOCKS4A request for target: the domain itself, or
 * the textual IPv6 address. Returns its length, or -1. */
static int c4_hostname(const struct netaddr *target, char *buf, size_t cap)
{
	size_t n;

	if (target->type == ADDR_IPV6) {
		if (inet_ntop(AF_INET6, target->u.v6, buf, (socklen_t)cap) ==
		    NULL)
			return -1;
		return (int)strlen(buf);
	}
	n = target->namelen;
	if (n == 0 || n >= cap || has_nul((const uint8_t *)target->u.name, n))
		return -1;
	memcpy(buf, target->u.name, n);
	buf[n] = '\0';
	return (int)n;
}

size_t socks_proto_c4_request(uint8_t *out, size_t cap,
			      const struct netaddr *target, const char *userid)
{
	char host[ADDR_NAME_MAX + 1];
	size_t ulen, need;
	int hlen = -1;

	if (userid == NULL)
		userid = "";
	ulen = strnlen(userid, SOCKS_USERID_MAX + 1);
	if (ulen > SOCKS_USERID_MAX)
		return 0;
	switch (target->type) {
	case ADDR_IPV4:
		break;
	case ADDR_DOMAIN:
	case ADDR_IPV6:
		hlen = c4_hostname(target, host, sizeof(host));
		if (hlen < 0)
			return 0;
		break;
	default:
		return 0;
	}
	need = SOCKS4_HDR_LEN + ulen + 1 + (hlen < 0 ? 0 : (size_t)hlen + 1);
	if (cap < need)
		return 0;

	out[0] = 4;
	out[1] = SOCKS4_CMD_CONNECT;
	put_be16(out + 2, target->port);
	if (hlen < 0) {
		memcpy(out + 4, target->u.v4, 4);
	} else {
		static const uint8_t s4a_ip[4] = { 0, 0, 0, 1 };

		memcpy(out + 4, s4a_ip, 4);
	}
	memcpy(out + SOCKS4_HDR_LEN, userid, ulen + 1);
	if (hlen >= 0)
		memcpy(out + SOCKS4_HDR_LEN + ulen + 1, host, (size_t)hlen + 1);
	return need;
}

int socks_proto_c4_reply(const uint8_t *buf, size_t len, uint8_t *cd)
{
	if (len >= 1 && buf[0] != 0)
		return -1;
	if (len < 8)
		return 0;
	*cd = buf[1];
	return 8;
}

size_t socks_proto_c5_greeting(uint8_t *out, size_t cap, bool with_auth)
{
	size_t need = with_auth ? 4 : 3;

	if (cap < need)
		return 0;
	out[0] = 5;
	out[1] = with_auth ? 2 : 1;
	out[2] = SOCKS5_METHOD_NOAUTH;
	if (with_auth)
		out[3] = SOCKS5_METHOD_USERPASS;
	return need;
}

int socks_proto_c5_method(const uint8_t *buf, size_t len, uint8_t *method)
{
	if (len >= 1 && buf[0] != 5)
		return -1;
	if (len < 2)
		return 0;
	*method = buf[1];
	return 2;
}

size_t socks_proto_c5_auth(uint8_t *out, size_t cap, const char *user,
			   const char *pass)
{
	size_t ulen, plen, need;

	if (user == NULL || pass == NULL)
		return 0;
	ulen = strnlen(user, SOCKS_USERID_MAX + 1);
	plen = strnlen(pass, SOCKS_USERID_MAX + 1);
	if (ulen == 0 || ulen > SOCKS_USERID_MAX || plen == 0 ||
	    plen > SOCKS_USERID_MAX)
		return 0;
	need = 3 + ulen + plen;
	if (cap < need)
		return 0;
	out[0] = RFC1929_VERSION;
	out[1] = (uint8_t)ulen;
	memcpy(out + 2, user, ulen);
	out[2 + ulen] = (uint8_t)plen;
	memcpy(out + 3 + ulen, pass, plen);
	return need;
}

int socks_proto_c5_auth_reply(const uint8_t *buf, size_t len,
			      uint8_t *status)
{
	if (len >= 1 && buf[0] != RFC1929_VERSION)
		return -1;
	if (len < 2)
		return 0;
	*status = buf[1];
	return 2;
}

size_t socks_proto_c5_connect(uint8_t *out, size_t cap,
			      const struct netaddr *target)
{
	return socks_proto_c5_request(out, cap, SOCKS5_CMD_CONNECT, target);
}

/* ATYP + address + port for addr at out (cap bytes). The length, or 0. */
static size_t s5_addr_encode(uint8_t *out, size_t cap,
			     const struct netaddr *addr)
{
	const void *a;
	size_t alen, off = 1;

	switch (addr->type) {
	case ADDR_IPV4:
		a = addr->u.v4;
		alen = 4;
		break;
	case ADDR_IPV6:
		a = addr->u.v6;
		alen = 16;
		break;
	case ADDR_DOMAIN:
		a = addr->u.name;
		alen = addr->namelen;
		if (alen == 0 || has_nul(a, alen))
			return 0;
		off = 2;
		break;
	default:
		return 0;
	}
	if (cap < off + alen + 2)
		return 0;
	out[0] = addr->type;
	if (addr->type == ADDR_DOMAIN)
		out[1] = (uint8_t)alen;
	memcpy(out + off, a, alen);
	put_be16(out + off + alen, addr->port);
	return off + alen + 2;
}

int socks_proto_udp_parse(const uint8_t *buf, size_t len, uint8_t *frag,
			  struct netaddr *dst)
{
	int alen;

	if (len < 4 || buf[0] != 0 || buf[1] != 0)
		return -1;
	alen = s5_addr_len(buf + 3, len - 3);
	if (alen <= 0 || s5_domain_has_nul(buf + 3) ||
	    (buf[3] == ADDR_DOMAIN &&
	     !addr_name_valid((const char *)buf + 5, buf[4])))
		return -1;
	*frag = buf[2];
	s5_addr_decode(buf + 3, dst);
	return 3 + alen;
}

size_t socks_proto_udp_header(uint8_t *out, size_t cap,
			      const struct netaddr *addr)
{
	size_t n;

	if (cap < 3)
		return 0;
	n = s5_addr_encode(out + 3, cap - 3, addr);
	if (n == 0)
		return 0;
	out[0] = out[1] = out[2] = 0;
	return 3 + n;
}

size_t socks_proto_c5_request(uint8_t *out, size_t cap, uint8_t cmd,
			      const struct netaddr *target)
{
	size_t n;

	if (cap < 3)
		return 0;
	n = s5_addr_encode(out + 3, cap - 3, target);
	if (n == 0)
		return 0;
	out[0] = 5;
	out[1] = cmd;
	out[2] = 0;
	return 3 + n;
}

/* A BND domain that is empty or holds a NUL is treated as malformed, so
 * that a returned netaddr name always matches its namelen. */
int socks_proto_c5_reply(const uint8_t *buf, size_t len, uint8_t *rep,
			 struct netaddr *bnd)
{
	const uint8_t *a;
	int alen;

	if (len >= 1 && buf[0] != 5)
		return -1;
	if (len <= SOCKS5_REQ_HDR)
		return 0;
	a = buf + SOCKS5_REQ_HDR;
	alen = s5_addr_len(a, len - SOCKS5_REQ_HDR);
	if (alen < 0)
		return -1;
	if (alen == 0)
		return 0;
	if (s5_domain_has_nul(a))
		return -1;
	*rep = buf[1];
	if (bnd != NULL)
		s5_addr_decode(a, bnd);
	return SOCKS5_REQ_HDR + alen;
}
