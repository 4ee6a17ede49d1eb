/* accesslog: the access line, one format for every driver: key=value
 * fields after the session's "[#id]", so that a line can be grepped and
 * shipped as it is (docs/usage.md#access-log):
 *
 *   [#3] client=127.0.0.1:34414 proto=socks5 user=alice
 *   target=example.com:80 route=direct reply=00 up=86 down=5000205
 *   dur=0.019 outcome=ok
 *
 * A value is written bare when it is printable ASCII without a space, '"'
 * or '\'; else in double quotes, with '"', '\', '%' and bytes outside
 * printable ASCII as %HH. A field without a value is left out, except
 * route ('-' when nothing was dialed) and outcome. A driver's own fields
 * (more) come after reply:
 *
 *   [#4] client=127.0.0.1:50922 proto=socks5-udp route=- reply=00
 *   relay=127.0.0.1:41377 dests=3 refused=1 datagrams=12/11 dropped=2
 *   up=9600 down=8800 dur=4.210 outcome=ok */
#ifndef NEOSOCKSD_ACCESSLOG_H
#define NEOSOCKSD_ACCESSLOG_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* A field of one driver's own (a UDP association's relay and counts). */
struct accesslog_field {
	const char *key;   /* [a-z]+ */
	const char *value; /* escaped as any value; NULL: left out */
};

struct accesslog {
	const char *id;              /* "3", or "7.2": connection.request */
	const struct sockaddr *client;
	const char *proto;           /* socks4, socks4a, socks5, http, ... */
	const char *user;            /* accesslog_user_text()'s, or NULL */
	const char *method, *url;    /* a forwarded HTTP request's, or NULL */
	const char *target;          /* "host:port" asked for, or NULL */
	const char *route;           /* the chain ("direct", or the hops
				      * "socks5://a->http://b"), or NULL when
				      * nothing was dialed */
	const char *to;              /* the address the ruleset sent it to
				      * instead of target, or NULL */
	const char *block;           /* the --block-outbound class (or
				      * "self") that refused it, or NULL */
	int status;                  /* HTTP status answered, or 0 */
	int reply;                   /* SOCKS reply code, or -1 */
	int socks_version;           /* 4 or 5: how reply is written */
	const struct accesslog_field *more; /* after reply, in order */
	size_t nmore;
	uint64_t up, down;           /* bytes from / to the client */
	double dur;                  /* seconds */
	const char *outcome;         /* "ok" or why not */
};

/* A user name from the network as the user field: percent-encoded like a
 * URL's userinfo (space, '%', quotes, backslash and bytes outside
 * printable ASCII as %HH), cut with "..." to fit cap. */
void accesslog_user_text(const char *in, char *out, size_t cap);
/* Log a at info level (--loglevel 5). */
void accesslog_write(const struct accesslog *a);
/* Format a into buf (without "[#id] "): the length, or -1 if cut. */
int accesslog_format(const struct accesslog *a, char *buf, size_t cap);

#endif
