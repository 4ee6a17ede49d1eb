/* api: the REST API's types, served by the ruleset process on the listener
 * the parent bound. api_conn.c is the HTTP/1.1 transport (keep-alive,
 * in-order pipelining, limits, deadlines); api_access.c who may ask
 * (allowlist, tokens, Host and Origin); api_routes.c the endpoints;
 * api_text.c the /stats and /metrics formats. */
#ifndef NEOSOCKSD_API_H
#define NEOSOCKSD_API_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/config.h"
#include "common/msg.h"

#define API_BODY_MAX (4u << 20) /* request bodies, also after inflating */
#define API_TEXT_MAX (64u << 20) /* an answer's text (/stats, /metrics) */

enum api_level {
	API_NONE = 0,
	API_READ,  /* GET /healthy, /stats, /metrics */
	API_ADMIN, /* everything else */
};

struct api_conn;

struct api_req {
	struct api_conn *conn;
	uint32_t seq;          /* per connection, for ordering */
	char method[16];
	char path[256];        /* decoded, without the query */
	char query[1024];      /* raw, without '?' */
	char content_type[128];
	bool accept_deflate;
	bool keepalive;
	int level;             /* what the credentials allow (enum api_level) */
	char *body;            /* decoded (inflated) body, NUL-terminated */
	size_t body_len;
};

struct api_counters {
	uint64_t requests, success;
	uint64_t rx, tx;
	uint64_t by_status[6]; /* 1xx..5xx, other */
	uint32_t conns;
};

#endif
