#include "front/resolver.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/dns.h>
#include <event2/util.h>
#include <net/if.h>

#include "common/addr.h"
#include "common/log.h"

struct resolver_query {
	resolver_cb cb;
	void *arg;
	struct evdns_getaddrinfo_request *req;
	bool in_call, cancelled, done_now;
	int result;
	struct sockaddr_storage ss;
	socklen_t len;
};

struct hosts_entry {
	char *name; /* lower case */
	bool has4, has6;
	struct in_addr a4;
	struct in6_addr a6;
};

/* Interface zones of link-local nameservers ("fe80::1%eth0"), looked up
 * with if_nametoindex() while the front may still do so: after the
 * sandbox, that call (a socket and an ioctl) would kill the process. */
#define ZONES_MAX 8

struct zone {
	char name[IF_NAMESIZE];
	unsigned index;
};

static struct {
	struct evdns_base *dns;
	int family;
	bool skip_ns; /* --nameserver replaces resolv.conf's servers */
	bool started; /* the sandbox is on: no more interface lookups */
	struct zone zones[ZONES_MAX];
	unsigned nzones;
	struct hosts_entry *hosts; /* open addressing, power of two */
	size_t hcap, hcount;
	struct resolver_stats stats;
} resolver;

static uint32_t resolver_hash(const char *s, size_t n)
{
	uint32_t h = 2166136261u;

	for (size_t i = 0; i < n; i++) {
		h ^= (uint8_t)tolower((unsigned char)s[i]);
		h *= 16777619u;
	}
	return h;
}

static struct hosts_entry *hosts_find(const char *name, size_t n, bool add)
{
	size_t i;

	if (resolver.hcap == 0)
		return NULL;
	i = resolver_hash(name, n) & (resolver.hcap - 1);
	for (;; i = (i + 1) & (resolver.hcap - 1)) {
		struct hosts_entry *e = &resolver.hosts[i];
		if (e->name == NULL) {
			if (!add || resolver.hcount * 2 >= resolver.hcap)
				return NULL;
			e->name = strndup(name, n);
			if (e->name == NULL)
				return NULL;
			for (char *p = e->name; *p; p++)
				*p = (char)tolower((unsigned char)*p);
			resolver.hcount++;
			return e;
		}
		if (strncasecmp(e->name, name, n) == 0 && e->name[n] == '\0')
			return e;
	}
}

static void hosts_add(const char *ip, size_t iplen, const char *name,
		      size_t nlen)
{
	char buf[INET6_ADDRSTRLEN];
	struct in_addr a4;
	struct in6_addr a6;
	struct hosts_entry *e;
	int fam;

	if (iplen >= sizeof(buf) || nlen == 0 || nlen > ADDR_NAME_MAX)
		return;
	memcpy(buf, ip, iplen);
	buf[iplen] = '\0';
	if (inet_pton(AF_INET, buf, &a4) == 1)
		fam = AF_INET;
	else if (inet_pton(AF_INET6, buf, &a6) == 1)
		fam = AF_INET6;
	else
		return;
	e = hosts_find(name, nlen, true);
	if (e == NULL)
		return;
	/* the first entry of a family wins, as in glibc's files backend */
	if (fam == AF_INET && !e->has4) {
		e->a4 = a4;
		e->has4 = true;
	} else if (fam == AF_INET6 && !e->has6) {
		e->a6 = a6;
		e->has6 = true;
	}
}

static const char *next_field(const char *p, const char *end, size_t *n)
{
	while (p < end && (*p == ' ' || *p == '\t'))
		p++;
	*n = 0;
	while (p + *n < end && p[*n] != ' ' && p[*n] != '\t')
		(*n)++;
	return p;
}

/* Call fn for each line with comments stripped. */
static void for_each_line(const char *s, size_t len,
			  void (*fn)(const char *, const char *))
{
	const char *p = s, *end = s + len;

	while (p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		const char *le = eol != NULL ? eol : end;
		const char *hash = memchr(p, '#', (size_t)(le - p));

		if (hash != NULL)
			le = hash;
		fn(p, le);
		p = eol != NULL ? eol + 1 : end;
	}
}

static void hosts_line(const char *p, const char *end)
{
	size_t iplen, n;
	const char *ip = next_field(p, end, &iplen);

	if (iplen == 0)
		return;
	for (p = ip + iplen; p < end; p += n) {
		p = next_field(p, end, &n);
		if (n > 0)
			hosts_add(ip, iplen, p, n);
	}
}

