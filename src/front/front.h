/* front: the unprivileged data-plane process (listeners, handshakes, DNS,
 * dialing, relaying). */
#ifndef NEOSOCKSD_FRONT_H
#define NEOSOCKSD_FRONT_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/time.h>

#include "common/addr.h"
#include "common/config.h"
#include "common/proxyuri.h"

/* The configuration compiled for fast use by sessions. */
struct front_conf {
	struct config c;
	struct proxy_hop hops[PROXYCHAIN_MAX]; /* -x, first hop first */
	size_t nhops;
	char chain_text[CONF_PROXY_MAX]; /* "socks5://a->http://b" for logs */
	struct netaddr forward;          /* -f */
	bool has_forward;
	bool use_ruleset; /* -r or -c: ask the ruleset process */
	struct timeval timeout;
};

int front_main(void);

#endif
