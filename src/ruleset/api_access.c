/* api_access: who may use the REST API, and how much. The transport
 * (api_conn.c) asks before it reads anything of a connection
 * (api_access_peer_ok: --api-allow) and once a request's head is whole,
 * before its body (api_access_check): a browser-borne request is refused
 * (an Origin header, or a Host that names something else than this API:
 * CSRF, DNS rebinding), then the bearer token gives the level (read-only:
 * GET of /healthy, /stats, /metrics; admin: everything). */
#include "ruleset/api_access.h"

#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "common/addr.h"

#define API_ALLOW_MAX 64

struct api_cidr {
	int family;
	uint8_t addr[16];
	int bits;
};

static struct {
	struct api_cidr allow[API_ALLOW_MAX]; /* --api-allow */
	int nallow;
	/* what a Host header may name: --api as given, localhost:port */
	char host_self[CONF_ADDR_MAX], host_local[64];
	char token_admin[API_TOKEN_MAX + 1], token_ro[API_TOKEN_MAX + 1];
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
		a = ((const struct sockaddr_in6 *)ss)->sin6_addr.s6_addr;
		if (IN6_IS_ADDR_V4MAPPED((const struct in6_addr *)a)) {
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

/* Host must name this API, so a web page cannot reach it through a name
 * that resolves here (DNS rebinding). */
static bool api_access_host_ok(const char *buf, const struct http1_head *h,
			       const struct api_access_peer *who)
{
	const struct http1_span *v = http1_known_value(h, HTTP1_H_HOST);

	if (v == NULL || who->unix_socket)
		return true; /* RPC clients send none; no browser has a path */
	return http1_span_eq_ci(buf, *v, api_access.host_self) ||
	       (who->host_here[0] &&
		http1_span_eq_ci(buf, *v, who->host_here)) ||
	       (api_access.host_local[0] &&
		http1_span_eq_ci(buf, *v, api_access.host_local)) ||
	       http1_span_eq_ci(buf, *v, "api.neosocksd.internal") ||
	       http1_span_eq_ci(buf, *v, "api.neosocksd.internal:80");
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
		     const char *path, int *level)
{
	if (http1_known_value(h, HTTP1_H_ORIGIN) != NULL ||
	    !api_access_host_ok(buf, h, who))
		return 403; /* a browser was made to send this */
	*level = api_access_auth(buf, h);
	if (*level == API_NONE)
		return 401;
	if (*level < api_access_level_needed(method, path))
		return 403;
	return 0;
}

static void api_access_hosts(const struct config *conf)
{
	struct sockaddr_storage ss;
	uint16_t port;

	snprintf(api_access.host_self, sizeof(api_access.host_self), "%s",
		 conf->restapi);
	if (conf->restapi[0] == '/' ||
	    addr_parse_listen(conf->restapi, &ss) < 0)
		return;
	port = ss.ss_family == AF_INET
		       ? ntohs(((struct sockaddr_in *)&ss)->sin_port)
		       : ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	snprintf(api_access.host_local, sizeof(api_access.host_local),
		 "localhost:%u", port);
}

int api_access_setup(const struct config *conf)
{
	api_access.nallow = api_access_parse_allow(conf->api_allow,
						   api_access.allow,
						   API_ALLOW_MAX);
	if (api_access.nallow < 0)
		return -1;
	api_access_hosts(conf);
	return 0;
}
