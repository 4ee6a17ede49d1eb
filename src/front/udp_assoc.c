/* udp_assoc: SOCKS5 UDP ASSOCIATE, the association and its direct path.
 * See udp_assoc.h. */
#include "front/udp_assoc.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/monotime.h"
#include "common/route_wire.h"
#include "front/accesslog.h"
#include "front/front.h"
#include "front/front_priv.h"
#include "front/resolver.h"
#include "front/session.h"
#include "front/udp_batch.h"

static struct event_base *ubase;
static const struct front_conf *ufc;

/* One batch at a time (single-threaded): the datagrams just read, and the
 * headers written in front of replies. */
static uint8_t ubuf[UDP_BATCH][UDP_DGRAM_MAX + 1];
static uint8_t uhdr[UDP_BATCH][SOCKS_UDP_HDR_MAX];

void udp_assoc_setup(struct event_base *base, const struct front_conf *fc)
{
	ubase = base;
	ufc = fc;
}

struct event_base *udp_assoc_base(void)
{
	return ubase;
}

const struct front_conf *udp_assoc_conf(void)
{
	return ufc;
}

int64_t udp_assoc_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void udp_drop(struct udp_assoc *a, unsigned n)
{
	a->drops += n;
	front_stats.udp_drops += n;
}

/* ---- destinations, by the address the client names ---- */

static unsigned udp_hash(const struct netaddr *na)
{
	const uint8_t *p = na->type == ADDR_DOMAIN ? (const uint8_t *)na->u.name
						   : na->u.v6;
	size_t n = na->type == ADDR_DOMAIN ? na->namelen
		   : na->type == ADDR_IPV4 ? 4
					   : 16;
	uint32_t h = 2166136261u ^ na->type ^ ((uint32_t)na->port << 8);

	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 16777619u;
	return (h ^ (h >> 15)) & 63;
}

static struct udp_dest *udp_dest_find(struct udp_assoc *a,
				      const struct netaddr *na)
{
	struct udp_dest *d = a->bucket[udp_hash(na)];

	while (d != NULL && !addr_equal(&d->addr, na))
		d = d->hnext;
	return d;
}

/* The held datagrams go (counted as dropped). */
static void udp_held_free(struct udp_dest *d)
{
	struct udp_held *h;

	while ((h = d->held) != NULL) {
		d->held = h->next;
		d->a->held_bytes -= h->len;
		udp_drop(d->a, 1);
		free(h);
	}
	d->held_tail = &d->held;
}

static void udp_rhash_del(struct udp_dest *d)
{
	struct udp_dest **pp = &d->a->rbucket[udp_hash(&d->raddr)];

	if (!d->in_r)
		return;
	while (*pp != NULL && *pp != d)
		pp = &(*pp)->rnext;
	if (*pp == d)
		*pp = d->rnext;
	d->rnext = NULL;
	d->in_r = false;
}

static void udp_rhash_add(struct udp_dest *d)
{
	struct udp_dest **slot;

	if (d->in_r || d->up != NULL ||
	    addr_from_sockaddr(&d->raddr, (struct sockaddr *)&d->remote) < 0)
		return;
	(void)addr_unmap(&d->raddr);
	slot = &d->a->rbucket[udp_hash(&d->raddr)];
	d->rnext = *slot;
	*slot = d;
	d->in_r = true;
}

/* Back to undecided (a failed path decided again, or a forward failed). */
static void udp_dest_reset(struct udp_dest *d)
{
	udp_rhash_del(d);
	if (d->rq != NULL)
		resolver_cancel(d->rq);
	d->rq = NULL;
	udp_uplink_leave(d);
	d->state = UD_DECIDING;
	d->redirected = false;
	d->rlen = 0;
	d->hdrlen = 0;
}

static void udp_dest_free(struct udp_dest *d)
{
	struct udp_assoc *a = d->a;
	struct udp_dest **pp = &a->bucket[udp_hash(&d->addr)];

	while (*pp != NULL && *pp != d)
		pp = &(*pp)->hnext;
	if (*pp == d)
		*pp = d->hnext;
	route_asker_forget(&d->ask);
	udp_dest_reset(d);
	udp_held_free(d);
	a->ndests--;
	free(d);
}

/* ---- sending ---- */

static int udp_family_index(int family)
{
	return family == AF_INET6 ? 1 : 0;
}

/* One datagram to a direct destination (held ones; the batch path uses
 * sendmmsg). */