/* The interface index of a zone: a number, or a name learned before the
 * sandbox. 0 when unknown. */
static unsigned resolver_zone(const char *zone)
{
	char *end;
	unsigned long v;
	unsigned i;

	if (zone[0] >= '0' && zone[0] <= '9') {
		v = strtoul(zone, &end, 10);
		return *end == '\0' && v <= UINT32_MAX ? (unsigned)v : 0;
	}
	if (strlen(zone) >= IF_NAMESIZE)
		return 0;
	for (i = 0; i < resolver.nzones; i++)
		if (strcmp(resolver.zones[i].name, zone) == 0)
			return resolver.zones[i].index;
	if (resolver.started || resolver.nzones == ZONES_MAX)
		return 0;
	v = if_nametoindex(zone);
	if (v == 0)
		return 0;
	strcpy(resolver.zones[resolver.nzones].name, zone);
	resolver.zones[resolver.nzones++].index = (unsigned)v;
	return (unsigned)v;
}

/* A resolv.conf nameserver: an IP literal, IPv6 perhaps with a zone. It
 * is parsed here and handed to evdns as a sockaddr, because libevent's
 * own parser looks zones up with if_nametoindex() at any time. */
static int resolver_ns_add(char *val)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	struct sockaddr_in6 sin6 = { .sin6_family = AF_INET6 };
	char *pct = strchr(val, '%');

	sin.sin_port = sin6.sin6_port = htons(53);
	if (pct == NULL && inet_pton(AF_INET, val, &sin.sin_addr) == 1)
		return evdns_base_nameserver_sockaddr_add(
			resolver.dns, (struct sockaddr *)&sin, sizeof(sin), 0);
	if (pct != NULL)
		*pct = '\0';
	if (inet_pton(AF_INET6, val, &sin6.sin6_addr) != 1)
		return -1;
	if (pct != NULL) {
		sin6.sin6_scope_id = resolver_zone(pct + 1);
		*pct = '%';
		if (sin6.sin6_scope_id == 0)
			return -1;
	}
	return evdns_base_nameserver_sockaddr_add(
		resolver.dns, (struct sockaddr *)&sin6, sizeof(sin6), 0);
}

/* "search a b c" or "domain a": the last such line wins (resolv.conf(5)).
 * evdns_base_search_add() puts a domain first, so they are added last to
 * first. The domains are appended to names sent to evdns: the same
 * rules as names apply. */
#define SEARCH_MAX 6

static void resolver_search_line(const char *p, const char *end)
{
	const char *dom[SEARCH_MAX] = { 0 };
	size_t len[SEARCH_MAX] = { 0 }, n;
	unsigned count = 0;
	char val[ADDR_NAME_MAX + 1];

	evdns_base_search_clear(resolver.dns);
	for (; p < end && count < SEARCH_MAX; p += n) {
		p = next_field(p, end, &n);
		if (n == 0)
			continue;
		if (n >= sizeof(val) || !addr_name_valid(p, n)) {
			LOGW("resolv.conf: search domain '%.*s' not used",
			     (int)(n < 64 ? n : 64), p);
			continue;
		}
		dom[count] = p;
		len[count++] = n;
	}
	while (count-- > 0) {
		memcpy(val, dom[count], len[count]);
		val[len[count]] = '\0';
		evdns_base_search_add(resolver.dns, val);
	}
}

static void resolvconf_line(const char *p, const char *end)
{
	char key[32], val[256];
	size_t n;
	const char *k = next_field(p, end, &n);

	if (n == 0 || n >= sizeof(key))
		return;
	memcpy(key, k, n);
	key[n] = '\0';
	for (p = k + n; p < end; p += n) {
		p = next_field(p, end, &n);
		if (n == 0 || n >= sizeof(val))
			continue;
		memcpy(val, p, n);
		val[n] = '\0';
		if (strcmp(key, "nameserver") == 0) {
			if (!resolver.skip_ns && resolver_ns_add(val) != 0)
				LOGW("resolv.conf: nameserver '%s' not used%s",
				     val,
				     resolver.started &&
						     strchr(val, '%') != NULL
					     ? " (a zone not known at start)"
					     : "");
			break;
		} else if (strcmp(key, "search") == 0 ||
			   strcmp(key, "domain") == 0) {
			resolver_search_line(p, end);
			break;
		} else if (strcmp(key, "options") == 0) {
			char *colon = strchr(val, ':');
			if (colon == NULL)
				continue;
			*colon = '\0';
			if (strcmp(val, "ndots") == 0 ||
			    strcmp(val, "timeout") == 0 ||
			    strcmp(val, "attempts") == 0)
				evdns_base_set_option(resolver.dns, val,
						      colon + 1);
		}
	}
}

