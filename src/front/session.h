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
 * the small struct session.
 *
 * The HTTP forward proxy (httpfwd.c) runs several requests on one client
 * connection: each goes HANDSHAKE -> ROUTE -> DIAL (skipped when the
 * upstream connection is reused) -> EXCHANGE (the driver moves the request
 * and the response itself) and back to HANDSHAKE, with no handshake
 * context while the connection is idle. A driver may end a session with
 * LINGER: the last reply is sent, the client's unread bytes are drained
 * for a short bounded time so that the close does not reset the reply
 * away, then the session closes. */
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
#include "front/stats.h"

enum sess_state {
	SS_HANDSHAKE = 0,
	SS_ROUTE,
	SS_DIAL,
	SS_RELAY,
	SS_EXCHANGE, /* the driver's own exchange (HTTP forward proxy) */
	SS_LINGER,   /* answered; draining the client before the close */
	SS_CLOSED,
};

enum sess_proto {
	PROTO_NONE = 0,
	PROTO_SOCKS4,
	PROTO_SOCKS4A,
	PROTO_SOCKS5,
	PROTO_HTTP,
	PROTO_FORWARD,
	PROTO_SOCKS5_BIND, /* SOCKS5 BIND (socks_bind.c) */
	PROTO_SOCKS5_UDP,  /* SOCKS5 UDP ASSOCIATE (udp_assoc.c) */
	PROTO_TPROXY,      /* --tproxy: the original destination */
};

/* What refused a dial (DIAL_ERR_BLOCKED), for the access line. */
enum sess_block {
	SESS_BLOCK_NONE = 0,
	SESS_BLOCK_SELF,  /* this daemon's own listener or API */
	SESS_BLOCK_CLASS, /* + enum addr_class: --block-outbound */
};

union sockaddr_u {
	struct sockaddr sa;
	struct sockaddr_in sin;
	struct sockaddr_in6 sin6;
};

struct session;

/* s->rdy: the edges seen and not yet used up */
#define SESS_RDY_CR 1 /* the client socket is readable (or at EOF) */
#define SESS_RDY_CW 2 /* ... writable */
#define SESS_RDY_UR 4 /* the upstream socket is readable */
#define SESS_RDY_UW 8 /* ... writable */
#define SESS_RDY_CH 16 /* the client shut its sending side (EOF pending) */
#define SESS_RDY_UH 32 /* the upstream did */

/* A protocol driver: SOCKS, HTTP CONNECT or plain forwarding. */
struct sess_driver {
	uint16_t bufsize; /* handshake buffer */
	/* A connection was accepted (hs allocated, zeroed). Optional. */
	void (*on_accept)(struct session *s);
	/* Client bytes arrived in hs->buf[hs->off .. hs->len). */
	void (*on_read)(struct session *s);
	/* The dial finished. On success send the success reply and return
	 * 0 to start relaying, or 1 when the driver carries on itself
	 * (SS_EXCHANGE); on failure send the error reply. -1 closes. A
	 * driver may close the session itself (with its own outcome): what
	 * follows then does nothing. */
	int (*on_dialed)(struct session *s, const struct dial_result *r);
	/* The handshake deadline passed. Send a reply if the protocol has
	 * one for it (and possibly close, as above). */
	void (*on_timeout)(struct session *s);
	/* Optional: a decision was taken and a dial is about to start.
	 * Return true when the driver needs none (it reuses its upstream
	 * connection and has carried on). */
	bool (*before_dial)(struct session *s);
	/* Optional: events in SS_EXCHANGE, and on an idle upstream socket
	 * the driver keeps between requests. */
	void (*on_event)(struct session *s, short what, bool client);
	/* Optional: write the access line(s) for a closing session instead
	 * of session_log_line(). */
	void (*log)(struct session *s, const char *outcome);
	/* Optional: the session is closing; free the driver's state. */
	void (*on_close)(struct session *s);
	/* Optional: the daemon drains (SIGTERM): finish what is under way,
	 * accept no more requests on this connection. */
	void (*on_drain)(struct session *s);
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
	bool active;                 /* counted in front_stats.active (not
				      * halfopen) */
	uint32_t id;
	uint8_t state; /* enum sess_state */
	uint8_t proto; /* enum sess_proto */
	uint8_t lkind; /* enum listener_kind */
	uint8_t block; /* SESS_BLOCK_*: what refused the dial, for the log */
	int16_t reply; /* the SOCKS reply code sent, -1 none (for the log) */
	short cflags, uflags; /* events currently watched (EV_ET: for the
			       * tunnel's life, see session_watch_et()) */
	uint8_t rdy;          /* SESS_RDY_*: what the edges said */
	bool more;            /* on the list of tunnels to resume */
	struct session *more_next;
	int cfd, ufd;
	struct event cev, uev;
	const struct sess_driver *drv;
	struct hs *hs;
	struct relay_dir up, down; /* client->upstream, upstream->client */
	uint64_t bytes_up, bytes_down;
	int64_t t_start_us;
	union sockaddr_u client;
	char *target; /* "host:port" for the access log */
	char *user;   /* the user name the client gave, or NULL (the log) */
	char *route;  /* the chain used, NULL when direct; when owned, the
		       * redirected address follows its NUL ("" if none) */
	struct httpfwd *fwd; /* the HTTP forward proxy's state, or NULL */
	struct udp_assoc *udp; /* SOCKS5 UDP ASSOCIATE's, or NULL */
	struct socks_bind *bind; /* SOCKS5 BIND's, or NULL */
};

