/* Fuzz target: the routing messages between the front and the ruleset
 * process (src/common/route_wire.c), both ways.
 *
 * Decode then encode: a payload that decodes is encoded again to the very
 * same bytes (the padding of a request aside), so nothing is accepted that
 * the sender could not have meant. Encode then decode: a decision or a
 * request built from the input's bytes either does not encode or decodes
 * to what was encoded, exactly when its strings are valid. */
#include "fuzz.h"

#include "common/route_wire.h"

static bool fuzz_route_str_ok(struct route_str s, size_t max, bool empty_ok)
{
	return s.len <= max && (empty_ok || s.len > 0) &&
	       memchr(s.p, '\0', s.len) == NULL;
}

static bool fuzz_route_str_eq(struct route_str a, struct route_str b)
{
	return a.len == b.len && memcmp(a.p, b.p, a.len) == 0;
}

static void fuzz_route_decode(const uint8_t *d, size_t n)
{
	static char buf[sizeof(struct msg_route) + MSG_ROUTE_STRS_MAX];
	struct route_decision dec;
	struct route_request req;
	int len;

	if (route_wire_decode(d, n, &dec) == 0) {
		FUZZ_CHECK(dec.result >= ROUTE_GO && dec.result <= ROUTE_DONE);
		FUZZ_CHECK(dec.nhops <= ROUTE_HOPS_MAX);
		FUZZ_CHECK(fuzz_route_str_ok(dec.addr, ROUTE_STR_MAX,
					     dec.result != ROUTE_GO));
		for (unsigned i = 0; i < dec.nhops; i++)
			FUZZ_CHECK(fuzz_route_str_ok(dec.hops[i], ROUTE_STR_MAX,
						     false));
		len = route_wire_encode(buf, sizeof(buf), &dec);
		FUZZ_CHECK(len == (int)n && memcmp(buf, d, n) == 0);
	}
	if (route_wire_decode_req(d, n, &req) == 0) {
		struct msg_route_req h;

		FUZZ_CHECK(req.kind >= ROUTE_KIND_RESOLVE &&
			   req.kind <= ROUTE_KIND_ROUTE6);
		FUZZ_CHECK(fuzz_route_str_ok(req.addr, ROUTE_STR_MAX, false));
		FUZZ_CHECK(fuzz_route_str_ok(req.user, ROUTE_CRED_MAX, true));
		FUZZ_CHECK(fuzz_route_str_ok(req.pass, ROUTE_CRED_MAX, true));
		len = route_wire_encode_req(buf, sizeof(buf), &req);
		FUZZ_CHECK(len == (int)n);
		memcpy(&h, d, sizeof(h));
		h.pad = 0;
		FUZZ_CHECK(memcmp(buf, &h, sizeof(h)) == 0 &&
			   memcmp(buf + sizeof(h), d + sizeof(h),
				  n - sizeof(h)) == 0);
	}
}

static struct route_str fuzz_route_take(struct fuzz_in *in, size_t max)
{
	size_t n = ((size_t)fuzz_byte(in) << 8 | fuzz_byte(in)) % (max + 2);
	struct route_str s = { (const char *)in->p, 0 };

	if (n > in->n)
		n = in->n;
	s.len = (uint16_t)n;
	in->p += n;
	in->n -= n;
	return s;
}

static void fuzz_route_encode(const uint8_t *d, size_t n)
{
	static char buf[sizeof(struct msg_route) + MSG_ROUTE_STRS_MAX];
	struct fuzz_in in = { d, n };
	struct route_decision dec = { 0 }, back;
	struct route_request req = { 0 }, rback;
	bool valid;
	int len;

	dec.result = fuzz_byte(&in) % 7;
	dec.nhops = fuzz_byte(&in) % (ROUTE_HOPS_MAX + 1);
	dec.addr = fuzz_route_take(&in, ROUTE_STR_MAX);
	valid = dec.result >= ROUTE_GO && dec.result <= ROUTE_DONE &&
		fuzz_route_str_ok(dec.addr, ROUTE_STR_MAX,
				  dec.result != ROUTE_GO);
	for (unsigned i = 0; i < dec.nhops; i++) {
		dec.hops[i] = fuzz_route_take(&in, ROUTE_STR_MAX);
		valid = valid && fuzz_route_str_ok(dec.hops[i], ROUTE_STR_MAX,
						   false);
	}
	len = route_wire_encode(buf, sizeof(buf), &dec);
	if (len >= 0) {
		FUZZ_CHECK((route_wire_decode(buf, (size_t)len, &back) == 0) ==
			   valid);
		if (valid) {
			FUZZ_CHECK(back.result == dec.result &&
				   back.nhops == dec.nhops &&
				   fuzz_route_str_eq(back.addr, dec.addr));
			for (unsigned i = 0; i < dec.nhops; i++)
				FUZZ_CHECK(fuzz_route_str_eq(back.hops[i],
							     dec.hops[i]));
		}
	} else {
		FUZZ_CHECK(!valid);
	}
	req.kind = fuzz_byte(&in) % 5;
	req.has_user = fuzz_byte(&in) & 1;
	req.has_pass = fuzz_byte(&in) & 1;
	req.addr = fuzz_route_take(&in, ROUTE_STR_MAX);
	req.user = fuzz_route_take(&in, ROUTE_CRED_MAX);
	req.pass = fuzz_route_take(&in, ROUTE_CRED_MAX);
	len = route_wire_encode_req(buf, sizeof(buf), &req);
	if (len < 0)
		return;
	valid = req.kind >= ROUTE_KIND_RESOLVE &&
		req.kind <= ROUTE_KIND_ROUTE6 &&
		fuzz_route_str_ok(req.addr, ROUTE_STR_MAX, false) &&
		(!req.has_user ||
		 fuzz_route_str_ok(req.user, ROUTE_CRED_MAX, true)) &&
		(!req.has_pass ||
		 fuzz_route_str_ok(req.pass, ROUTE_CRED_MAX, true));
	FUZZ_CHECK((route_wire_decode_req(buf, (size_t)len, &rback) == 0) ==
		   valid);
	if (valid)
		FUZZ_CHECK(rback.kind == req.kind &&
			   rback.has_user == req.has_user &&
			   rback.has_pass == req.has_pass &&
			   fuzz_route_str_eq(rback.addr, req.addr) &&
			   (!req.has_user ||
			    fuzz_route_str_eq(rback.user, req.user)) &&
			   (!req.has_pass ||
			    fuzz_route_str_eq(rback.pass, req.pass)));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	if (data[0] & 1)
		fuzz_route_encode(data + 1, size - 1);
	else
		fuzz_route_decode(data + 1, size - 1);
	return 0;
}
