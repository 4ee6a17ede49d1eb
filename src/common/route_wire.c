#include "common/route_wire.h"

#include <stdbool.h>
#include <string.h>

static bool route_str_ok(const char *p, size_t len, size_t max, bool empty_ok)
{
	return len <= max && (empty_ok || len > 0) && memchr(p, '\0', len) == NULL;
}

static int put(char *buf, size_t cap, size_t *off, const void *p, size_t n)
{
	if (n == 0)
		return 0; /* p may be NULL then */
	if (n > cap - *off)
		return -1;
	memcpy(buf + *off, p, n);
	*off += n;
	return 0;
}

static int put_str(char *buf, size_t cap, size_t *off, struct route_str s)
{
	uint16_t n = s.len;

	if (put(buf, cap, off, &n, sizeof(n)) < 0)
		return -1;
	return put(buf, cap, off, s.p, n);
}

int route_wire_encode(char *buf, size_t cap, const struct route_decision *d)
{
	struct msg_route h = { .result = d->result, .nhops = d->nhops };
	size_t off = 0;

	if (d->nhops > ROUTE_HOPS_MAX || d->addr.len > ROUTE_STR_MAX)
		return -1;
	if (put(buf, cap, &off, &h, sizeof(h)) < 0 ||
	    put_str(buf, cap, &off, d->addr) < 0)
		return -1;
	for (unsigned i = 0; i < d->nhops; i++) {
		if (d->hops[i].len > ROUTE_STR_MAX ||
		    put_str(buf, cap, &off, d->hops[i]) < 0)
			return -1;
	}
	return (int)off;
}

static int get_str(const char *p, size_t len, size_t *off, struct route_str *s,
		   size_t max, bool empty_ok)
{
	uint16_t n;

	if (len - *off < sizeof(n))
		return -1;
	memcpy(&n, p + *off, sizeof(n));
	*off += sizeof(n);
	if (len - *off < n || !route_str_ok(p + *off, n, max, empty_ok))
		return -1;
	s->p = p + *off;
	s->len = n;
	*off += n;
	return 0;
}

int route_wire_decode(const void *data, size_t len, struct route_decision *d)
{
	const char *p = data;
	struct msg_route h;
	size_t off = sizeof(h);

	if (len < sizeof(h))
		return -1;
	memcpy(&h, p, sizeof(h));
	if (h.nhops > ROUTE_HOPS_MAX || h.result < ROUTE_GO ||
	    h.result > ROUTE_DONE)
		return -1;
	memset(d, 0, sizeof(*d));
	d->result = h.result;
	d->nhops = h.nhops;
	if (get_str(p, len, &off, &d->addr, ROUTE_STR_MAX,
		    h.result != ROUTE_GO) < 0)
		return -1;
	for (unsigned i = 0; i < h.nhops; i++)
		if (get_str(p, len, &off, &d->hops[i], ROUTE_STR_MAX, false) < 0)
			return -1;
	return off == len ? 0 : -1;
}

int route_wire_encode_req(char *buf, size_t cap, const struct route_request *r)
{
	struct msg_route_req h = {
		.kind = r->kind,
		.flags = (uint16_t)((r->has_user ? ROUTE_F_USER : 0) |
				    (r->has_pass ? ROUTE_F_PASS : 0)),
		.addrlen = r->addr.len,
		.userlen = r->has_user ? r->user.len : 0,
		.passlen = r->has_pass ? r->pass.len : 0,
	};
	size_t off = 0;

	if (h.addrlen > ROUTE_STR_MAX || h.userlen > ROUTE_CRED_MAX ||
	    h.passlen > ROUTE_CRED_MAX)
		return -1;
	if (put(buf, cap, &off, &h, sizeof(h)) < 0 ||
	    put(buf, cap, &off, r->addr.p, h.addrlen) < 0 ||
	    put(buf, cap, &off, r->user.p, h.userlen) < 0 ||
	    put(buf, cap, &off, r->pass.p, h.passlen) < 0)
		return -1;
	return (int)off;
}

int route_wire_decode_req(const void *data, size_t len, struct route_request *r)
{
	const char *p = data;
	struct msg_route_req h;

	if (len < sizeof(h))
		return -1;
	memcpy(&h, p, sizeof(h));
	if (h.kind < ROUTE_KIND_RESOLVE || h.kind > ROUTE_KIND_ROUTE6 ||
	    (h.flags & ~(ROUTE_F_USER | ROUTE_F_PASS)) != 0 ||
	    h.addrlen == 0 || h.addrlen > ROUTE_STR_MAX ||
	    h.userlen > ROUTE_CRED_MAX || h.passlen > ROUTE_CRED_MAX ||
	    (!(h.flags & ROUTE_F_USER) && h.userlen) ||
	    (!(h.flags & ROUTE_F_PASS) && h.passlen) ||
	    len != sizeof(h) + (size_t)h.addrlen + h.userlen + h.passlen)
		return -1;
	memset(r, 0, sizeof(*r));
	r->kind = h.kind;
	r->addr = (struct route_str){ p + sizeof(h), h.addrlen };
	r->user = (struct route_str){ r->addr.p + h.addrlen, h.userlen };
	r->pass = (struct route_str){ r->user.p + h.userlen, h.passlen };
	r->has_user = (h.flags & ROUTE_F_USER) != 0;
	r->has_pass = (h.flags & ROUTE_F_PASS) != 0;
	if (!route_str_ok(r->addr.p, h.addrlen, ROUTE_STR_MAX, false) ||
	    !route_str_ok(r->user.p, h.userlen, ROUTE_CRED_MAX, true) ||
	    !route_str_ok(r->pass.p, h.passlen, ROUTE_CRED_MAX, true))
		return -1;
	return 0;
}
