/* api_access: who may use the REST API, and how much. The transport
 * (api_conn.c) asks before it reads anything of a connection
 * (api_access_peer_ok: --api-allow; api_access_room: a free slot) and
 * once a request's head is whole, before its body (api_access_check):
 * first the bearer token (401 when one is required and missing or
 * wrong, so that nothing else is learnt without it), then a browser-borne
 * request is refused (an Origin header: CSRF), then, only when no token
 * protects the API, a Host that is not a name of this API (DNS
 * rebinding), and last the level (read-only: GET of /healthy, /stats,
 * /metrics; admin: everything). */
#include "ruleset/api_access.h"

#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "common/addr.h"

#define API_ALLOW_MAX 64
#define API_HOSTS_MAX 32

struct api_cidr {
	int family;
	uint8_t addr[16];
	int bits;
};

static struct {
	struct api_cidr allow[API_ALLOW_MAX]; /* --api-allow */
	int nallow;
	/* what a Host header may name without a token: --api as given, and
	 * (any port) the loopback names and --api-host's */
	char host_self[CONF_ADDR_MAX];
	char hosts[API_HOSTS_MAX][API_HOST_LEN + 1];
	int nhosts;
	char token_admin[API_TOKEN_MAX + 1], token_ro[API_TOKEN_MAX + 1];
	/* slots: all of them, those kept for trusted clients, and what one
	 * address may hold */
	uint32_t max_conns, reserved, per_addr;
} api_access;

void api_access_set_tokens(const char *admin, const char *readonly)
{
	snprintf(api_access.token_admin, sizeof(api_access.token_admin), "%s",
		 admin);
	snprintf(api_access.token_ro, sizeof(api_access.token_ro), "%s",
		 readonly);
}

/* Parse "CIDR,CIDR,...": the count, or -1. */
static int api_access_parse_allow(const char *csv, struct api_cidr *list,
				  int max)
{
	int n = 0;

	while (*csv != '\0') {
		const char *comma = strchr(csv, ',');
		size_t len = comma ? (size_t)(comma - csv) : strlen(csv);

		if (n == max || addr_parse_cidr(csv, len, &list[n].family,
						list[n].addr,
						&list[n].bits) < 0)
			return -1;
		n++;
		csv += len + (comma ? 1 : 0);
	}
	return n;
}

static bool api_access_cidr_match(const struct api_cidr *c, int family,
				  const uint8_t *addr)
{
	int full = c->bits / 8, rest = c->bits % 8;

	if (c->family != family)
		return false;
	if (memcmp(c->addr, addr, (size_t)full) != 0)
		return false;
	return rest == 0 ||
	       ((c->addr[full] ^ addr[full]) & (0xff << (8 - rest))) == 0;
}

bool api_access_peer_ok(const struct sockaddr_storage *ss)
{
	const uint8_t *a;
	int fam = ss->ss_family;

	if (api_access.nallow == 0 || fam == AF_UNIX)
		return true;
	if (fam == AF_INET) {
		a = (const uint8_t *)&((const struct sockaddr_in *)ss)->sin_addr;
	} else if (fam == AF_INET6) {
		const struct in6_addr *a6 =
			&((const struct sockaddr_in6 *)ss)->sin6_addr;

		a = a6->s6_addr;
		if (IN6_IS_ADDR_V4MAPPED(a6)) {
			fam = AF_INET;
			a += 12;
		}
	} else {
		return false;
	}
	for (int i = 0; i < api_access.nallow; i++)
		if (api_access_cidr_match(&api_access.allow[i], fam, a))
			return true;
	return false;
}

void api_access_key_of(const struct sockaddr_storage *ss,
		       struct api_access_key *k)
{
	const struct in6_addr *a6;

	memset(k, 0, sizeof(*k));
	if (ss->ss_family == AF_INET) {
		memcpy(k->b, &((const struct sockaddr_in *)ss)->sin_addr, 4);
		k->len = 4;
		return;
	}
	if (ss->ss_family != AF_INET6)
		return;
	a6 = &((const struct sockaddr_in6 *)ss)->sin6_addr;
	if (IN6_IS_ADDR_V4MAPPED(a6)) {
		memcpy(k->b, a6->s6_addr + 12, 4);
		k->len = 4;
		return;
	}
	memcpy(k->b, a6->s6_addr, 8);
	k->len = 8;
}

bool api_access_key_eq(const struct api_access_key *a,
		       const struct api_access_key *b)
{
	return a->len == b->len && memcmp(a->b, b->b, a->len) == 0;
}

