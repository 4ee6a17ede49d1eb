/* priv: the parent's table of privileged requests. A child may ask only
 * for what its role and the configuration permit; the parent applies the
 * configured values itself, never values chosen by the child. Anything
 * else is refused and the child is killed by the caller.
 *
 * Each row: the request, who may send it, when the configuration permits
 * it, and the handler that checks the payload and makes the socket. Every
 * answer is PRIV_SOCKET_REPLY with the request's id. */
#include "privsep/priv.h"

#include <errno.h>
#include <linux/capability.h>
#include <net/if.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/addr.h"
#include "common/log.h"
#include "privsep/parent.h"
#include "privsep/sandbox.h"

struct priv_rule {
	uint16_t type;  /* request message type */
	uint8_t sender; /* enum role allowed to ask */
	bool (*permitted)(const struct config *c);
	/* the socket, or -1 with *err (an errno value for the child); -2
	 * refuses the request (the child is killed) */
	int (*make)(struct child *c, const struct msg *m, int *err);
};

static bool priv_outbound_configured(const struct config *c)
{
	return c->netdev[0] != '\0' || c->mark > 0;
}

static bool priv_udp_enabled(const struct config *c)
{
	return c->socks5_udp;
}

static bool priv_bind_enabled(const struct config *c)
{
	return c->socks5_bind;
}

uint64_t priv_caps_needed(const struct config *c)
{
	uint64_t caps = 0;

	if (geteuid() != 0)
		return 0;
	/* children run as other users: stopping a hung one needs CAP_KILL */
	caps |= 1ull << CAP_KILL;
	if (c->netdev[0] != '\0')
		caps |= 1ull << CAP_NET_RAW;
	if (c->mark > 0)
		caps |= 1ull << CAP_NET_ADMIN;
	return caps;
}

/* SO_BINDTODEVICE / SO_MARK as configured; 0 or -1 with *err. */
static int priv_apply_outbound(int fd, int *err)
{
	const struct config *c = &parent.conf;

	if (c->netdev[0] != '\0' &&
	    setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, c->netdev,
		       (socklen_t)strlen(c->netdev)) < 0) {
		*err = errno;
		LOG_RL(LOGL_WARN, 10, "SO_BINDTODEVICE %s: %s", c->netdev,
		       strerror(errno));
		return -1;
	}
	if (c->mark > 0 &&
	    setsockopt(fd, SOL_SOCKET, SO_MARK, &c->mark, sizeof(c->mark)) < 0) {
		*err = errno;
		LOG_RL(LOGL_WARN, 10, "SO_MARK %d: %s", c->mark,
		       strerror(errno));
		return -1;
	}
	return 0;
}

static int priv_new_socket(int family, int type, int *err)
{
	int fd = socket(family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0)
		*err = errno;
	return fd;
}

/* An outbound TCP or UDP socket with the configured SO_BINDTODEVICE /
 * SO_MARK. */
