/* http1fwd: the pure pieces of the HTTP/1.1 forward proxy (RFC 9110,
 * RFC 9112): absolute-form request targets, the heads forwarded each way
 * (origin-form request line, Host from the URI, hop-by-hop fields
 * removed, Via added, Connection set by the proxy), message body framing,
 * and chunk headers for re-chunked bodies.
 *
 * No sockets, no allocation: every function reads a head parsed by
 * http1_parse() in the caller's buffer and writes into the caller's. */
#ifndef NEOSOCKSD_HTTP1FWD_H
#define NEOSOCKSD_HTTP1FWD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/addr.h"
#include "common/http1.h"

/* A request-target in absolute form: "http://" authority path-and-query. */
struct http1fwd_uri {
	struct netaddr target;      /* host and port (80 when absent) */
	struct http1_span authority; /* host[:port] as written: the Host */
	struct http1_span path;     /* from the first '/' or '?' to the
				     * end; empty when the URI has none */
	struct http1_span pathonly; /* path without "?query" (for logs) */
};

/* Parse the request-target span of buf. Returns 0, or -1 with *why set to
 * a static sentence for the client (the answer is 400): an origin-form or
 * asterisk-form target ("this is a proxy..."), an https:// URL ("use
 * CONNECT..."), another scheme, userinfo, a fragment, a bad host or port.
 * Host names must pass addr_name_valid(). */
int http1fwd_parse_uri(const char *buf, struct http1_span target,
		       struct http1fwd_uri *u, const char **why);

/* How a message body is delimited (RFC 9112 6.3). */
enum http1fwd_framing {
	HTTP1FWD_NONE = 0, /* no body */
	HTTP1FWD_LENGTH,   /* Content-Length bytes */
	HTTP1FWD_CHUNKED,  /* chunked transfer coding */
	HTTP1FWD_CLOSE,    /* until the server closes (responses only) */
	HTTP1FWD_TUNNEL,   /* 101 Switching Protocols: raw bytes both ways */
};

/* What the proxy needs to know about a parsed request. */
struct http1fwd_req {
	uint8_t framing;    /* NONE, LENGTH or CHUNKED */
	uint64_t length;    /* LENGTH: the body's size */
	bool keepalive;     /* the client wants the connection kept */
	bool upgrade;       /* Connection: upgrade with an Upgrade field, and
			     * no body: forwarded as an upgrade */
	bool head;          /* method HEAD: the response has no body */
	bool expect_continue;
	bool options;       /* method OPTIONS (an empty path becomes "*") */
};

void http1fwd_request_info(const char *buf, const struct http1_head *h,
			   struct http1fwd_req *r);

/* Write the request head sent upstream: "METHOD path HTTP/1.1", Host from
 * the URI, the client's fields in their order except the hop-by-hop ones
 * (Connection and the fields it names, Keep-Alive, Proxy-Connection,
 * Proxy-Authorization, Proxy-Authenticate, TE, Trailer, Upgrade unless
 * r->upgrade) and Host, then "Via: 1.x neosocksd" and, for an upgrade,
 * "Connection: upgrade". Returns the length, or -1 if cap is too small. */
int http1fwd_request_head(char *out, size_t cap, const char *buf,
			  const struct http1_head *h,
			  const struct http1fwd_uri *u,
			  const struct http1fwd_req *r);

/* What the proxy needs to know about a parsed response. */
struct http1fwd_resp {
	uint8_t framing;   /* enum http1fwd_framing */
	uint64_t length;   /* LENGTH */
	bool interim;      /* 1xx other than an accepted 101 */
	bool reusable;     /* the origin keeps the connection open after it */
};

/* req: the request it answers. */
void http1fwd_response_info(const char *buf, const struct http1_head *h,
			    const struct http1fwd_req *req,
			    struct http1fwd_resp *r);

/* How the proxy ends the response head it sends to the client. */
enum http1fwd_conn {
	HTTP1FWD_CONN_KEEP = 0, /* HTTP/1.1 client: nothing (persistent) */
	HTTP1FWD_CONN_KEEP10,   /* HTTP/1.0 client: Connection: keep-alive */
	HTTP1FWD_CONN_CLOSE,    /* Connection: close */
	HTTP1FWD_CONN_UPGRADE,  /* 101: Connection: upgrade */
};

/* Write the response head sent to the client: "HTTP/1.1 code reason",
 * the origin's fields in their order except the hop-by-hop ones (as for
 * requests; Upgrade is kept for CONN_UPGRADE), "Via: 1.x neosocksd" and
 * the Connection field conn asks for. dechunk: the body is sent without
 * its chunk framing (to an HTTP/1.0 client), so Transfer-Encoding is
 * left out. Returns the length, or -1 if cap is too small. */
int http1fwd_response_head(char *out, size_t cap, const char *buf,
			   const struct http1_head *h,
			   enum http1fwd_conn conn, bool dechunk);

/* The chunk header for size bytes ("\r\n" first when a chunk's data
 * precedes it); size 0 writes the last chunk and the empty trailer.
 * Returns the length (at most HTTP1FWD_CHUNK_HDR_MAX), or -1. */
#define HTTP1FWD_CHUNK_HDR_MAX 24
int http1fwd_chunk_header(char *out, size_t cap, uint64_t size,
			  bool crlf_first);

/* Is the field name a hop-by-hop field of this message (the fixed list,
 * or named by its Connection field)? keep_upgrade: Upgrade is not. */
bool http1fwd_is_hop_by_hop(const char *buf, const struct http1_head *h,
			    struct http1_span name, bool keep_upgrade);

#endif