bool api_access_trusted(const struct sockaddr_storage *ss)
{
	struct api_access_key k;

	if (api_access.nallow > 0 || ss->ss_family == AF_UNIX)
		return api_access_peer_ok(ss);
	api_access_key_of(ss, &k);
	if (k.len == 4)
		return k.b[0] == 127;
	return k.len == 8 &&
	       IN6_IS_ADDR_LOOPBACK(
		       &((const struct sockaddr_in6 *)ss)->sin6_addr);
}

const char *api_access_room(uint32_t conns, uint32_t same_key,
			    const struct api_access_key *k, bool trusted)
{
	if (conns >= api_access.max_conns)
		return "--api-max-conns reached";
	if (!trusted && conns >= api_access.max_conns - api_access.reserved)
		return "only the --api-reserved slots are left";
	/* under pressure (less than a quarter of the slots free), one
	 * address gets no more than its share: others are not locked out,
	 * while bursts from one address (RPC calls all come from the local
	 * front) are served when there is room */
	if (k->len > 0 && (api_access.max_conns - conns) * 4 <
				  api_access.max_conns &&
	    same_key >= api_access.per_addr)
		return "--api-max-conns-per-addr reached for its address";
	return NULL;
}

/* Compare in time that depends only on the presented token's length. */
static bool api_access_token_eq(const char *want, const char *got,
				size_t glen)
{
	size_t wlen = strlen(want);
	unsigned char diff = (unsigned char)(wlen != glen);

	for (size_t i = 0; i < glen; i++)
		diff |= (unsigned char)(got[i] ^ want[i < wlen ? i : 0]);
	return wlen > 0 && diff == 0;
}

/* Bearer credentials -> level; API_NONE when missing or wrong. */
static int api_access_auth(const char *buf, const struct http1_head *h)
{
	const struct http1_span *v =
		http1_known_value(h, HTTP1_H_AUTHORIZATION);
	const char *tok;
	size_t len;

	if (!api_access.token_admin[0] && !api_access.token_ro[0])
		return API_ADMIN; /* no tokens configured */
	if (v == NULL || v->len < 7 || strncasecmp(buf + v->off, "Bearer ", 7))
		return API_NONE;
	tok = buf + v->off + 7;
	len = v->len - 7;
	while (len > 0 && *tok == ' ')
		tok++, len--;
	if (api_access.token_admin[0] &&
	    api_access_token_eq(api_access.token_admin, tok, len))
		return API_ADMIN;
	if (api_access.token_ro[0] &&
	    api_access_token_eq(api_access.token_ro, tok, len))
		return API_READ;
	return API_NONE;
}

/* The host of a Host value, without its port: "[v6]" stays bracketed, a
 * name's trailing dot goes. Its length, or 0 when it cannot be a host. */
static size_t api_access_host_part(const char *v, size_t len, char *out,
				   size_t cap)
{
	const char *colon;
	size_t n;

	if (len > 0 && v[0] == '[') {
		const char *rb = memchr(v, ']', len);

		n = rb != NULL ? (size_t)(rb - v) + 1 : 0;
		if (n == 0 || (n < len && v[n] != ':'))
			return 0;
	} else {
		colon = memchr(v, ':', len);
		n = colon != NULL ? (size_t)(colon - v) : len;
		if (n > 1 && v[n - 1] == '.')
			n--;
	}
	if (n == 0 || n >= cap)
		return 0;
	memcpy(out, v, n);
	out[n] = '\0';
	return n;
}

/* Without a token, Host must name this API, so that a web page cannot
 * reach it through a name that resolves here (DNS rebinding): the --api
 * address as given, the address the client connected to, the name peers
 * use (api.neosocksd.internal), or, with any port, a loopback name
 * (an SSH tunnel's localhost:19080) or one of --api-host. */
static bool api_access_host_ok(const char *buf, const struct http1_head *h,
			       const struct api_access_peer *who)
{
	static const char *const loopback[] = { "localhost", "127.0.0.1",
						 "[::1]",
						 "api.neosocksd.internal" };
	const struct http1_span *v = http1_known_value(h, HTTP1_H_HOST);
	char host[API_HOST_LEN + 1];

	if (v == NULL || who->unix_socket || who->tls)
		return true; /* RPC clients send none; no browser has a path;
			      * over TLS a page that rebinds its name to this
			      * API cannot get a browser to accept our
			      * certificate for that name */
	if (http1_span_eq_ci(buf, *v, api_access.host_self) ||
	    (who->host_here[0] && http1_span_eq_ci(buf, *v, who->host_here)))
		return true;
	if (api_access_host_part(buf + v->off, v->len, host, sizeof(host)) ==
	    0)
		return false;
	for (size_t i = 0; i < sizeof(loopback) / sizeof(loopback[0]); i++)
		if (strcasecmp(host, loopback[i]) == 0)
			return true;
	for (int i = 0; i < api_access.nhosts; i++)
		if (strcasecmp(host, api_access.hosts[i]) == 0)
			return true;
	return false;
}

