/* udp_uplink: UDP through a chain of socks5:// hops h1..hn. Each hop k is
 * asked for its own UDP ASSOCIATE over a control connection dialed
 * through h1..h(k-1) (dial.c, DIAL_F_UDP), with DST 0.0.0.0:0: hop k then
 * takes datagrams from the IP of its control connection's peer (hop k-1,
 * or us) and the first port it sees. A datagram leaves in one UDP socket
 * connected to h1's relay, wrapped in one header per hop: the outer ones
 * name the next hop's relay, the inner one the destination; a reply comes
 * back wrapped the same way and is unwrapped. The control connections
 * stay open for the uplink's lifetime: one closing fails the uplink, and
 * its destinations are decided again later. */
#include "front/udp_assoc.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "common/log.h"
#include "front/front.h"
#include "front/front_priv.h"
#include "front/session.h"

enum { UL_CONNECTING, UL_READY, UL_FAILING };

struct udp_hop {
	struct udp_uplink *u;
	struct dialer *d;
	int fd;
	short flags;
	struct event ev;
	struct netaddr relay; /* its BND */
};

struct udp_uplink {
	struct udp_uplink *next;
	struct udp_assoc *a;
	char *key;
	struct proxy_hop *hops;
	size_t n;
	struct udp_hop *hop;
	unsigned ndone;
	int ufd;
	struct event uev;
	uint32_t priv_req;
	struct udp_dest *dests;
	uint8_t state;
	int64_t started_ms;
	size_t prefixlen;
	uint8_t prefix[]; /* headers naming relay 2..n */
};

static const struct netaddr udp_zero = { .type = ADDR_IPV4 };

bool udp_uplink_ready(const struct udp_uplink *u)
{
	return u->state == UL_READY;
}

static void udp_uplink_free(struct udp_uplink *u)
{
	struct udp_uplink **pp = &u->a->uplinks;

	while (*pp != NULL && *pp != u)
		pp = &(*pp)->next;
	if (*pp == u)
		*pp = u->next;
	u->a->nuplinks--;
	for (size_t k = 0; k < u->n; k++) {
		struct udp_hop *h = &u->hop[k];

		if (h->flags != 0)
			event_del(&h->ev);
		if (h->d != NULL)
			dial_cancel(h->d); /* closes its socket */
		else if (h->fd >= 0)
			close(h->fd);
	}
	if (u->priv_req != 0)
		front_priv_cancel(u->priv_req);
	if (u->ufd >= 0) {
		event_del(&u->uev);
		close(u->ufd);
	}
	explicit_bzero(u->hops, u->n * sizeof(*u->hops));
	free(u->hops);
	free(u->hop);
	if (u->key != NULL)
		explicit_bzero(u->key, strlen(u->key));
	free(u->key);
	free(u);
}

/* Every destination on it fails (decided again later); then it goes. */
static void udp_uplink_fail(struct udp_uplink *u, const char *why)
{
	u->state = UL_FAILING;
	while (u->dests != NULL)
		udp_assoc_dest_failed(u->dests, why);
	udp_uplink_free(u);
}

void udp_uplink_leave(struct udp_dest *d)
{
	struct udp_uplink *u = d->up;
	struct udp_dest **pp;

	if (u == NULL)
		return;
	for (pp = &u->dests; *pp != NULL && *pp != d; pp = &(*pp)->unext)
		;
	if (*pp == d)
		*pp = d->unext;
	d->up = NULL;
	d->unext = NULL;
	if (u->dests == NULL && u->state != UL_FAILING)
		udp_uplink_free(u);
}

/* ---- replies ---- */

static void udp_uplink_reply(struct udp_uplink *u, const uint8_t *p,
			     size_t len)
{
	struct netaddr src = { 0 };
	uint8_t frag;

	/* one header per hop; the innermost names the real source */
	for (size_t k = 0; k < u->n; k++) {
		int hl = socks_proto_udp_parse(p, len, &frag, &src);

		if (hl < 0 || frag != 0) {
			u->a->drops++;
			front_stats.udp_drops++;
			return;
		}
		p += hl;
		len -= (size_t)hl;
	}
	(void)addr_unmap(&src);
	for (struct udp_dest *d = u->dests; d != NULL; d = d->unext) {
		if (d->state == UD_READY && d->to.type == src.type &&
		    d->to.port == src.port &&
		    memcmp(&d->to.u, &src.u,
			   src.type == ADDR_IPV4   ? 4
			   : src.type == ADDR_IPV6 ? 16
						   : (size_t)src.namelen + 1) ==
			    0) {
			d->last_ms = udp_assoc_now_ms();
			if (d->redirected)
				src = d->addr;
			break;
		}
	}
	udp_assoc_to_client(u->a, &src, p, len);
}

