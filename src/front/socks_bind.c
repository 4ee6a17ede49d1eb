/* socks_bind: SOCKS5 BIND (RFC 1928 section 4), behind
 * --enable-socks5-bind.
 *
 * The request's DST is decided like a CONNECT's (ruleset, --block-outbound;
 * a refusal is REP 02). The parent brokers a listening TCP socket on the
 * front's outbound address towards DST, port 0 (the front never binds);
 * the first reply gives that address. One peer is accepted (with a
 * non-zero DST.ADDR, only from that address; others are closed), the
 * second reply names it, and the session relays like a CONNECT. -t bounds
 * the wait. A decision with proxy hops cannot be honoured: BIND listens on
 * this host. */
#include "front/socks_bind.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "front/dial.h"
#include "front/front_priv.h"
#include "front/resolver.h"
#include "front/session.h"
#include "front/socks_proto.h"

#define BIND_ACCEPT_BATCH 16

struct socks_bind {
	uint32_t priv_req;
	struct resolver_query *rq;
	struct netaddr want; /* the peer's address (port ignored) */
	bool any;            /* DST.ADDR was unspecified */
};

static void socks_bind_fail(struct session *s, uint8_t rep, const char *why)
{
	uint8_t out[22];

	s->reply = rep;
	(void)session_reply(s, out, socks_proto_s5_reply(out, rep, NULL));
	session_close(s, why);
}

static void socks_bind_listening(void *arg, int fd, int err)
{
	struct session *s = arg;
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	uint8_t out[22];
	char why[96];

	s->bind->priv_req = 0;
	if (fd < 0) {
		snprintf(why, sizeof(why), "BIND: cannot listen: %s",
			 strerror(err));
		socks_bind_fail(s, SOCKS5_REP_FAIL, why);
		return;
	}
	s->ufd = fd;
	if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0) {
		socks_bind_fail(s, SOCKS5_REP_FAIL, "BIND: getsockname failed");
		return;
	}
	/* the first reply: where the peer is to connect */
	s->reply = SOCKS5_REP_SUCCEEDED;
	if (session_reply(s, out, socks_proto_s5_reply(out, SOCKS5_REP_SUCCEEDED,
						       (struct sockaddr *)&ss)) <
	    0) {
		session_close(s, "client write error");
		return;
	}
	session_watch(s, false, EV_READ);
}

/* Ask the parent for a listening socket on local. */
static void socks_bind_listen(struct session *s, const struct netaddr *local)
{
	struct msg_priv_addr req = { 0 };

	req.family = local->type == ADDR_IPV4 ? AF_INET : AF_INET6;
	memcpy(req.addr, local->u.v6, local->type == ADDR_IPV4 ? 4 : 16);
	s->bind->priv_req = front_priv_ask(MSG_PRIV_BIND, &req, sizeof(req),
					   socks_bind_listening, s);
	if (s->bind->priv_req == 0)
		socks_bind_fail(s, SOCKS5_REP_FAIL,
				"BIND: cannot ask for a socket");
}

/* The local address this host would use towards the peer: a UDP socket
 * connected to it (nothing is sent) tells. */
static int socks_bind_local_for(const struct sockaddr *peer, socklen_t plen,
				struct netaddr *local)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	int fd = socket(peer->sa_family, SOCK_DGRAM | SOCK_CLOEXEC, 0), rc = -1;

	if (fd < 0)
		return -1;
	if (connect(fd, peer, plen) == 0 &&
	    getsockname(fd, (struct sockaddr *)&ss, &len) == 0 &&
	    addr_from_sockaddr(local, (struct sockaddr *)&ss) == 0)
		rc = 0;
	close(fd);
	return rc;
}

static void socks_bind_peer_known(struct session *s,
				  const struct sockaddr *sa, socklen_t len)
{
	struct sockaddr_storage ss;
	struct netaddr local;

	memcpy(&ss, sa, len);
	if (ss.ss_family == AF_INET)
		((struct sockaddr_in *)&ss)->sin_port = htons(9);
	else
		((struct sockaddr_in6 *)&ss)->sin6_port = htons(9);
	if (addr_from_sockaddr(&s->bind->want, (struct sockaddr *)&ss) < 0) {
		socks_bind_fail(s, SOCKS5_REP_FAIL, "BIND: bad address");
		return;
	}
	(void)addr_unmap(&s->bind->want);
	if (dial_blocked((struct sockaddr *)&ss)) {
		socks_bind_fail(s, SOCKS5_REP_NOT_ALLOWED,
				dial_strerror(DIAL_ERR_BLOCKED));
		return;
	}
	if (socks_bind_local_for((struct sockaddr *)&ss, len, &local) < 0) {
		socks_bind_fail(s, SOCKS5_REP_NET_UNREACH,
				"BIND: no route to the peer");
		return;
	}
	(void)addr_unmap(&local);
	socks_bind_listen(s, &local);
}