struct front_conf; /* front.h */

void session_setup(struct event_base *base, const struct front_conf *fc);
/* A connection was accepted on a listener of kind lkind. readable: the
 * listener defers accepting until the client's first bytes are in (read
 * them now instead of waiting for an event). */
void session_accept(int fd, const struct sockaddr *sa, socklen_t salen,
		    int lkind, bool readable);
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
/* End after a final reply: log now, release everything but the client
 * socket, shut its sending side, and close once the client has closed or
 * a short bounded time (or amount read) has passed. */
void session_linger(struct session *s, const char *outcome);
/* The access line session_close() writes by default. */
void session_log_line(const struct session *s, const char *outcome);
/* The access line's user: the name the client gave (hs), made safe. */
void session_note_user(struct session *s);
struct accesslog;
/* The fields every access line of s has (client, proto, user, target,
 * route, block, reply); the caller adds the rest. */
void session_log_fields(const struct session *s, struct accesslog *a);
/* Count the session as established (front_stats.active) from now on. */
void session_set_active(struct session *s);
/* Start relaying as a tunnel: the handshake context's unread bytes go
 * upstream first. */
void session_start_relay(struct session *s);
/* Watch the client (true) or upstream socket for exactly flags, level-
 * triggered (the handshake, the dialer, the HTTP forward proxy). */
void session_watch(struct session *s, bool client, short flags);
/* Watch it for reading and writing, edge-triggered: one registration that
 * stays as it is until the socket closes (the client from accept, both
 * sockets of a tunnel). What each edge said is kept in s->rdy. */
void session_watch_et(struct session *s, bool client);
/* The handshake context for the next request of a connection: a fresh
 * one (deadline armed, driver's on_accept run), or the current one reset
 * with its unread bytes kept. -1 when out of memory. */
int session_hs_next(struct session *s);
/* Free the handshake context (an idle keep-alive connection has none). */
void session_hs_free(struct session *s);
/* Dial the decided target through the decided hops (again). */
void session_dial(struct session *s);
/* Forget the per-request parts (target, route) before the next request. */
void session_reset_request(struct session *s);
/* The handshake deadline from now (again). */
void session_arm_deadline(struct session *s);
/* SIGTERM: tell every driver that can to wind down its connections. */
void session_drain(void);
/* Stop all: close every session (shutdown). */
void session_close_all(const char *outcome);
unsigned session_count(void);
/* A new id from the sessions' space (for other requests to the ruleset:
 * a UDP association's destinations). */
uint32_t session_new_id(void);

#endif