static void udp_uplink_read_cb(evutil_socket_t fd, short what, void *arg)
{
	static uint8_t buf[UDP_DGRAM_MAX + 1];
	struct udp_uplink *u = arg;

	(void)what;
	for (int i = 0; i < UDP_BATCH; i++) {
		ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT | MSG_TRUNC);

		if (n < 0)
			return; /* EAGAIN, or an ICMP error: nothing to do */
		if ((size_t)n > UDP_DGRAM_MAX) {
			u->a->drops++;
			front_stats.udp_drops++;
			continue;
		}
		u->a->last_ms = udp_assoc_now_ms();
		udp_uplink_reply(u, buf, (size_t)n);
	}
}

int udp_uplink_send(struct udp_uplink *u, struct udp_dest *d,
		    const uint8_t *payload, size_t len)
{
	struct iovec iov[3] = { { u->prefix, u->prefixlen },
				{ d->hdr, d->hdrlen },
				{ (void *)payload, len } };
	struct msghdr mh = { .msg_iov = iov, .msg_iovlen = 3 };
	struct udp_assoc *a = u->a;

	if (u->state != UL_READY || sendmsg(u->ufd, &mh, MSG_DONTWAIT) < 0)
		return -1;
	a->pkts_up++;
	a->bytes_up += len;
	front_stats.udp_pkts_up++;
	front_stats.udp_bytes_up += len;
	return 0;
}

/* ---- setting up ---- */

static bool udp_unspecified(const struct netaddr *na)
{
	static const uint8_t zero[16];

	return (na->type == ADDR_IPV4 && memcmp(na->u.v4, zero, 4) == 0) ||
	       (na->type == ADDR_IPV6 && memcmp(na->u.v6, zero, 16) == 0);
}

/* Where hop k's relay is, as the previous hop should name it. */
static struct netaddr udp_relay_of(const struct udp_uplink *u, size_t k)
{
	struct netaddr r = u->hop[k].relay;

	if (udp_unspecified(&r)) {
		/* "the address you reached me at" */
		uint16_t port = r.port;

		r = u->hops[k].addr;
		r.port = port;
	}
	return r;
}

static void udp_uplink_up(struct udp_uplink *u)
{
	struct udp_dest *d, *next;

	u->state = UL_READY;
	for (d = u->dests; d != NULL; d = next) {
		next = d->unext;
		if (d->state == UD_LINKING)
			udp_assoc_dest_ready(d);
	}
}

static void udp_uplink_sock(struct udp_uplink *u, int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	struct netaddr r1 = u->hop[0].relay;

	u->ufd = fd;
	/* hop 1's relay: an unspecified BND is the address we reached */
	if (udp_unspecified(&r1) || r1.type == ADDR_DOMAIN) {
		if (getpeername(u->hop[0].fd, (struct sockaddr *)&ss, &len) < 0 ||
		    addr_from_sockaddr(&r1, (struct sockaddr *)&ss) < 0) {
			udp_uplink_fail(u, "the first proxy's relay is unknown");
			return;
		}
		r1.port = u->hop[0].relay.port;
	}
	len = (socklen_t)addr_to_sockaddr(&r1, &ss);
	if (connect(fd, (struct sockaddr *)&ss, len) < 0) {
		udp_uplink_fail(u, "cannot reach the first proxy's relay");
		return;
	}
	event_assign(&u->uev, udp_assoc_base(), fd, EV_READ | EV_PERSIST,
		     udp_uplink_read_cb, u);
	if (event_add(&u->uev, NULL) < 0) {
		udp_uplink_fail(u, "out of memory");
		return;
	}
	udp_uplink_up(u);
}

static void udp_uplink_brokered(void *arg, int fd, int err)
{
	struct udp_uplink *u = arg;

	u->priv_req = 0;
	if (fd < 0) {
		udp_uplink_fail(u, strerror(err));
		return;
	}
	udp_uplink_sock(u, fd);
}

/* Every hop answered: the headers, then the socket to hop 1's relay. */
static void udp_uplink_linked(struct udp_uplink *u)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	int family, fd;

	for (size_t k = 1; k < u->n; k++) {
		struct netaddr r = udp_relay_of(u, k);
		size_t n = socks_proto_udp_header(
			u->prefix + u->prefixlen,
			(u->n - 1) * SOCKS_UDP_HDR_MAX - u->prefixlen, &r);

		if (n == 0) {
			udp_uplink_fail(u, "a proxy named a bad relay");
			return;
		}
		u->prefixlen += n;
	}
	if (getpeername(u->hop[0].fd, (struct sockaddr *)&ss, &len) < 0) {
		udp_uplink_fail(u, "the first proxy went away");
		return;
	}
	family = ss.ss_family;
	if (u->hop[0].relay.type == ADDR_IPV4)
		family = AF_INET;
	else if (u->hop[0].relay.type == ADDR_IPV6 &&
		 !udp_unspecified(&u->hop[0].relay))
		family = AF_INET6;
	if (dial_brokered()) {
		struct msg_priv_socket req = { (uint32_t)family, SOCK_DGRAM };

		u->priv_req = front_priv_ask(MSG_PRIV_SOCKET, &req, sizeof(req),
					     udp_uplink_brokered, u);
		if (u->priv_req == 0)
			udp_uplink_fail(u, "cannot ask for a UDP socket");
		return;
	}
	fd = socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		udp_uplink_fail(u, strerror(errno));
		return;
	}
	udp_uplink_sock(u, fd);
}