static void udp_send_direct(struct udp_dest *d, const uint8_t *p, size_t n)
{
	struct udp_assoc *a = d->a;
	int fd = a->ofd[udp_family_index(d->remote.ss_family)];

	if (fd >= 0 && sendto(fd, p, n, 0, (struct sockaddr *)&d->remote,
			      d->rlen) == (ssize_t)n) {
		a->pkts_up++;
		a->bytes_up += n;
		front_stats.udp_pkts_up++;
		front_stats.udp_bytes_up += n;
		return;
	}
	udp_drop(a, 1);
}

static void udp_send_one(struct udp_dest *d, const uint8_t *p, size_t n)
{
	if (d->up != NULL) {
		if (udp_uplink_send(d->up, d, p, n) < 0)
			udp_drop(d->a, 1);
		return;
	}
	udp_send_direct(d, p, n);
}

void udp_assoc_dest_flush(struct udp_dest *d)
{
	struct udp_held *h;

	while ((h = d->held) != NULL) {
		d->held = h->next;
		d->a->held_bytes -= h->len;
		if (d->state == UD_READY)
			udp_send_one(d, h->data, h->len);
		else
			udp_drop(d->a, 1);
		free(h);
	}
	d->held_tail = &d->held;
}

static void udp_hold(struct udp_dest *d, const uint8_t *p, size_t n)
{
	struct udp_assoc *a = d->a;
	struct udp_held *h;

	if (a->held_bytes + n > UDP_HELD_MAX ||
	    (h = malloc(sizeof(*h) + n)) == NULL) {
		udp_drop(a, 1);
		return;
	}
	h->next = NULL;
	h->len = (uint32_t)n;
	memcpy(h->data, p, n);
	*d->held_tail = h;
	d->held_tail = &h->next;
	a->held_bytes += n;
}

/* ---- the path of a destination ---- */

static void udp_dest_refuse(struct udp_dest *d, const char *why)
{
	char who[ADDR_STRLEN];

	if (d->forwarding) {
		/* await.forward: the ruleset learns it and decides again */
		d->forwarding = false;
		udp_dest_reset(d);
		route_asker_forward_result(&d->ask, false, why);
		return;
	}
	udp_dest_reset(d);
	d->state = UD_REFUSED;
	d->a->nrefused++;
	udp_held_free(d);
	if (addr_format(&d->addr, who, sizeof(who)) < 0)
		strcpy(who, "?");
	LOGI("[#%u] udp %s: %s; its datagrams are dropped", d->a->s->id, who,
	     why);
}

void udp_assoc_dest_failed(struct udp_dest *d, const char *why)
{
	char who[ADDR_STRLEN];

	if (d->forwarding) {
		udp_dest_refuse(d, why);
		return;
	}
	udp_dest_reset(d);
	d->state = UD_FAILED;
	d->since_ms = udp_assoc_now_ms();
	udp_held_free(d);
	if (addr_format(&d->addr, who, sizeof(who)) < 0)
		strcpy(who, "?");
	LOG_RL(LOGL_WARN, 10, "[#%u] udp %s: %s", d->a->s->id, who, why);
}

void udp_assoc_dest_ready(struct udp_dest *d)
{
	d->state = UD_READY;
	udp_rhash_add(d);
	if (d->forwarding) {
		d->forwarding = false;
		route_asker_forward_result(&d->ask, true, NULL);
	}
	udp_assoc_dest_flush(d);
}

static void udp_out_cb(evutil_socket_t fd, short what, void *arg);

