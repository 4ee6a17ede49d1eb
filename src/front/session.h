/* session: one client connection from accept to close.
 *
 * States: HANDSHAKE (the protocol driver parses the client's request) ->
 * ROUTE (a decision is being made) -> DIAL (the upstream connection is
 * being opened) -> RELAY (bytes flow) -> CLOSED. Every path ends in
 * session_close(), which logs one access line and frees the session from
 * the event loop later, never inside the callback that noticed the end.
 *
 * The handshake context (buffer, parser, dialer, deadline) is allocated at
 * accept and freed when relaying starts; an established tunnel keeps only
 * the small struct session. */
#ifndef NEOSOCKSD_SESSION_H
#define NEOSOCKSD_SESSION_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>

#include <event2/event.h>
#include <event2/event_struct.h>

#include "common/addr.h"
#include "common/http1.h"
#include "common/msg.h"
#include "common/proxyuri.h"
#include "front/dial.h"
#include "front/relay.h"
#include "front/socks_proto.h"

enum sess_state {
	SS_HANDSHAKE = 0,
	SS_ROUTE,
	SS_DIAL,
	SS_RELAY,
	SS_CLOSED,
};

enum sess_proto {
	PROTO_NONE = 0,
	PROTO_SOCKS4,
	PROTO_SOCKS4A,
	PROTO_SOCKS5,
	PROTO_HTTP,
	PROTO_FORWARD,
};

union sockaddr_u {
	struct sockaddr sa;
	struct sockaddr_in sin;
	struct sockaddr_in6 sin6;
};

struct session;

/* A protocol driver: SOCKS, HTTP CONNECT or plain forwarding. */
struct sess_driver {
	uint16_t bufsize; /* handshake buffer */
	/* A connection was accepted (hs allocated, zeroed). Optional. */
	void (*on_accept)(struct session *s);
	/* Client bytes arrived in hs->buf[hs->off .. hs->len). */
	void (*on_read)(struct session *s);
	/* The dial finished. On success send the success reply and return
	 * 0 to start relaying; on failure send the error reply. -1 closes. */
	int (*on_dialed)(struct session *s, const struct dial_result *r);
	/* The handshake deadline passed. Send a reply if the protocol has
	 * one for it. */
	void (*on_timeout)(struct session *s);
};

struct hs {
	struct event timer;
	struct dialer *dial;
	struct netaddr target;
	const struct proxy_hop *hops;
	size_t nhops;
	struct proxy_hop *own_hops; /* hops decided by the ruleset */
	bool request_done; /* a whole request was parsed */
	bool forwarding;   /* the dial was asked for by await.forward */
	bool has_user, has_pass;
	char user[SOCKS_USERID_MAX + 1];
	char pass[SOCKS_USERID_MAX + 1];
	union {
		struct socks_parser socks;
		struct http1_parser http;
	} p;
	uint16_t cap, len, off; /* buf: capacity, bytes held, consumed */
	uint8_t buf[];
};

struct session {
	struct session *prev, *next; /* live or dead list */
	struct session *route_next;  /* route.c's pending table */
	bool route_pending;          /* a decision is awaited */
	bool route_owned;            /* route (below) is allocated */
	bool dialed;                 /* a dial started (the log names its
				      * route; else "via -") */
	uint32_t id;
	uint8_t state; /* enum sess_state */
	uint8_t proto; /* enum sess_proto */
	uint8_t lkind; /* enum listener_kind */
	short cflags, uflags; /* events currently watched */
	int cfd, ufd;
	struct event cev, uev;
	const struct sess_driver *drv;
	struct hs *hs;
	struct relay_dir up, down; /* client->upstream, upstream->client */
	uint64_t bytes_up, bytes_down;
	int64_t t_start_us;
	union sockaddr_u client;
	char *target; /* "host:port" for the access log */
	char *route;  /* the chain used, NULL when direct */
};

/* Counters shared with /stats (issue: REST API) and the access log. */
struct front_stats {
	uint64_t accepts, accept_drops;
	uint64_t requests, success;
	uint64_t reject_ruleset, reject_timeout, reject_upstream;
	uint64_t bytes_up, bytes_down;
	uint64_t hs_rx, hs_tx;     /* handshake bytes with clients */
	uint64_t dial_rx, dial_tx; /* handshake bytes with proxies */
	uint32_t active, halfopen, peak;
	uint64_t dials, dial_us_sum;
	uint32_t lat[256]; /* the last dial latencies, microseconds */
	uint32_t nlat, latpos;
};
extern struct front_stats front_stats;

struct front_conf; /* front.h */

void session_setup(struct event_base *base, const struct front_conf *fc);
/* A connection was accepted on a listener of kind lkind. */
void session_accept(int fd, const struct sockaddr *sa, socklen_t salen,
		    int lkind);
/* The driver parsed a whole request into s->hs (target, credentials):
 * route it and dial. */
void session_request(struct session *s);
struct route_decision;
/* The ruleset decided (route.c). forward: an await.forward dial. */
void session_route_decided(struct session *s, const struct route_decision *d,
			   bool forward);
/* No decision can be had (err: DIAL_ERR_RULESET_*): reply and close. */
void session_route_failed(struct session *s, enum dial_err err);
/* Send a handshake reply to the client. 0, or -1 (the caller closes). */
int session_reply(struct session *s, const void *buf, size_t len);
/* The single way a session ends. outcome: short text for the log. */
void session_close(struct session *s, const char *outcome);
/* Stop all: close every session (shutdown). */
void session_close_all(const char *outcome);
unsigned session_count(void);

#endif
