/* http1: a strict HTTP/1.x message-head parser and response encoders.
 *
 * Pure: no sockets, no libevent, no allocation. The caller owns the byte
 * buffer and the state. The parser is resumable: call http1_parse() again
 * with the same buffer base and a larger length as more bytes arrive; it
 * continues where it stopped.
 *
 * Contract of http1_parse(): -1 error (p->status holds the HTTP status to
 * answer: 400, 431, 501 or 505; p->why a static reason for logs), 0 need
 * more bytes, >0 the head is complete and that many bytes (request line,
 * fields and the empty line) belong to it. Bytes after the head (a body,
 * a pipelined request, tunnel payload) are left to the caller. The head
 * struct need not persist between calls: it is written by the call that
 * returns > 0.
 *
 * Refused with 400: bare LF or bare CR, NUL or other control bytes (HTAB
 * allowed inside field values), obs-fold (a line starting with SP/HTAB),
 * whitespace before the colon, an empty or non-token field name, a bad
 * request line, a bad or duplicate Content-Length, Content-Length together
 * with Transfer-Encoding, duplicate Transfer-Encoding, duplicate Host.
 * 501: a Transfer-Encoding other than "chunked" in a request. 505: HTTP
 * major version other than 1. 431: a head longer than HTTP1_MAX_HEAD bytes
 * or more than HTTP1_MAX_FIELDS fields. */
#ifndef NEOSOCKSD_HTTP1_H
#define NEOSOCKSD_HTTP1_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HTTP1_MAX_HEAD 8192
#define HTTP1_MAX_FIELDS 64
/* What http1_parser_limits() may raise the limits to (a forward proxy
 * reads origin responses, whose heads are larger than requests'). The
 * spans are 16-bit offsets: no head can be longer. */
#define HTTP1_HEAD_CAP 65535
#define HTTP1_FIELDS_CAP 128

/* A slice of the caller's buffer. */
struct http1_span {
	uint16_t off, len;
};

struct http1_field {
	struct http1_span name, value; /* value without surrounding OWS */
};

enum http1_kind {
	HTTP1_REQUEST = 1,
	HTTP1_RESPONSE,
};

/* Connection header tokens seen (bit set). */
enum {
	HTTP1_CONN_CLOSE = 1u << 0,
	HTTP1_CONN_KEEPALIVE = 1u << 1,
	HTTP1_CONN_UPGRADE = 1u << 2,
};

/* Index into fields[] of headers the daemon looks at; -1 when absent. */
enum http1_known {
	HTTP1_H_HOST,
	HTTP1_H_PROXY_AUTHORIZATION,
	HTTP1_H_AUTHORIZATION,
	HTTP1_H_EXPECT,
	HTTP1_H_CONTENT_ENCODING,
	HTTP1_H_CONTENT_TYPE,
	HTTP1_H_ACCEPT_ENCODING,
	HTTP1_H_ORIGIN,
	HTTP1_H_UPGRADE,
	HTTP1_H_PROXY_CONNECTION,
	HTTP1_H_COUNT
};

struct http1_head {
	/* request line (HTTP1_REQUEST) */
	struct http1_span method, target;
	/* status line (HTTP1_RESPONSE) */
	int status;
	struct http1_span reason;
	int version_minor; /* 0 or 1 ("HTTP/1.x" with x > 1 counts as 1) */
	uint16_t nfields;
	struct http1_field fields[HTTP1_FIELDS_CAP];
	int64_t content_length; /* -1 when absent */
	bool chunked;           /* Transfer-Encoding: chunked */
	unsigned conn;          /* HTTP1_CONN_* bits from Connection */
	int16_t known[HTTP1_H_COUNT];
};

/* Parser state; treat as opaque except status and why. */
struct http1_parser {
	uint8_t kind;   /* enum http1_kind */
	uint8_t state;
	uint8_t maxfields; /* HTTP1_MAX_FIELDS unless raised */
	uint16_t pos;   /* next byte to examine */
	uint16_t line;  /* start of the current line */
	uint16_t maxhead; /* HTTP1_MAX_HEAD unless raised */
	int status;     /* on error: HTTP status to answer */
	const char *why; /* on error: static text for logs */
};

