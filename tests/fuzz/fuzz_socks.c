/* Fuzz target: the SOCKS4/4A/5 parsers (src/front/socks_proto.c).
 *
 * Server side: the input after one flag byte is a client's byte stream.
 * Every message is parsed whole and then from each shorter prefix with the
 * same state: a prefix of a message that parses must need more (0), and a
 * prefix of one that fails must not parse. A decoded request target is
 * encoded again by the client-side encoder and parsed back: the same
 * target and command (encode then decode). Client side: the reply
 * parsers over the same bytes. UDP: the same bytes as a datagram's SOCKS5
 * UDP header; one that parses is encoded again to the same bytes (FRAG
 * aside) and every shorter prefix of it is refused. */
#include "fuzz.h"

#include "front/socks_proto.h"

static void fuzz_socks_check_msg(const struct socks_msg *m)
{
	FUZZ_CHECK(m->kind >= SOCKS_MSG_S4_REQUEST &&
		   m->kind <= SOCKS_MSG_S5_REQUEST);
	FUZZ_CHECK(m->user[m->ulen] == '\0' && strlen(m->user) == m->ulen);
	FUZZ_CHECK(m->pass[m->plen] == '\0' && strlen(m->pass) == m->plen);
	if (m->kind == SOCKS_MSG_S4_REQUEST || m->kind == SOCKS_MSG_S5_REQUEST) {
		const struct netaddr *t = &m->target;

		FUZZ_CHECK(t->type == ADDR_IPV4 || t->type == ADDR_IPV6 ||
			   t->type == ADDR_DOMAIN);
		if (t->type == ADDR_DOMAIN)
			FUZZ_CHECK(t->namelen > 0 &&
				   t->u.name[t->namelen] == '\0' &&
				   strlen(t->u.name) == t->namelen);
	}
}

/* The request decoded again from the client encoder's bytes. */
static void fuzz_socks_reencode(const struct socks_msg *m)
{
	struct socks_parser p;
	struct socks_msg back;
	uint8_t out[600];
	size_t n;
	int r;

	socks_proto_init(&p);
	if (m->kind == SOCKS_MSG_S5_REQUEST) {
		n = socks_proto_c5_request(out, sizeof(out), m->cmd,
					   &m->target);
		FUZZ_CHECK(n > 0);
		p.stage = SOCKS_STAGE_S5_REQUEST;
	} else {
		n = socks_proto_c4_request(out, sizeof(out), &m->target,
					   m->user);
		FUZZ_CHECK(n > 0);
	}
	r = socks_proto_parse(&p, out, n, &back);
	FUZZ_CHECK(r == (int)n);
	FUZZ_CHECK(addr_equal(&m->target, &back.target));
	FUZZ_CHECK(m->kind == SOCKS_MSG_S4_REQUEST || back.cmd == m->cmd);
	if (m->kind == SOCKS_MSG_S4_REQUEST)
		FUZZ_CHECK(strcmp(back.user, m->user) == 0);
}

static void fuzz_socks_server(const uint8_t *d, size_t n, bool auth)
{
	struct socks_parser p;
	struct socks_msg m, m2;
	size_t off = 0;

	socks_proto_init(&p);
	while (off <= n) {
		struct socks_parser saved = p;
		int r = socks_proto_parse(&p, d + off, n - off, &m);
		size_t upto = r > 0 ? (size_t)r : n - off;

		FUZZ_CHECK(r <= (int)(n - off));
		for (size_t k = 0; k < upto && k < 1024; k++) {
			struct socks_parser q = saved;
			int rk = socks_proto_parse(&q, d + off, k, &m2);

			FUZZ_CHECK(r > 0 ? rk == 0 : rk <= 0);
		}
		if (r < 0) {
			FUZZ_CHECK(p.why != NULL);
			FUZZ_CHECK(p.stage == SOCKS_STAGE_DONE);
			return;
		}
		if (r == 0)
			return;
		fuzz_socks_check_msg(&m);
		off += (size_t)r;
		switch (m.kind) {
		case SOCKS_MSG_S5_GREETING:
			p.method = socks_proto_select_method(&m, auth);
			if (p.method == SOCKS5_METHOD_NONE)
				return;
			FUZZ_CHECK(memchr(m.methods, p.method, m.nmethods));
			break;
		case SOCKS_MSG_S5_AUTH:
			break;
		default: /* a request: the last message */
			fuzz_socks_reencode(&m);
			return;
		}
	}
}

static void fuzz_socks_client(const uint8_t *d, size_t n)
{
	uint8_t cd, method, status, rep;
	struct netaddr bnd;
	int r;

	r = socks_proto_c4_reply(d, n, &cd);
	FUZZ_CHECK(r <= (int)n && (r <= 0 || r == 8));
	r = socks_proto_c5_method(d, n, &method);
	FUZZ_CHECK(r <= (int)n && (r <= 0 || r == 2));
	r = socks_proto_c5_auth_reply(d, n, &status);
	FUZZ_CHECK(r <= (int)n && (r <= 0 || r == 2));
	r = socks_proto_c5_reply(d, n, &rep, &bnd);
	FUZZ_CHECK(r <= (int)n);
	if (r > 0) {
		/* every prefix needs more */
		for (size_t k = 0; k < (size_t)r; k++)
			FUZZ_CHECK(socks_proto_c5_reply(d, k, &rep, NULL) == 0);
	}
}

static void fuzz_socks_udp(const uint8_t *d, size_t n)
{
	uint8_t frag, out[SOCKS_UDP_HDR_MAX];
	struct netaddr dst, back;
	int r = socks_proto_udp_parse(d, n, &frag, &dst);
	size_t len;

	FUZZ_CHECK(r != 0 && r <= (int)n);
	if (r < 0)
		return;
	FUZZ_CHECK(frag == d[2]);
	FUZZ_CHECK(r >= 4 + 2 && (size_t)r <= n && r <= SOCKS_UDP_HDR_MAX);
	FUZZ_CHECK(dst.type == ADDR_IPV4 || dst.type == ADDR_IPV6 ||
		   dst.type == ADDR_DOMAIN);
	if (dst.type == ADDR_DOMAIN)
		FUZZ_CHECK(dst.namelen > 0 && strlen(dst.u.name) == dst.namelen);
	len = socks_proto_udp_header(out, sizeof(out), &dst);
	FUZZ_CHECK(len == (size_t)r && out[2] == 0);
	FUZZ_CHECK(memcmp(out + 3, d + 3, len - 3) == 0);
	FUZZ_CHECK(socks_proto_udp_parse(out, len, &frag, &back) == r &&
		   frag == 0 && addr_equal(&dst, &back));
	for (size_t k = 0; k < len; k++)
		FUZZ_CHECK(socks_proto_udp_parse(d, k, &frag, &back) < 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	fuzz_socks_server(data + 1, size - 1, data[0] & 1);
	fuzz_socks_client(data + 1, size - 1);
	fuzz_socks_udp(data + 1, size - 1);
	return 0;
}
