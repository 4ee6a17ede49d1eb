/* route_wire: encoding of the routing messages between the front and the
 * ruleset process. Pure; every decode checks lengths exactly. */
#ifndef NEOSOCKSD_ROUTE_WIRE_H
#define NEOSOCKSD_ROUTE_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "common/msg.h"

struct route_str {
	const char *p;
	uint16_t len;
};

/* A decision: result, the target address and the hops, first hop first. */
struct route_decision {
	uint16_t result; /* enum route_result */
	uint16_t nhops;
	struct route_str addr;
	struct route_str hops[ROUTE_HOPS_MAX];
};

/* Encode into buf (at least sizeof(struct msg_route) + MSG_ROUTE_STRS_MAX
 * bytes). Returns the length, or -1 when a string is too long or there are
 * too many hops. */
int route_wire_encode(char *buf, size_t cap, const struct route_decision *d);
/* Decode a MSG_ROUTE_REPLY / MSG_FORWARD_REQ payload; the strings point
 * into data. Strings must be 1..ROUTE_STR_MAX bytes without NULs (addr may
 * be empty only when result is not ROUTE_GO). 0 or -1. */
int route_wire_decode(const void *data, size_t len, struct route_decision *d);

/* A request: kind, target "host:port", optional user and password. */
struct route_request {
	uint16_t kind; /* enum route_kind */
	struct route_str addr, user, pass;
	uint8_t has_user, has_pass;
};
int route_wire_encode_req(char *buf, size_t cap, const struct route_request *r);
int route_wire_decode_req(const void *data, size_t len, struct route_request *r);

#endif