/* Reading is GET on these three paths; all else needs an admin. */
static int api_access_level_needed(const char *method, const char *path)
{
	if (strcmp(method, "GET") == 0 &&
	    (strcmp(path, "/healthy") == 0 || strcmp(path, "/stats") == 0 ||
	     strcmp(path, "/metrics") == 0))
		return API_READ;
	return API_ADMIN;
}

int api_access_check(const char *buf, const struct http1_head *h,
		     const struct api_access_peer *who, const char *method,
		     const char *path, int *level, const char **why)
{
	bool token = api_access.token_admin[0] || api_access.token_ro[0];

	*why = NULL;
	*level = api_access_auth(buf, h);
	if (*level == API_NONE)
		return 401; /* before anything that tells what is known */
	if (http1_known_value(h, HTTP1_H_ORIGIN) != NULL) {
		*why = "a request with an Origin header comes from a web "
		       "page: refused";
		return 403;
	}
	if (!token && !api_access_host_ok(buf, h, who)) {
		*why = "Host is not a name of this API: add the name with "
		       "--api-host, or require a token with --api-token-file";
		return 403; /* a web page reached it through DNS rebinding */
	}
	if (who->cert_readonly && *level > API_READ) {
		*level = API_READ; /* the lower of the two levels counts */
		if (*level < api_access_level_needed(method, path)) {
			*why = "this client certificate is read-only "
			       "(--api-tls-readonly-subject): only GET "
			       "/healthy, /stats and /metrics";
			return 403;
		}
	}
	if (*level < api_access_level_needed(method, path)) {
		*why = "the read-only token allows only GET /healthy, /stats "
		       "and /metrics";
		return 403;
	}
	return 0;
}

/* --api-host "name,name,...": each a host name or an IP literal (an
 * IPv6 one with or without brackets), without a port. The count, or -1
 * when one is not such a name (the parent has checked them already). */
int api_access_parse_hosts(const char *csv, char (*out)[API_HOST_LEN + 1],
			   int max)
{
	int n = 0;

	while (*csv != '\0') {
		const char *comma = strchr(csv, ',');
		size_t len = comma ? (size_t)(comma - csv) : strlen(csv);
		char lit[API_HOST_LEN + 1];
		struct netaddr a;
		bool bracketed = len > 2 && csv[0] == '[' && csv[len - 1] == ']';
		const char *p = bracketed ? csv + 1 : csv;
		size_t plen = bracketed ? len - 2 : len;

		if (plen > 1 && p[plen - 1] == '.' && !bracketed)
			plen--;
		if (n == max || plen == 0 || plen > ADDR_NAME_MAX ||
		    !addr_name_valid(p, plen) ||
		    addr_set_host(&a, p, plen, 0) < 0 ||
		    (bracketed && a.type != ADDR_IPV6))
			return -1;
		if (a.type == ADDR_IPV6)
			snprintf(lit, sizeof(lit), "[%.*s]", (int)plen, p);
		else
			snprintf(lit, sizeof(lit), "%.*s", (int)plen, p);
		if (out != NULL)
			memcpy(out[n], lit, sizeof(lit));
		n++;
		csv += len + (comma ? 1 : 0);
	}
	return n;
}

static void api_access_hosts(const struct config *conf)
{
	snprintf(api_access.host_self, sizeof(api_access.host_self), "%s",
		 conf->restapi);
}

/* The slot settings; 0 (a config not from the settings table, as in
 * tests) means the default. */
static void api_access_slots(const struct config *conf)
{
	api_access.max_conns = conf->api_max_conns > 0
				       ? (uint32_t)conf->api_max_conns
				       : CONF_API_MAX_CONNS;
	api_access.per_addr = conf->api_max_conns_per_addr > 0
				      ? (uint32_t)conf->api_max_conns_per_addr
				      : CONF_API_MAX_PER_ADDR;
	api_access.reserved = conf->api_reserved >= 0
				      ? (uint32_t)conf->api_reserved
				      : api_access.max_conns / 16;
	if (api_access.reserved >= api_access.max_conns)
		api_access.reserved = api_access.max_conns - 1;
}

int api_access_setup(const struct config *conf)
{
	api_access_slots(conf);
	api_access.nallow = api_access_parse_allow(conf->api_allow,
						   api_access.allow,
						   API_ALLOW_MAX);
	if (api_access.nallow < 0)
		return -1;
	api_access.nhosts = api_access_parse_hosts(conf->api_host,
						   api_access.hosts,
						   API_HOSTS_MAX);
	if (api_access.nhosts < 0)
		return -1;
	api_access_hosts(conf);
	return 0;
}