static void hosts_free(void)
{
	for (size_t i = 0; i < resolver.hcap; i++)
		free(resolver.hosts[i].name);
	free(resolver.hosts);
	resolver.hosts = NULL;
	resolver.hcap = resolver.hcount = 0;
}

/* The hosts table from the file's contents (replacing any). */
static int resolver_load_hosts(const char *hosts, size_t hlen)
{
	hosts_free();
	resolver.hcap = 64;
	while (resolver.hcap < hlen / 8 && resolver.hcap < (1u << 22))
		resolver.hcap <<= 1;
	resolver.hosts = calloc(resolver.hcap, sizeof(resolver.hosts[0]));
	if (resolver.hosts == NULL) {
		resolver.hcap = 0;
		return -1;
	}
	for_each_line(hosts, hlen, hosts_line);
	return 0;
}

int resolver_init(struct event_base *base, int family,
		  const char *resolvconf, size_t rlen, const char *hosts,
		  size_t hlen, const char *nameserver)
{
	resolver.family = family;
	resolver.dns = evdns_base_new(base, EVDNS_BASE_DISABLE_WHEN_INACTIVE);
	if (resolver.dns == NULL)
		return -1;
	/* the system default is 5 s x 2 attempts; keep within -t */
	evdns_base_set_option(resolver.dns, "timeout", "5");
	evdns_base_set_option(resolver.dns, "attempts", "2");
	if (nameserver != NULL && nameserver[0] != '\0') {
		if (evdns_base_nameserver_ip_add(resolver.dns,
						 nameserver) != 0) {
			LOGE("--nameserver: cannot use '%s'", nameserver);
			return -1;
		}
		resolver.skip_ns = true;
	}
	for_each_line(resolvconf, rlen, resolvconf_line);
	if (resolver_load_hosts(hosts, hlen) < 0)
		return -1;
	resolver.started = true; /* the front is sandboxed next */
	LOGD("resolver: %d nameservers, %zu hosts entries",
	     evdns_base_count_nameservers(resolver.dns), resolver.hcount);
	return 0;
}

int resolver_reload(const char *resolvconf, size_t rlen, const char *hosts,
		    size_t hlen)
{
	if (resolver.dns == NULL)
		return -1;
	if (!resolver.skip_ns) {
		/* queries in flight are kept and retried on the new servers */
		evdns_base_clear_nameservers_and_suspend(resolver.dns);
		evdns_base_search_clear(resolver.dns);
		for_each_line(resolvconf, rlen, resolvconf_line);
		evdns_base_resume(resolver.dns);
	}
	if (resolver_load_hosts(hosts, hlen) < 0)
		return -1;
	LOGN("resolver reloaded: %d nameservers, %zu hosts entries",
	     evdns_base_count_nameservers(resolver.dns), resolver.hcount);
	return 0;
}

void resolver_free(void)
{
	if (resolver.dns != NULL)
		evdns_base_free(resolver.dns, 1);
	hosts_free();
	memset(&resolver, 0, sizeof(resolver));
}

const struct resolver_stats *resolver_stats(void)
{
	return &resolver.stats;
}

static int set_v4(struct sockaddr_storage *ss, socklen_t *len,
		  const struct in_addr *a)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;

	memset(ss, 0, sizeof(*ss));
	sin->sin_family = AF_INET;
	sin->sin_addr = *a;
	*len = sizeof(*sin);
	return 1;
}

static int set_v6(struct sockaddr_storage *ss, socklen_t *len,
		  const struct in6_addr *a)
{
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	sin6->sin6_family = AF_INET6;
	sin6->sin6_addr = *a;
	*len = sizeof(*sin6);
	return 1;
}

static bool name_is(const char *name, size_t n, const char *suffix)
{
	size_t sl = strlen(suffix);

	if (n == sl - 1 && strncasecmp(name, suffix + 1, n) == 0)
		return true; /* the bare name without the leading dot */
	return n > sl && strcasecmp(name + n - sl, suffix) == 0;
}

