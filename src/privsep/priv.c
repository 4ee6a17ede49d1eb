/* priv: the parent's table of privileged requests. A child may ask only
 * for what its role and the configuration permit; the parent applies the
 * configured values itself, never values chosen by the child. Anything
 * else is refused and the child is killed by the caller. */
#include "privsep/priv.h"

#include <errno.h>
#include <linux/capability.h>
#include <net/if.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/log.h"
#include "privsep/parent.h"

struct priv_rule {
	uint16_t type;  /* request message type */
	uint8_t sender; /* enum role allowed to ask */
	bool (*permitted)(const struct config *c);
};

static bool priv_outbound_configured(const struct config *c)
{
	return c->netdev[0] != '\0' || c->mark > 0;
}

static const struct priv_rule priv_rules[] = {
	{ MSG_PRIV_SOCKET, ROLE_FRONT, priv_outbound_configured },
};

static const struct priv_rule *priv_lookup(uint16_t type, enum role sender)
{
	for (size_t i = 0; i < sizeof(priv_rules) / sizeof(priv_rules[0]); i++)
		if (priv_rules[i].type == type && priv_rules[i].sender == sender)
			return &priv_rules[i];
	return NULL;
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

/* An outbound TCP socket with the configured SO_BINDTODEVICE / SO_MARK. */
static int priv_make_socket(int family, int *err)
{
	const struct config *c = &parent.conf;
	int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
			IPPROTO_TCP);

	if (fd < 0) {
		*err = errno;
		return -1;
	}
	if (c->netdev[0] != '\0' &&
	    setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, c->netdev,
		       (socklen_t)strlen(c->netdev)) < 0) {
		*err = errno;
		LOG_RL(LOGL_WARN, 10, "SO_BINDTODEVICE %s: %s", c->netdev,
		       strerror(errno));
		close(fd);
		return -1;
	}
	if (c->mark > 0 &&
	    setsockopt(fd, SOL_SOCKET, SO_MARK, &c->mark, sizeof(c->mark)) < 0) {
		*err = errno;
		LOG_RL(LOGL_WARN, 10, "SO_MARK %d: %s", c->mark,
		       strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

int priv_socket(struct child *c, const struct msg *m)
{
	const struct priv_rule *rule = priv_lookup(m->type, c->role);
	struct msg_priv_socket req;
	struct msg_priv_socket_reply rep = { 0 };
	int fd = -1;

	if (rule == NULL || !rule->permitted(&parent.conf)) {
		LOGE("%s asked for a privileged socket it may not have",
		     role_name(c->role));
		return -1;
	}
	memcpy(&req, m->data, sizeof(req));
	if (req.family != AF_INET && req.family != AF_INET6) {
		LOGE("%s asked for a socket of family %u", role_name(c->role),
		     req.family);
		return -1;
	}
	fd = priv_make_socket((int)req.family, &rep.err);
	if (chanev_send(&c->ch, MSG_PRIV_SOCKET_REPLY, m->id, &rep,
			sizeof(rep), fd) < 0)
		LOG_RL(LOGL_WARN, 10, "cannot answer the %s: %s",
		       role_name(c->role), strerror(errno));
	return 0;
}