static void socks_bind_resolved(int result, const struct sockaddr *sa,
				socklen_t len, void *arg)
{
	struct session *s = arg;

	s->bind->rq = NULL;
	if (result < 0) {
		socks_bind_fail(s, SOCKS5_REP_HOST_UNREACH,
				dial_strerror(DIAL_ERR_RESOLVE));
		return;
	}
	socks_bind_peer_known(s, sa, len);
}

static bool socks_bind_unspecified(const struct netaddr *na)
{
	static const uint8_t zero[16];

	return (na->type == ADDR_IPV4 && memcmp(na->u.v4, zero, 4) == 0) ||
	       (na->type == ADDR_IPV6 && memcmp(na->u.v6, zero, 16) == 0);
}

void socks_bind_start(struct session *s)
{
	struct hs *hs = s->hs;
	struct sockaddr_storage ss;
	socklen_t len = 0;
	struct netaddr local;
	int r;

	if (hs->nhops > 0) {
		socks_bind_fail(s, SOCKS5_REP_NOT_ALLOWED,
				"BIND cannot go through a proxy chain");
		return;
	}
	s->bind = calloc(1, sizeof(*s->bind));
	if (s->bind == NULL) {
		socks_bind_fail(s, SOCKS5_REP_FAIL, "out of memory");
		return;
	}
	if (socks_bind_unspecified(&hs->target)) {
		/* any peer: listen where the client reached us */
		len = sizeof(ss);
		s->bind->any = true;
		if (getsockname(s->cfd, (struct sockaddr *)&ss, &len) < 0 ||
		    addr_from_sockaddr(&local, (struct sockaddr *)&ss) < 0) {
			socks_bind_fail(s, SOCKS5_REP_FAIL, "BIND: getsockname");
			return;
		}
		(void)addr_unmap(&local);
		socks_bind_listen(s, &local);
		return;
	}
	if (hs->target.type != ADDR_DOMAIN) {
		len = (socklen_t)addr_to_sockaddr(&hs->target, &ss);
		socks_bind_peer_known(s, (struct sockaddr *)&ss, len);
		return;
	}
	r = resolver_lookup(hs->target.u.name, AF_UNSPEC, &ss, &len,
			    socks_bind_resolved, s, &s->bind->rq);
	if (r > 0)
		socks_bind_peer_known(s, (struct sockaddr *)&ss, len);
	else if (r < 0)
		socks_bind_fail(s, SOCKS5_REP_HOST_UNREACH,
				dial_strerror(DIAL_ERR_RESOLVE));
}

static bool socks_bind_peer_ok(const struct socks_bind *b,
			       const struct sockaddr *sa)
{
	struct netaddr got;

	if (b->any)
		return true;
	if (addr_from_sockaddr(&got, sa) < 0)
		return false;
	(void)addr_unmap(&got);
	return got.type == b->want.type &&
	       memcmp(got.u.v6, b->want.u.v6,
		      got.type == ADDR_IPV4 ? 4 : 16) == 0;
}

/* The listening socket is readable: the peer, or someone else. */
void socks_bind_on_event(struct session *s)
{
	for (int i = 0; i < BIND_ACCEPT_BATCH; i++) {
		struct sockaddr_storage ss;
		socklen_t len = sizeof(ss);
		int fd = accept4(s->ufd, (struct sockaddr *)&ss, &len,
				 SOCK_NONBLOCK | SOCK_CLOEXEC);
		uint8_t out[22];
		char who[ADDR_STRLEN];

		if (fd < 0)
			return; /* EAGAIN, or a connection already gone */
		if (!socks_bind_peer_ok(s->bind, (struct sockaddr *)&ss)) {
			if (addr_format_sockaddr((struct sockaddr *)&ss, who,
						 sizeof(who)) < 0)
				strcpy(who, "?");
			LOG_RL(LOGL_NOTICE, 10,
			       "[#%u] BIND: refused a connection from %s (not "
			       "the peer the request named)",
			       s->id, who);
			close(fd);
			continue;
		}
		/* the peer: the second reply names it, then relay */
		session_watch(s, false, 0);
		close(s->ufd);
		s->ufd = fd;
		if (session_reply(s, out,
				  socks_proto_s5_reply(out, SOCKS5_REP_SUCCEEDED,
						       (struct sockaddr *)&ss)) <
		    0) {
			session_close(s, "client write error");
			return;
		}
		front_stats.success++;
		session_start_relay(s);
		return;
	}
}

void socks_bind_free(struct socks_bind *b)
{
	if (b == NULL)
		return;
	if (b->priv_req != 0)
		front_priv_cancel(b->priv_req);
	if (b->rq != NULL)
		resolver_cancel(b->rq);
	free(b);
}