/* A control connection: nothing is expected; its end ends the uplink. */
static void udp_hop_control_cb(evutil_socket_t fd, short what, void *arg)
{
	struct udp_hop *h = arg;
	char buf[256];
	ssize_t n = recv(fd, buf, sizeof(buf), 0);

	(void)what;
	if (n > 0 || (n < 0 && (errno == EAGAIN || errno == EINTR)))
		return;
	udp_uplink_fail(h->u, "a proxy closed its UDP association");
}

static void udp_hop_event_cb(evutil_socket_t fd, short what, void *arg)
{
	struct udp_hop *h = arg;

	(void)fd;
	if (h->d != NULL)
		dial_on_event(h->d, what);
}

static void udp_hop_watch(int fd, short flags, void *arg)
{
	struct udp_hop *h = arg;

	if (h->flags != 0)
		event_del(&h->ev);
	h->flags = 0;
	if (flags == 0)
		return;
	event_assign(&h->ev, udp_assoc_base(), fd, flags | EV_PERSIST,
		     udp_hop_event_cb, h);
	if (event_add(&h->ev, NULL) == 0)
		h->flags = flags;
}

static void udp_hop_dialed(const struct dial_result *r, void *arg)
{
	struct udp_hop *h = arg;
	struct udp_uplink *u = h->u;
	char why[96];

	h->d = NULL;
	if (h->flags != 0)
		event_del(&h->ev);
	h->flags = 0;
	if (r->err != DIAL_OK) {
		snprintf(why, sizeof(why), "UDP ASSOCIATE at proxy %zu: %s",
			 (size_t)(h - u->hop) + 1, dial_strerror(r->err));
		udp_uplink_fail(u, why);
		return;
	}
	h->fd = r->fd;
	h->relay = r->bnd;
	event_assign(&h->ev, udp_assoc_base(), h->fd, EV_READ | EV_PERSIST,
		     udp_hop_control_cb, h);
	if (event_add(&h->ev, NULL) < 0) {
		udp_uplink_fail(u, "out of memory");
		return;
	}
	h->flags = EV_READ;
	if (++u->ndone == u->n)
		udp_uplink_linked(u);
}

static struct udp_uplink *udp_uplink_new(struct udp_assoc *a,
					 const struct proxy_hop *hops,
					 size_t n, const char *key)
{
	struct udp_uplink *u;

	if (a->nuplinks >= UDP_UPLINK_MAX || n == 0)
		return NULL;
	u = calloc(1, sizeof(*u) + (n - 1) * SOCKS_UDP_HDR_MAX + 1);
	if (u == NULL)
		return NULL;
	u->a = a;
	u->n = n;
	u->ufd = -1;
	u->started_ms = udp_assoc_now_ms();
	u->key = strdup(key);
	u->hops = calloc(n, sizeof(*u->hops));
	u->hop = calloc(n, sizeof(*u->hop));
	u->next = a->uplinks;
	a->uplinks = u;
	a->nuplinks++;
	if (u->key == NULL || u->hops == NULL || u->hop == NULL) {
		udp_uplink_free(u);
		return NULL;
	}
	memcpy(u->hops, hops, n * sizeof(*hops));
	for (size_t k = 0; k < n; k++) {
		u->hop[k].u = u;
		u->hop[k].fd = -1;
	}
	for (size_t k = 0; k < n; k++) {
		u->hop[k].d = dial_start(&udp_zero, u->hops, k + 1, DIAL_F_UDP,
					 udp_hop_dialed, udp_hop_watch,
					 &u->hop[k]);
		if (u->hop[k].d == NULL) {
			udp_uplink_free(u);
			return NULL;
		}
	}
	return u;
}

struct udp_uplink *udp_uplink_get(struct udp_assoc *a,
				  const struct proxy_hop *hops, size_t n,
				  const char *key, struct udp_dest *d)
{
	struct udp_uplink *u;

	for (u = a->uplinks; u != NULL; u = u->next)
		if (u->state != UL_FAILING && strcmp(u->key, key) == 0)
			break;
	if (u == NULL)
		u = udp_uplink_new(a, hops, n, key);
	if (u == NULL)
		return NULL;
	d->up = u;
	d->unext = u->dests;
	u->dests = d;
	return u;
}

void udp_uplink_tick(struct udp_assoc *a, int64_t now)
{
	int64_t limit = (int64_t)(udp_assoc_conf()->c.timeout * 1000);
	struct udp_uplink *u, *next;

	for (u = a->uplinks; u != NULL; u = next) {
		next = u->next;
		if (u->state == UL_CONNECTING && now - u->started_ms >= limit)
			udp_uplink_fail(u, "the proxy chain did not set up "
					   "its UDP association in time");
	}
}

void udp_uplink_free_all(struct udp_assoc *a)
{
	while (a->uplinks != NULL) {
		struct udp_uplink *u = a->uplinks;

		u->state = UL_FAILING;
		while (u->dests != NULL)
			udp_uplink_leave(u->dests);
		udp_uplink_free(u);
	}
}