static int priv_make_outbound(struct child *c, const struct msg *m, int *err)
{
	struct msg_priv_socket req;
	int fd;

	memcpy(&req, m->data, sizeof(req));
	if ((req.family != AF_INET && req.family != AF_INET6) ||
	    (req.type != SOCK_STREAM && req.type != SOCK_DGRAM)) {
		LOGE("%s asked for a socket of family %u, type %u",
		     role_name(c->role), req.family, req.type);
		return -2;
	}
	fd = priv_new_socket((int)req.family, (int)req.type, err);
	if (fd >= 0 && priv_apply_outbound(fd, err) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* The address of a PRIV_UDP / PRIV_BIND request, port 0. -1: malformed
 * (a family other than IPv4/IPv6, an unspecified, multicast or broadcast
 * address), which only a broken front sends. */
static int priv_req_addr(const struct msg *m, struct sockaddr_storage *ss,
			 socklen_t *len)
{
	struct msg_priv_addr req;
	struct netaddr na = { 0 };
	enum addr_class cls;

	memcpy(&req, m->data, sizeof(req));
	if (req.family == AF_INET) {
		na.type = ADDR_IPV4;
		memcpy(na.u.v4, req.addr, 4);
	} else if (req.family == AF_INET6) {
		na.type = ADDR_IPV6;
		memcpy(na.u.v6, req.addr, 16);
		if (addr_unmap(&na))
			return -1; /* the front sends IPv4 as IPv4 */
	} else {
		return -1;
	}
	*len = (socklen_t)addr_to_sockaddr(&na, ss);
	cls = addr_classify((struct sockaddr *)ss);
	if (cls == ADDR_CLASS_MULTICAST || cls == ADDR_CLASS_UNKNOWN)
		return -1;
	if (na.type == ADDR_IPV4 && memcmp(na.u.v4, "\xff\xff\xff\xff", 4) == 0)
		return -1;
	return 0;
}

/* Does a SOCKS listener take connections on this address: bound to it,
 * or to the wildcard of its family (an IPv6 wildcard is dual-stack)? */
static bool priv_socks_listener_addr(const struct sockaddr *sa)
{
	for (int i = 0; i < parent.nls; i++) {
		struct sockaddr_storage ls;
		socklen_t len = sizeof(ls);
		struct netaddr a, b;

		if (parent.ls[i].kind != LISTENER_SOCKS ||
		    /* one socket per worker, all on the same address */
		    getsockname(parent.ls[i].fd[0], (struct sockaddr *)&ls,
				&len) < 0 ||
		    addr_from_sockaddr(&a, (struct sockaddr *)&ls) < 0 ||
		    addr_from_sockaddr(&b, sa) < 0)
			continue;
		if (a.type == ADDR_IPV6 &&
		    memcmp(a.u.v6, &in6addr_any, 16) == 0)
			return true;
		if (a.type == ADDR_IPV4 &&
		    memcmp(a.u.v4, "\0\0\0\0", 4) == 0 &&
		    b.type == ADDR_IPV4)
			return true;
		(void)addr_unmap(&a);
		a.port = b.port = 0;
		if (a.type == b.type &&
		    memcmp(&a.u, &b.u, a.type == ADDR_IPV4 ? 4 : 16) == 0)
			return true;
	}
	return false;
}

/* SOCKS5 UDP ASSOCIATE: a UDP socket on the address of the SOCKS listener
 * the client came to, port 0. Nothing else: not another address, not a
 * chosen port. */
static int priv_make_udp_relay(struct child *c, const struct msg *m,
			       int *err)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fd;

	if (priv_req_addr(m, &ss, &len) < 0 ||
	    !priv_socks_listener_addr((struct sockaddr *)&ss)) {
		LOGE("%s asked for a UDP relay on an address that is not a "
		     "SOCKS listener's", role_name(c->role));
		return -2;
	}
	fd = priv_new_socket(ss.ss_family, SOCK_DGRAM, err);
	if (fd < 0)
		return -1;
	if (bind(fd, (struct sockaddr *)&ss, len) < 0) {
		*err = errno;
		close(fd);
		return -1;
	}
	return fd;
}

/* SOCKS5 BIND: a listening TCP socket on a local address (the front's
 * outbound address towards the peer), port 0. The kernel refuses an
 * address that is not this host's; -i and --mark apply as to outbound
 * sockets. */
static int priv_make_bind(struct child *c, const struct msg *m, int *err)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fd, one = 1;

	if (priv_req_addr(m, &ss, &len) < 0) {
		LOGE("%s asked for a BIND socket on a bad address",
		     role_name(c->role));
		return -2;
	}
	fd = priv_new_socket(ss.ss_family, SOCK_STREAM, err);
	if (fd < 0)
		return -1;
	if (ss.ss_family == AF_INET6)
		(void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one,
				 sizeof(one));
	if (priv_apply_outbound(fd, err) < 0 ||
	    bind(fd, (struct sockaddr *)&ss, len) < 0 ||
	    listen(fd, SANDBOX_BIND_BACKLOG) < 0) {
		if (*err == 0)
			*err = errno;
		close(fd);
		return -1;
	}
	return fd;
}

static const struct priv_rule priv_rules[] = {
	{ MSG_PRIV_SOCKET, ROLE_FRONT, priv_outbound_configured,
	  priv_make_outbound },
	{ MSG_PRIV_UDP, ROLE_FRONT, priv_udp_enabled, priv_make_udp_relay },
	{ MSG_PRIV_BIND, ROLE_FRONT, priv_bind_enabled, priv_make_bind },
};

static const struct priv_rule *priv_lookup(uint16_t type, enum role sender)
{
	for (size_t i = 0; i < sizeof(priv_rules) / sizeof(priv_rules[0]); i++)
		if (priv_rules[i].type == type && priv_rules[i].sender == sender)
			return &priv_rules[i];
	return NULL;
}

int priv_request(struct child *c, const struct msg *m)
{
	const struct priv_rule *rule = priv_lookup(m->type, c->role);
	struct msg_priv_socket_reply rep = { 0 };
	int fd;

	if (rule == NULL || !rule->permitted(&parent.conf)) {
		LOGE("%s asked for a privileged socket it may not have (%s)",
		     role_name(c->role), msg_name(m->type));
		return -1;
	}
	fd = rule->make(c, m, &rep.err);
	if (fd == -2)
		return -1;
	if (fd < 0 && rep.err == 0)
		rep.err = EIO;
	if (chanev_send(&c->ch, MSG_PRIV_SOCKET_REPLY, m->id, &rep,
			sizeof(rep), fd) < 0)
		LOG_RL(LOGL_WARN, 10, "cannot answer the %s: %s",
		       role_name(c->role), strerror(errno));
	return 0;
}
