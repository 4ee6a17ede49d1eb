/* selfdial: refuse first hops that are this daemon's own endpoints. See
 * selfdial.h for the rule and why. */
#include "front/selfdial.h"

#include <netinet/in.h>
#include <string.h>

#include "common/addr.h"
#include "common/log.h"

#define SELFDIAL_MAX 8 /* listeners (3 at most today) and the API */

/* An endpoint, its address in IPv6 form (IPv4 as ::ffff:a.b.c.d). */
struct self_ep {
	uint8_t ip[16];
	uint16_t port;
	bool wildcard; /* bound to 0.0.0.0 or :: */
};

static struct {
	struct self_ep ep[SELFDIAL_MAX];
	unsigned n;
	bool allow;
} selfdial;

/* sa (AF_INET / AF_INET6) as a 16-byte address and a port. */
static bool selfdial_norm(const struct sockaddr *sa, uint8_t ip[16],
			  uint16_t *port)
{
	struct netaddr a;

	if (addr_from_sockaddr(&a, sa) != 0)
		return false;
	(void)addr_unmap(&a);
	memset(ip, 0, 16);
	if (a.type == ADDR_IPV4) {
		ip[10] = ip[11] = 0xff;
		memcpy(ip + 12, a.u.v4, 4);
	} else {
		memcpy(ip, a.u.v6, 16);
	}
	*port = a.port;
	return true;
}

static bool selfdial_is_v4(const uint8_t ip[16])
{
	static const uint8_t mapped[12] = { [10] = 0xff, [11] = 0xff };

	return memcmp(ip, mapped, sizeof(mapped)) == 0;
}

/* 0.0.0.0 / :: (which connect() sends to this host) */
static bool selfdial_unspecified(const uint8_t ip[16])
{
	static const uint8_t zero[16];

	if (selfdial_is_v4(ip))
		return memcmp(ip + 12, zero, 4) == 0;
	return memcmp(ip, zero, 16) == 0;
}

static bool selfdial_loopback(const uint8_t ip[16])
{
	static const uint8_t one[16] = { [15] = 1 };

	if (selfdial_is_v4(ip))
		return ip[12] == 127;
	return memcmp(ip, one, 16) == 0;
}

static void selfdial_add(const struct sockaddr *sa)
{
	struct self_ep e;

	if (selfdial.n == SELFDIAL_MAX || !selfdial_norm(sa, e.ip, &e.port))
		return;
	e.wildcard = selfdial_unspecified(e.ip);
	selfdial.ep[selfdial.n++] = e;
}

int selfdial_add_listener(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
		return -1;
	selfdial_add((struct sockaddr *)&ss);
	return 0;
}

void selfdial_setup(const struct config *c)
{
	struct sockaddr_storage ss;

	selfdial.allow = c->allow_self_dial;
	/* a unix-socket API cannot be dialed over TCP */
	if (c->restapi[0] && c->restapi[0] != '/' &&
	    addr_parse_listen(c->restapi, &ss) > 0) {
		selfdial_add((struct sockaddr *)&ss);
		if (selfdial.n > 0 && selfdial.ep[selfdial.n - 1].port == 0)
			LOGW("--api %s: port 0 is not known to the front; the "
			     "API port cannot be protected from proxy clients",
			     c->restapi);
	}
}

/* An address of this host that the front knows without asking the
 * kernel: loopback, unspecified, or one of our listeners' addresses. */
static bool selfdial_own_address(const uint8_t ip[16])
{
	if (selfdial_loopback(ip) || selfdial_unspecified(ip))
		return true;
	for (unsigned i = 0; i < selfdial.n; i++)
		if (!selfdial.ep[i].wildcard && memcmp(selfdial.ep[i].ip, ip, 16) == 0)
			return true;
	return false;
}

static bool selfdial_our_port(uint16_t port)
{
	for (unsigned i = 0; i < selfdial.n; i++)
		if (selfdial.ep[i].port == port)
			return true;
	return false;
}

bool selfdial_refused(const struct sockaddr *sa)
{
	uint8_t ip[16];
	uint16_t port;

	if (selfdial.allow || !selfdial_norm(sa, ip, &port))
		return false;
	return selfdial_our_port(port) && selfdial_own_address(ip);
}

/* peer is the address connect() was given: with TCP_FASTOPEN_CONNECT
 * the SYN waits for the first write and getpeername() says ENOTCONN, but
 * the local address is chosen by then. */
bool selfdial_connected_to_self(int fd, const struct sockaddr *peer)
{
	struct sockaddr_storage local;
	socklen_t llen = sizeof(local);
	uint8_t lip[16], pip[16];
	uint16_t lport, pport;

	if (selfdial.allow)
		return false;
	if (!selfdial_norm(peer, pip, &pport))
		return true; /* cannot tell: refuse */
	/* a port that is none of ours needs no system call to clear */
	if (!selfdial_our_port(pport))
		return false;
	if (getsockname(fd, (struct sockaddr *)&local, &llen) < 0 ||
	    !selfdial_norm((struct sockaddr *)&local, lip, &lport))
		return true;
	return memcmp(lip, pip, 16) == 0 || selfdial_own_address(pip);
}