/* Answers that need no query: literals, hosts, localhost, .invalid. */
static int resolver_local(const char *name, int family,
			  struct sockaddr_storage *ss, socklen_t *len)
{
	size_t n = strlen(name);
	struct hosts_entry *e;
	struct in_addr a4;
	struct in6_addr a6;
	bool want4 = family != AF_INET6, want6 = family != AF_INET;

	if (n > 0 && name[n - 1] == '.')
		n--; /* a fully qualified name */
	if (inet_pton(AF_INET, name, &a4) == 1)
		return want4 ? set_v4(ss, len, &a4) : -1;
	if (inet_pton(AF_INET6, name, &a6) == 1)
		return want6 ? set_v6(ss, len, &a6) : -1;
	e = hosts_find(name, n, false);
	if (e != NULL) {
		if (want4 && e->has4)
			return set_v4(ss, len, &e->a4);
		if (want6 && e->has6)
			return set_v6(ss, len, &e->a6);
	}
	if (name_is(name, n, ".localhost")) {
		if (want4) {
			a4.s_addr = htonl(INADDR_LOOPBACK);
			return set_v4(ss, len, &a4);
		}
		return set_v6(ss, len, &in6addr_loopback);
	}
	if (name_is(name, n, ".invalid"))
		return -1;
	return 0;
}

static void resolver_done(int result, struct evutil_addrinfo *res, void *arg)
{
	struct resolver_query *q = arg;
	struct evutil_addrinfo *ai;

	if (result == EVUTIL_EAI_CANCEL || q->cancelled) {
		if (res != NULL)
			evutil_freeaddrinfo(res);
		if (!q->in_call)
			free(q);
		else
			q->cancelled = true;
		return;
	}
	q->result = -1;
	for (ai = res; result == 0 && ai != NULL; ai = ai->ai_next) {
		if ((ai->ai_family == AF_INET || ai->ai_family == AF_INET6) &&
		    ai->ai_addrlen <= sizeof(q->ss)) {
			memcpy(&q->ss, ai->ai_addr, ai->ai_addrlen);
			q->len = (socklen_t)ai->ai_addrlen;
			q->result = 0;
			break;
		}
	}
	if (res != NULL)
		evutil_freeaddrinfo(res);
	if (q->result == 0)
		resolver.stats.success++;
	if (q->in_call) {
		q->done_now = true;
		return;
	}
	q->cb(q->result, q->result == 0 ? (struct sockaddr *)&q->ss : NULL,
	      q->len, q->arg);
	free(q);
}

int resolver_lookup(const char *name, int family,
		    struct sockaddr_storage *ss, socklen_t *len, resolver_cb cb,
		    void *arg, struct resolver_query **qp)
{
	struct evutil_addrinfo hints;
	struct resolver_query *q;
	int r;

	*qp = NULL;
	/* the last gate before libevent: whatever the caller checked */
	if (!addr_name_valid(name, strlen(name)))
		return -1;
	if (family == AF_UNSPEC)
		family = resolver.family;
	else if (resolver.family != AF_UNSPEC && family != resolver.family)
		return -1; /* -6, and IPv4 is asked for (or the reverse) */
	r = resolver_local(name, family, ss, len);
	if (r != 0)
		return r;
	resolver.stats.queries++;
	q = calloc(1, sizeof(*q));
	if (q == NULL)
		return -1;
	q->cb = cb;
	q->arg = arg;
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = family;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_protocol = IPPROTO_TCP;
	q->in_call = true;
	q->req = evdns_getaddrinfo(resolver.dns, name, NULL, &hints,
				   resolver_done, q);
	q->in_call = false;
	if (q->req == NULL) {
		/* answered (or failed) inside the call */
		r = q->done_now && q->result == 0 ? 1 : -1;
		if (r == 1) {
			memcpy(ss, &q->ss, q->len);
			*len = q->len;
		}
		free(q);
		return r;
	}
	*qp = q;
	return 0;
}

void resolver_cancel(struct resolver_query *q)
{
	if (q == NULL)
		return;
	q->cancelled = true;
	/* runs resolver_done with EVUTIL_EAI_CANCEL, which frees q */
	evdns_getaddrinfo_cancel(q->req);
}
