/* front: the unprivileged data-plane process (listeners, handshakes, DNS,
 * dialing, relaying). */
#ifndef NEOSOCKSD_FRONT_H
#define NEOSOCKSD_FRONT_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/time.h>

#include "common/addr.h"
#include "common/config.h"
#include "common/msg.h"
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

/* The process's life, driven by the parent's messages (front_parent.c). */
/* CONFIG: the settings (before START). 0 or -1. */
int front_set_config(const void *data, size_t len);
/* RESOLVCONF and HOSTS: the resolver files (at start, and on SIGHUP). */
int front_set_resolvconf(const void *data, size_t len);
int front_set_hosts(const void *data, size_t len);
/* START: set everything up, apply the sandbox, send READY. 0 or -1. */
int front_start(const struct msg_sandbox *sb);
/* SHUTDOWN: stop accepting, drain, exit. */
void front_shutdown(const struct msg_shutdown *m);
/* Flush what is queued for the parent, then exit. */
void front_exit(int code) __attribute__((noreturn));

#endif
