/* dial: open an outbound TCP connection to a target, directly or through a
 * chain of proxies (first hop first). Resolves the first hop, applies the
 * --block-outbound policy to it, connects, then asks each proxy for the
 * next hop and the last for the target. Asynchronous; the result arrives
 * through a callback, never inside dial_start(). */
#ifndef NEOSOCKSD_DIAL_H
#define NEOSOCKSD_DIAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>

#include "common/addr.h"
#include "common/proxyuri.h"

struct dialer;

enum dial_err {
	DIAL_OK = 0,
	DIAL_ERR_CANCELLED,
	DIAL_ERR_SYSTEM,
	DIAL_ERR_RESOLVE,
	DIAL_ERR_CONNECT,        /* sys_errno tells which */
	DIAL_ERR_PROXY_PROTO,
	DIAL_ERR_PROXY_AUTH,
	DIAL_ERR_PROXY_REFUSED,
	DIAL_ERR_PROXY_REJECTED,
	DIAL_ERR_EOF,
	DIAL_ERR_BLOCKED,
	DIAL_ERR_TIMEOUT,
	/* not dial errors proper: the ruleset's verdicts, reported to the
	 * protocol drivers through the same path */
	DIAL_ERR_RULESET_REJECT,
	DIAL_ERR_RULESET_ERROR,
	DIAL_ERR_RULESET_DOWN,
};

/* The reference's dialer error strings. */
const char *dial_strerror(enum dial_err e);

struct dial_result {
	enum dial_err err;
	int sys_errno;        /* DIAL_ERR_CONNECT / SYSTEM */
	int fd;               /* DIAL_OK: connected socket, owned by the callee */
	uint8_t upstream_rep; /* SOCKS5 REP from the last proxy, 0 if none */
	uint64_t latency_us;  /* DIAL_OK: start to ready, proxies included */
	uint64_t rx, tx;      /* bytes exchanged with proxies */
	/* for the reasons given to clients: the first hop's address once
	 * known (valid during the callback only, else NULL), the proxy hop
	 * a DIAL_ERR_PROXY_* / EOF is about, and whether a DIAL_ERR_BLOCKED
	 * was for this daemon's own endpoint (else --block-outbound) */
	const struct sockaddr *peer;
	size_t hop;
	bool self_dial;
	/* DIAL_F_UDP: the last proxy's UDP relay (its BND) */
	struct netaddr bnd;
};

typedef void (*dial_cb)(const struct dial_result *r, void *arg);
/* The owner watches the dialer's socket: watch fd for flags (EV_READ and/or
 * EV_WRITE; 0 = stop) and pass every event to dial_on_event(). The owner
 * keeps the same event through to relaying, so the hand-off costs no
 * epoll changes. */
typedef void (*dial_watch_cb)(int fd, short flags, void *arg);

/* Where outbound sockets come from when the process may not make them
 * itself (-i, --mark: the parent's broker, front_priv.c). request() asks
 * for one of the family for d and returns a request id, or 0 when it
 * cannot ask; the answer comes to dial_priv_socket(). cancel() forgets a
 * request d gave up. */
struct dial_broker {
	uint32_t (*request)(int family, struct dialer *d);
	void (*cancel)(uint32_t id);
};

/* Settings shared by every dial. */
struct dial_policy {
	bool block_loopback, block_multicast, block_local, block_global;
	bool tcp_nodelay, tcp_keepalive, fastopen_connect;
	int sndbuf, rcvbuf;
	/* NULL: sockets are made here; else each is asked of the broker */
	const struct dial_broker *broker;
};

/* The broker's answer: fd >= 0, or err. */
void dial_priv_socket(struct dialer *d, int fd, int err);

void dial_setup(struct event_base *base, const struct dial_policy *p);
/* Does --block-outbound refuse this first hop (or UDP destination)? */
bool dial_blocked(const struct sockaddr *sa);
/* Do outbound sockets come from the parent (-i, --mark)? */
bool dial_brokered(void);

/* dial_start flags. DIAL_F_SELF_OK: the first hop may be one of this
 * daemon's own listeners or its API (selfdial.h); only for connections
 * the ruleset process makes for itself (RPC), never for a client's. */
#define DIAL_F_SELF_OK 1u
/* DIAL_F_UDP: the last hop (a socks5:// proxy) is asked for a UDP
 * ASSOCIATE with target as DST instead of a CONNECT; the result's fd is
 * the association's control connection and bnd its relay address. */
#define DIAL_F_UDP 2u

/* Start. hops[0..nhops) must stay valid until the callback. Returns the
 * dialer, or NULL when out of memory. On success the callback gets the
 * socket (still watched by the owner); on failure, and on cancel, the
 * dialer closes it: the owner stops watching it first (in the callback, or
 * before dial_cancel). */
struct dialer *dial_start(const struct netaddr *target,
			  const struct proxy_hop *hops, size_t nhops,
			  unsigned flags, dial_cb cb, dial_watch_cb watch,
			  void *arg);
/* An event on the socket the owner watches for this dialer. */
void dial_on_event(struct dialer *d, short what);
/* Abort; the callback will not run. */
void dial_cancel(struct dialer *d);

#endif