/* Room for bursts: the kernel caps it at net.core.rmem_max/wmem_max. */
static void udp_bufsize(int fd)
{
	int sz = 1 << 20;

	(void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
	(void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
}

static int udp_out_watch(struct udp_assoc *a, int i, int fd)
{
	udp_bufsize(fd);
	a->ofd[i] = fd;
	event_assign(&a->oev[i], ubase, fd, EV_READ | EV_PERSIST, udp_out_cb,
		     a);
	return event_add(&a->oev[i], NULL);
}

/* Destinations waiting for the direct socket of this family. */
static void udp_out_ready(struct udp_assoc *a, int family, const char *err)
{
	for (unsigned b = 0; b < 64; b++)
		for (struct udp_dest *d = a->bucket[b]; d != NULL;
		     d = d->hnext) {
			if (d->state != UD_LINKING || d->up != NULL ||
			    d->remote.ss_family != family)
				continue;
			if (err != NULL)
				udp_assoc_dest_failed(d, err);
			else
				udp_assoc_dest_ready(d);
		}
}

static void udp_out_brokered(struct udp_assoc *a, int family, int fd,
			     int err)
{
	a->opriv[udp_family_index(family)] = 0;
	if (fd < 0 || udp_out_watch(a, udp_family_index(family), fd) < 0) {
		if (fd >= 0)
			close(fd);
		a->ofd[udp_family_index(family)] = -1;
		udp_out_ready(a, family, strerror(fd < 0 ? err : ENOMEM));
		return;
	}
	udp_out_ready(a, family, NULL);
}

static void udp_out_brokered4(void *arg, int fd, int err)
{
	udp_out_brokered(arg, AF_INET, fd, err);
}

static void udp_out_brokered6(void *arg, int fd, int err)
{
	udp_out_brokered(arg, AF_INET6, fd, err);
}

/* The direct socket of d's family: 1 ready, 0 asked of the parent, -1. */
static int udp_out_socket(struct udp_assoc *a, int family)
{
	int i = udp_family_index(family), fd;

	if (a->ofd[i] >= 0)
		return 1;
	if (dial_brokered()) {
		struct msg_priv_socket req = { (uint32_t)family, SOCK_DGRAM };

		if (a->opriv[i] == 0)
			a->opriv[i] = front_priv_ask(MSG_PRIV_SOCKET, &req,
						     sizeof(req),
						     i == 0 ? udp_out_brokered4
							    : udp_out_brokered6,
						     a);
		return a->opriv[i] != 0 ? 0 : -1;
	}
	fd = socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (udp_out_watch(a, i, fd) < 0) {
		close(fd);
		a->ofd[i] = -1;
		return -1;
	}
	return 1;
}

/* A direct destination whose address is known. */
static void udp_dest_direct(struct udp_dest *d, const struct sockaddr *sa,
			    socklen_t len)
{
	int r;

	memcpy(&d->remote, sa, len);
	d->rlen = len;
	if (sa->sa_family == AF_INET)
		((struct sockaddr_in *)&d->remote)->sin_port = htons(d->to.port);
	else
		((struct sockaddr_in6 *)&d->remote)->sin6_port =
			htons(d->to.port);
	if (dial_blocked((struct sockaddr *)&d->remote)) {
		udp_dest_refuse(d, "blocked by --block-outbound");
		return;
	}
	d->state = UD_LINKING;
	r = udp_out_socket(d->a, sa->sa_family);
	if (r < 0)
		udp_assoc_dest_failed(d, "cannot make a UDP socket");
	else if (r > 0)
		udp_assoc_dest_ready(d);
}

static void udp_dest_resolved(int result, const struct sockaddr *sa,
			      socklen_t len, void *arg)
{
	struct udp_dest *d = arg;

	d->rq = NULL;
	if (result < 0) {
		udp_assoc_dest_failed(d, "name resolution failed");
		return;
	}
	udp_dest_direct(d, sa, len);
}

/* The decided target and chain (first hop first, -x in front). */
static void udp_dest_route(struct udp_dest *d, const struct netaddr *to,
			   const struct proxy_hop *hops, size_t n,
			   const char *key)
{
	struct sockaddr_storage ss;
	socklen_t len = 0;
	int r;

	d->to = *to;
	d->redirected = !addr_equal(to, &d->addr);
	for (size_t i = 0; i < n; i++) {
		if (hops[i].scheme != PROXY_SOCKS5) {
			char why[96];

			snprintf(why, sizeof(why),
				 "UDP cannot go through a %s:// proxy (only "
				 "socks5:// carries it)",
				 proxyuri_scheme_name(hops[i].scheme));
			udp_dest_refuse(d, why);
			return;
		}
	}
	if (n > 0) {
		d->state = UD_LINKING;
		d->hdrlen = (uint16_t)socks_proto_udp_header(
			d->hdr, sizeof(d->hdr), to);
		if (d->hdrlen == 0 ||
		    udp_uplink_get(d->a, hops, n, key, d) == NULL)
			udp_assoc_dest_failed(d, "no room for another chain");
		else if (udp_uplink_ready(d->up))
			udp_assoc_dest_ready(d);
		return;
	}
	if (to->type != ADDR_DOMAIN) {
		len = (socklen_t)addr_to_sockaddr(to, &ss);
		udp_dest_direct(d, (struct sockaddr *)&ss, len);
		return;
	}
	d->state = UD_RESOLVING;
	r = resolver_lookup(to->u.name, AF_UNSPEC, &ss, &len,
			    udp_dest_resolved, d, &d->rq);
	if (r > 0)
		udp_dest_direct(d, (struct sockaddr *)&ss, len);
	else if (r < 0)
		udp_assoc_dest_failed(d, "name resolution failed");
}

/* Without a ruleset, or when none is loaded: the -x chain. */
static void udp_dest_default(struct udp_dest *d)
{
	udp_dest_route(d, &d->addr, ufc->hops, ufc->nhops, ufc->c.proxy);
}

/* The ruleset's GO: its address and hops, after the -x chain. */
static void udp_dest_go(struct udp_dest *d, const struct route_decision *rd)
{
	size_t n = ufc->nhops + rd->nhops;
	struct proxy_hop *hops = calloc(n > 0 ? n : 1, sizeof(*hops));
	char key[CONF_PROXY_MAX + ROUTE_HOPS_MAX * (ROUTE_STR_MAX + 1)];
	size_t off = 0;
	struct netaddr to;
	const char *why;

	if (hops == NULL) {
		udp_assoc_dest_failed(d, "out of memory");
		return;
	}
	if (addr_parse(&to, rd->addr.p, rd->addr.len, -1) < 0 ||
	    to.port == 0) {
		free(hops);
		udp_dest_refuse(d, "the ruleset returned an unusable address");
		return;
	}
	(void)addr_unmap(&to);
	memcpy(hops, ufc->hops, ufc->nhops * sizeof(*hops));
	off = (size_t)snprintf(key, sizeof(key), "%s", ufc->c.proxy);
	for (size_t i = 0; i < rd->nhops; i++) {
		if (proxyuri_parse(&hops[ufc->nhops + i], rd->hops[i].p,
				   rd->hops[i].len, &why) < 0) {
			explicit_bzero(hops, n * sizeof(*hops));
			free(hops);
			udp_dest_refuse(d, "the ruleset returned an unusable "
					   "proxy");
			return;
		}
		off += (size_t)snprintf(key + off, sizeof(key) - off, ",%.*s",
					(int)rd->hops[i].len, rd->hops[i].p);
		if (off >= sizeof(key))
			off = sizeof(key) - 1;
	}
	udp_dest_route(d, &to, hops, n, key);
	explicit_bzero(key, sizeof(key));
	explicit_bzero(hops, n * sizeof(*hops));
	free(hops);
}

static void udp_dest_decided(struct route_asker *ask,
			     const struct route_decision *rd, bool forward)
{
	struct udp_dest *d = (struct udp_dest *)((char *)ask -
						 offsetof(struct udp_dest, ask));

	if (forward) {
		if (d->state != UD_DECIDING) {
			route_asker_forward_result(ask, false,
						   "the request is not "
						   "forwardable");
			return;
		}
		d->forwarding = true;
		udp_dest_go(d, rd);
		return;
	}
	if (d->state != UD_DECIDING)
		return; /* forwarded already (ROUTE_DONE) */
	switch (rd->result) {
	case ROUTE_GO:
		udp_dest_go(d, rd);
		return;
	case ROUTE_NO_RULESET:
		udp_dest_default(d);
		return;
	case ROUTE_ERROR:
		udp_dest_refuse(d, "ruleset error");
		return;
	default:
		udp_dest_refuse(d, "rejected by ruleset");
	}
}

static void udp_dest_undecided(struct route_asker *ask, int err)
{
	struct udp_dest *d = (struct udp_dest *)((char *)ask -
						 offsetof(struct udp_dest, ask));

	udp_assoc_dest_failed(d, dial_strerror((enum dial_err)err));
}

static const struct route_asker_ops udp_dest_ops = {
	.decided = udp_dest_decided,
	.failed = udp_dest_undecided,
};

static void udp_dest_decide(struct udp_dest *d)
{
	struct udp_assoc *a = d->a;

	d->state = UD_DECIDING;
	d->since_ms = udp_assoc_now_ms();
	if (!ufc->use_ruleset) {
		udp_dest_default(d);
		return;
	}
	if (route_asker_ask(&d->ask, &d->addr, a->user, a->pass) < 0)
		udp_assoc_dest_failed(d, "ruleset unavailable");
}

static struct udp_dest *udp_dest_new(struct udp_assoc *a,
				     const struct netaddr *na)
{
	struct udp_dest *d;
	unsigned h = udp_hash(na);

	if (a->ndests >= UDP_DEST_MAX || (d = calloc(1, sizeof(*d))) == NULL)
		return NULL;
	d->a = a;
	d->addr = *na;
	d->ask.ops = &udp_dest_ops;
	d->ask.id = session_new_id();
	d->held_tail = &d->held;
	d->hnext = a->bucket[h];
	a->bucket[h] = d;
	a->ndests++;
	return d;
}

/* ---- datagrams from the client ---- */

static bool udp_from_client(struct udp_assoc *a, const struct sockaddr *sa)
{
	struct netaddr from, want;

	if (addr_from_sockaddr(&from, sa) < 0 ||
	    addr_from_sockaddr(&want, &a->client.sa) < 0)
		return false;
	(void)addr_unmap(&from);
	(void)addr_unmap(&want);
	if (a->port_known)
		return addr_equal(&from, &want);
	want.port = from.port; /* the first port seen */
	if (!addr_equal(&from, &want))
		return false;
	memcpy(&a->client, sa, sa->sa_family == AF_INET6
				       ? sizeof(struct sockaddr_in6)
				       : sizeof(struct sockaddr_in));
	a->clen = sa->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
					    : sizeof(struct sockaddr_in);
	a->port_known = true;
	return true;
}

/* Where one datagram of the batch goes (sendmmsg grouped by socket). */
struct udp_out {
	struct mmsghdr m[UDP_BATCH];
	struct iovec iov[UDP_BATCH];
	int fd[UDP_BATCH];
	unsigned n;
};

static void udp_out_flush(struct udp_assoc *a, struct udp_out *o)
{
	unsigned i = 0;

	while (i < o->n) {
		unsigned j = i;
		int sent;

		while (j < o->n && o->fd[j] == o->fd[i])
			j++;
		sent = (int)udp_batch_send(o->fd[i], &o->m[i], j - i, &a->gso);
		for (unsigned k = i; k < i + (unsigned)sent; k++) {
			a->pkts_up++;
			a->bytes_up += o->iov[k].iov_len;
			front_stats.udp_pkts_up++;
			front_stats.udp_bytes_up += o->iov[k].iov_len;
		}
		udp_drop(a, j - i - (unsigned)sent);
		i = j;
	}
	o->n = 0;
}

static void udp_client_dgram(struct udp_assoc *a, uint8_t *p, size_t n,
			     struct udp_out *o, int64_t now)
{
	struct netaddr dst;
	struct udp_dest *d;
	uint8_t frag;
	int hl = socks_proto_udp_parse(p, n, &frag, &dst);

	if (hl < 0 || frag != 0) {
		udp_drop(a, 1); /* truncated, malformed or a fragment */
		return;
	}
	(void)addr_unmap(&dst);
	d = udp_dest_find(a, &dst);
	if (d == NULL) {
		d = udp_dest_new(a, &dst);
		if (d == NULL) {
			udp_drop(a, 1);
			return;
		}
		udp_hold(d, p + hl, n - (size_t)hl);
		d->last_ms = now;
		d->seq = ++a->seq;
		udp_dest_decide(d);
		return;
	}
	d->last_ms = now;
	d->seq = ++a->seq;
	switch (d->state) {
	case UD_READY:
		if (d->up == NULL) {
			unsigned i = o->n++;

			o->iov[i] = (struct iovec){ p + hl, n - (size_t)hl };
			o->m[i].msg_hdr = (struct msghdr){
				.msg_name = &d->remote,
				.msg_namelen = d->rlen,
				.msg_iov = &o->iov[i],
				.msg_iovlen = 1,
			};
			o->fd[i] = a->ofd[udp_family_index(
				d->remote.ss_family)];
		} else if (udp_uplink_send(d->up, d, p + hl,
					   n - (size_t)hl) < 0) {
			udp_drop(a, 1);
		}
		return;
	case UD_FAILED:
		if (now - d->since_ms < UDP_RETRY_MS) {
			udp_drop(a, 1);
			return;
		}
		udp_hold(d, p + hl, n - (size_t)hl);
		udp_dest_decide(d);
		return;
	case UD_REFUSED:
		udp_drop(a, 1);
		return;
	default:
		udp_hold(d, p + hl, n - (size_t)hl);
	}
}

static void udp_relay_cb(evutil_socket_t fd, short what, void *arg)
{
	struct udp_assoc *a = arg;
	struct mmsghdr mm[UDP_BATCH];
	struct iovec iov[UDP_BATCH];
	struct sockaddr_storage from[UDP_BATCH];
	static struct udp_out o;
	int64_t now = udp_assoc_now_ms();
	int n;

	(void)what;
	for (int i = 0; i < UDP_BATCH; i++) {
		iov[i] = (struct iovec){ ubuf[i], sizeof(ubuf[i]) };
		mm[i].msg_hdr = (struct msghdr){
			.msg_name = &from[i],
			.msg_namelen = sizeof(from[i]),
			.msg_iov = &iov[i],
			.msg_iovlen = 1,
		};
	}
	n = recvmmsg(fd, mm, UDP_BATCH, MSG_DONTWAIT, NULL);
	if (n <= 0)
		return;
	a->last_ms = now;
	o.n = 0;
	for (int i = 0; i < n; i++) {
		if (!udp_from_client(a, (struct sockaddr *)&from[i]) ||
		    (mm[i].msg_hdr.msg_flags & MSG_TRUNC)) {
			udp_drop(a, 1); /* a stranger's */
			continue;
		}
		udp_client_dgram(a, ubuf[i], mm[i].msg_len, &o, now);
	}
	udp_out_flush(a, &o);
}

/* ---- datagrams to the client ---- */

void udp_assoc_to_client(struct udp_assoc *a, const struct netaddr *src,
			 const uint8_t *payload, size_t len)
{
	uint8_t hdr[SOCKS_UDP_HDR_MAX];
	size_t hl = socks_proto_udp_header(hdr, sizeof(hdr), src);
	struct iovec iov[2] = { { hdr, hl }, { (void *)payload, len } };
	struct msghdr mh = { .msg_name = &a->client,
			     .msg_namelen = a->clen,
			     .msg_iov = iov,
			     .msg_iovlen = 2 };

	if (!a->port_known || hl == 0 ||
	    sendmsg(a->rfd, &mh, MSG_DONTWAIT) < 0) {
		udp_drop(a, 1);
		return;
	}
	a->pkts_down++;
	a->bytes_down += len;
	front_stats.udp_pkts_down++;
	front_stats.udp_bytes_down += len;
}

/* The destination a direct reply belongs to: the one whose remote is its
 * source; of several sharing it (a name and its address, a redirect), the
 * one the client sent to last. */
static struct udp_dest *udp_reply_dest(struct udp_assoc *a,
				       const struct netaddr *src)
{
	struct udp_dest *best = NULL;

	for (struct udp_dest *d = a->rbucket[udp_hash(src)]; d != NULL;
	     d = d->rnext)
		if (addr_equal(&d->raddr, src) &&
		    (best == NULL || d->seq > best->seq))
			best = d;
	return best;
}

static void udp_out_cb(evutil_socket_t fd, short what, void *arg)
{
	struct udp_assoc *a = arg;
	struct mmsghdr in[UDP_BATCH], out[UDP_BATCH];
	struct iovec iov[UDP_BATCH], oiov[UDP_BATCH][2];
	struct sockaddr_storage from[UDP_BATCH];
	int64_t now = udp_assoc_now_ms();
	unsigned k = 0;
	int n, sent;

	(void)what;
	for (int i = 0; i < UDP_BATCH; i++) {
		iov[i] = (struct iovec){ ubuf[i], sizeof(ubuf[i]) };
		in[i].msg_hdr = (struct msghdr){
			.msg_name = &from[i],
			.msg_namelen = sizeof(from[i]),
			.msg_iov = &iov[i],
			.msg_iovlen = 1,
		};
	}
	n = recvmmsg(fd, in, UDP_BATCH, MSG_DONTWAIT, NULL);
	if (n <= 0)
		return;
	for (int i = 0; i < n; i++) {
		struct netaddr src;
		struct udp_dest *d;
		size_t hl;

		if (addr_from_sockaddr(&src, (struct sockaddr *)&from[i]) < 0 ||
		    (in[i].msg_hdr.msg_flags & MSG_TRUNC)) {
			udp_drop(a, 1);
			continue;
		}
		(void)addr_unmap(&src);
		d = udp_reply_dest(a, &src);
		if (d == NULL || !a->port_known) {
			udp_drop(a, 1); /* not from a destination */
			continue;
		}
		d->last_ms = now;
		hl = socks_proto_udp_header(uhdr[k], sizeof(uhdr[k]),
					    d->redirected ? &d->addr : &src);
		oiov[k][0] = (struct iovec){ uhdr[k], hl };
		oiov[k][1] = (struct iovec){ ubuf[i], in[i].msg_len };
		out[k].msg_hdr = (struct msghdr){
			.msg_name = &a->client,
			.msg_namelen = a->clen,
			.msg_iov = oiov[k],
			.msg_iovlen = 2,
		};
		k++;
	}
	if (k == 0)
		return;
	a->last_ms = now;
	sent = (int)udp_batch_send(a->rfd, out, k, &a->gso);
	for (int i = 0; i < sent; i++) {
		a->pkts_down++;
		a->bytes_down += oiov[i][1].iov_len;
		front_stats.udp_pkts_down++;
		front_stats.udp_bytes_down += oiov[i][1].iov_len;
	}
	udp_drop(a, k - (unsigned)sent);
}

/* ---- lifetime ---- */

static void udp_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	static const struct timeval tick = { 1, 0 };
	struct udp_assoc *a = arg;
	int64_t now = udp_assoc_now_ms();
	int64_t idle = (int64_t)(ufc->c.udp_idle * 1000);
	int64_t decide = (int64_t)(ufc->c.timeout * 1000);

	(void)fd;
	(void)what;
	if (now - a->last_ms >= idle) {
		session_close(a->s, "idle");
		return;
	}
	for (unsigned b = 0; b < 64; b++) {
		struct udp_dest *d = a->bucket[b], *next;

		for (; d != NULL; d = next) {
			next = d->hnext;
			if (now - d->last_ms >= idle)
				udp_dest_free(d); /* forgotten: room for more */
			else if (d->state == UD_DECIDING && d->ask.pending &&
				 now - d->since_ms >= decide) {
				route_asker_forget(&d->ask);
				udp_assoc_dest_failed(d, "no routing decision "
							"in time");
			}
		}
	}
	udp_uplink_tick(a, now);
	evtimer_add(&a->timer, &tick);
}

static void udp_relay_start(struct session *s, struct udp_assoc *a, int fd)
{
	static const struct timeval tick = { 1, 0 };
	struct sockaddr_storage bnd;
	socklen_t blen = sizeof(bnd);
	uint8_t out[22];
	size_t n;

	a->rfd = fd;
	udp_bufsize(fd);
	if (getsockname(fd, (struct sockaddr *)&bnd, &blen) < 0) {
		session_close(s, "UDP relay: getsockname failed");
		return;
	}
	if (addr_format_sockaddr((struct sockaddr *)&bnd, a->relay_text,
				 sizeof(a->relay_text)) < 0)
		strcpy(a->relay_text, "?");
	n = socks_proto_s5_reply(out, SOCKS5_REP_SUCCEEDED,
				 (struct sockaddr *)&bnd);
	s->reply = SOCKS5_REP_SUCCEEDED;
	if (session_reply(s, out, n) < 0) {
		session_close(s, "client write error");
		return;
	}
	front_stats.success++;
	front_stats.udp_assocs++;
	front_stats.udp_active++;
	a->last_ms = udp_assoc_now_ms();
	event_assign(&a->rev, ubase, fd, EV_READ | EV_PERSIST, udp_relay_cb, a);
	evtimer_assign(&a->timer, ubase, udp_timer_cb, a);
	if (event_add(&a->rev, NULL) < 0 || evtimer_add(&a->timer, &tick) < 0) {
		session_close(s, "out of memory");
		return;
	}
	session_hs_free(s);
	s->state = SS_EXCHANGE;
	session_set_active(s);
	session_watch(s, true, EV_READ);
}

static void udp_relay_brokered(void *arg, int fd, int err)
{
	struct udp_assoc *a = arg;
	struct session *s = a->s;
	uint8_t out[22];
	char why[96];

	a->priv_req = 0;
	if (fd < 0) {
		size_t n = socks_proto_s5_reply(out, SOCKS5_REP_FAIL, NULL);

		s->reply = SOCKS5_REP_FAIL;
		(void)session_reply(s, out, n);
		snprintf(why, sizeof(why), "UDP relay: %s", strerror(err));
		session_close(s, why);
		return;
	}
	udp_relay_start(s, a, fd);
}

static char *udp_strdup_cred(const char *v, bool has)
{
	return has ? strdup(v) : NULL;
}

void udp_assoc_request(struct session *s, const struct netaddr *dst)
{
	struct hs *hs = s->hs;
	struct sockaddr_storage local;
	socklen_t llen = sizeof(local);
	struct msg_priv_addr req = { 0 };
	struct netaddr la;
	struct udp_assoc *a = calloc(1, sizeof(*a));
	uint8_t out[22];

	s->proto = PROTO_SOCKS5_UDP;
	hs->request_done = true;
	s->state = SS_DIAL; /* client bytes wait in the socket */
	front_stats.requests++;
	free(s->target);
	s->target = NULL;
	session_note_user(s);
	if (a == NULL)
		goto fail;
	s->udp = a;
	a->s = s;
	a->rfd = a->ofd[0] = a->ofd[1] = -1;
	a->gso = true;
	a->user = udp_strdup_cred(hs->user, hs->has_user);
	a->pass = udp_strdup_cred(hs->pass, hs->has_pass);
	if ((hs->has_user && a->user == NULL) ||
	    (hs->has_pass && a->pass == NULL))
		goto fail;
	/* the client's IP; its port if the request names one */
	memcpy(&a->client, &s->client, sizeof(a->client));
	a->clen = s->client.sa.sa_family == AF_INET6
			  ? sizeof(struct sockaddr_in6)
			  : sizeof(struct sockaddr_in);
	if (dst->port != 0) {
		if (a->client.sa.sa_family == AF_INET6)
			a->client.sin6.sin6_port = htons(dst->port);
		else
			a->client.sin.sin_port = htons(dst->port);
		a->port_known = true;
	}
	/* the relay goes on the address the client came to */
	if (getsockname(s->cfd, (struct sockaddr *)&local, &llen) < 0 ||
	    addr_from_sockaddr(&la, (struct sockaddr *)&local) < 0)
		goto fail;
	(void)addr_unmap(&la);
	req.family = la.type == ADDR_IPV4 ? AF_INET : AF_INET6;
	memcpy(req.addr, la.u.v6, la.type == ADDR_IPV4 ? 4 : 16);
	a->priv_req = front_priv_ask(MSG_PRIV_UDP, &req, sizeof(req),
				     udp_relay_brokered, a);
	if (a->priv_req != 0)
		return;
fail:
	s->reply = SOCKS5_REP_FAIL;
	(void)session_reply(s, out, socks_proto_s5_reply(out, SOCKS5_REP_FAIL,
							 NULL));
	session_close(s, "UDP relay: cannot ask for a socket");
}

void udp_assoc_on_control(struct session *s)
{
	char buf[512];
	ssize_t n = recv(s->cfd, buf, sizeof(buf), 0);

	/* nothing is expected on it: read and drop, close on its end */
	if (n > 0 || (n < 0 && (errno == EAGAIN || errno == EINTR)))
		return;
	session_close(s, n == 0 ? "ok" : "control connection error");
}

void udp_assoc_log(struct session *s, const char *outcome)
{
	const struct udp_assoc *a = s->udp;
	char id[16], n[4][48];
	struct accesslog al;

	if (log_level < LOGL_INFO)
		return;
	if (a == NULL || a->rfd < 0) {
		session_log_line(s, outcome);
		return;
	}
	snprintf(id, sizeof(id), "%u", s->id);
	snprintf(n[0], sizeof(n[0]), "%u", a->ndests);
	snprintf(n[1], sizeof(n[1]), "%u", a->nrefused);
	snprintf(n[2], sizeof(n[2]), "%llu/%llu",
		 (unsigned long long)a->pkts_up,
		 (unsigned long long)a->pkts_down);
	snprintf(n[3], sizeof(n[3]), "%llu", (unsigned long long)a->drops);
	/* datagrams: from the client / to it (up and down: their bytes) */
	const struct accesslog_field more[] = {
		{ "relay", a->relay_text }, { "dests", n[0] },
		{ "refused", n[1] },        { "datagrams", n[2] },
		{ "dropped", n[3] },
	};

	session_log_fields(s, &al);
	al.id = id;
	al.more = more;
	al.nmore = sizeof(more) / sizeof(more[0]);
	al.up = a->bytes_up;
	al.down = a->bytes_down;
	al.dur = (double)(monotime_us() - s->t_start_us) / 1e6;
	al.outcome = outcome;
	accesslog_write(&al);
}

void udp_assoc_free(struct udp_assoc *a)
{
	if (a == NULL)
		return;
	if (a->priv_req != 0)
		front_priv_cancel(a->priv_req);
	for (int i = 0; i < 2; i++) {
		if (a->opriv[i] != 0)
			front_priv_cancel(a->opriv[i]);
		if (a->ofd[i] >= 0) {
			event_del(&a->oev[i]);
			close(a->ofd[i]);
		}
	}
	for (unsigned b = 0; b < 64; b++)
		while (a->bucket[b] != NULL)
			udp_dest_free(a->bucket[b]);
	udp_uplink_free_all(a);
	if (a->rfd >= 0) {
		event_del(&a->rev);
		event_del(&a->timer);
		close(a->rfd);
		front_stats.udp_active--;
	}
	if (a->user != NULL)
		explicit_bzero(a->user, strlen(a->user));
	if (a->pass != NULL)
		explicit_bzero(a->pass, strlen(a->pass));
	free(a->user);
	free(a->pass);
	free(a);
}
