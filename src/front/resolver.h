/* resolver: name resolution for the front, without touching files.
 *
 * The parent sends the contents of resolv.conf and hosts; this module
 * parses them (nameservers, search, options ndots/timeout/attempts; hosts
 * entries) into libevent's evdns and a small hosts table. Lookups answer
 * IP literals, "localhost" and hosts entries at once, refuse names in
 * the "invalid" top-level domain at once (RFC 6761), and ask evdns
 * otherwise. */
#ifndef NEOSOCKSD_RESOLVER_H
#define NEOSOCKSD_RESOLVER_H

#include <stddef.h>
#include <sys/socket.h>

#include <event2/event.h>

struct resolver_query;

/* result: 0 and the first address (port 0) in *sa, or -1 on failure. */
typedef void (*resolver_cb)(int result, const struct sockaddr *sa,
			    socklen_t salen, void *arg);

/* family: AF_UNSPEC, AF_INET or AF_INET6 (from -4/-6). nameserver: an
 * "ip[:port]" that replaces resolv.conf's servers, or NULL. 0 or -1. */
/* SIGHUP: new resolv.conf and hosts contents (nameservers are kept when
 * --nameserver names one). 0 or -1. */
int resolver_reload(const char *resolvconf, size_t rlen, const char *hosts,
		    size_t hlen);
int resolver_init(struct event_base *base, int family,
		  const char *resolvconf, size_t rlen, const char *hosts,
		  size_t hlen, const char *nameserver);
void resolver_free(void);

/* Resolve name to an address of family (AF_UNSPEC: the daemon's, from
 * -4/-6; AF_INET for a socks4:// hop, which fails on a -6 daemon).
 * Returns 1 with *ss and *len filled when answered at once, -1 when it
 * fails at once, or 0 when pending: cb runs later (never inside this
 * call) and *q can be passed to resolver_cancel() until then. */
int resolver_lookup(const char *name, int family,
		    struct sockaddr_storage *ss, socklen_t *len, resolver_cb cb,
		    void *arg, struct resolver_query **q);
/* Cancel a pending lookup; its callback will not run. */
void resolver_cancel(struct resolver_query *q);

/* Counters for /stats. */
struct resolver_stats {
	unsigned long long queries, success;
};
const struct resolver_stats *resolver_stats(void);

#endif