void http1_parser_init(struct http1_parser *p, enum http1_kind kind);
/* Other limits than HTTP1_MAX_HEAD bytes and HTTP1_MAX_FIELDS fields,
 * clamped to HTTP1_HEAD_CAP and HTTP1_FIELDS_CAP. Call after init, before
 * the first parse. */
void http1_parser_limits(struct http1_parser *p, size_t maxhead,
			 unsigned maxfields);

int http1_parse(struct http1_parser *p, const char *buf, size_t len,
		struct http1_head *h);

/* Helpers over a parsed head and its buffer. */
bool http1_span_eq(const char *buf, struct http1_span s, const char *lit);
bool http1_span_eq_ci(const char *buf, struct http1_span s, const char *lit);
/* True when the comma-separated list in span s contains token tok
 * (case-insensitive, OWS around elements ignored, q-values ignored). */
bool http1_list_has(const char *buf, struct http1_span s, const char *tok);
/* The same with a token that is not NUL-terminated. */
bool http1_list_has_n(const char *buf, struct http1_span s, const char *tok,
		      size_t toklen);
/* The value span of a known header, or NULL. */
const struct http1_span *http1_known_value(const struct http1_head *h,
					   enum http1_known k);

/* Decode "Basic <base64(user:pass)>" (scheme case-insensitive). The user
 * is what precedes the first ':'. Both are NUL-terminated into the caller's
 * buffers. Returns 0, or -1 when malformed, without a ':', or too long. */
int http1_basic_auth_decode(const char *value, size_t len, char *user,
			    size_t usercap, char *pass, size_t passcap);

/* Canonical reason phrase ("OK", "Not Found", ...; "Unknown" otherwise). */
const char *http1_reason(int status);

/* A complete error response: status line, Connection: close,
 * Content-Type: text/plain; charset=utf-8, X-Content-Type-Options: nosniff,
 * Content-Length, any extra header lines (each ending in CRLF, may be
 * NULL), and the body "<status> <reason>\n". Returns the length, or -1 if
 * cap is too small. */
int http1_error_response(char *buf, size_t cap, int status,
			 const char *extra_headers);
/* The same with the body "<text>\n" instead: a short reason an operator
 * understands. text must not hold CR or LF. */
int http1_error_response_text(char *buf, size_t cap, int status,
			      const char *extra_headers, const char *text);

/* Do the first bytes of a stream look like an HTTP request line (an
 * upper-case method of 3 to 16 letters and a space)? 1 yes, 0 cannot
 * tell yet (all letters so far), -1 no. Used to answer a client that
 * speaks HTTP to a SOCKS port. */
int http1_sniff_request(const char *buf, size_t len);

/* Build "CONNECT host:port HTTP/1.1\r\n" + (when user != NULL)
 * "Proxy-Authorization: Basic <b64(user:pass)>\r\n" + "\r\n". No Host
 * header. Returns the length, or -1 if cap is too small. */
int http1_connect_request(char *buf, size_t cap, const char *hostport,
			  const char *user, const char *pass);

/* Incremental decoder for a chunked body (RFC 9112 7.1). Chunk extensions
 * are skipped (bounded), trailers are read and discarded (bounded).
 * http1_chunked_decode() consumes from in[0..inlen) and appends payload to
 * out[0..outcap) starting at *outlen. Returns the number of input bytes
 * consumed (>= 0), or -1 on malformed input. c->done is set when the
 * final CRLF after the last chunk has been consumed; bytes after it are
 * not consumed. It stops early when out is full. */
struct http1_chunked {
	uint8_t state;
	bool done;
	uint16_t linelen;  /* bytes of the current size/ext/trailer line */
	uint64_t remaining; /* payload bytes left in the current chunk */
};
void http1_chunked_init(struct http1_chunked *c);
long http1_chunked_decode(struct http1_chunked *c, const char *in,
			  size_t inlen, char *out, size_t outcap,
			  size_t *outlen);
/* Payload bytes of the current chunk not yet decoded: a caller may move
 * them itself (splice) instead of through http1_chunked_decode(), then
 * report them with http1_chunked_take(). 0 outside chunk data. */
uint64_t http1_chunked_data_left(const struct http1_chunked *c);
/* n (<= data_left) payload bytes were moved by the caller. */
void http1_chunked_take(struct http1_chunked *c, uint64_t n);

#endif
