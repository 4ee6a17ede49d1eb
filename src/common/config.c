#include "common/config.h"

#include <math.h>
#include <stdio.h>
#include <stdarg.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "common/addr.h"
#include "common/proxyuri.h"

void config_defaults(struct config *c)
{
	memset(c, 0, sizeof(*c));
	c->size = sizeof(*c);
	c->loglevel = 4;
	c->timeout = 60.0;
	c->pipe = true;
	c->tcp_fastopen = true;
	c->tcp_nodelay = true;
	c->tcp_keepalive = true;
	c->block_multicast = true;
	c->startup_limit_rate = 30;
	c->drain_timeout = 10.0;
	c->api_timeout = CONF_API_TIMEOUT;
	c->api_idle = CONF_API_IDLE;
	c->api_max_conns = CONF_API_MAX_CONNS;
	c->api_mode = CONF_API_MODE;
	snprintf(c->jail_dir, sizeof(c->jail_dir), "%s", CONF_JAIL_DEFAULT);
}

static int config_fail(char *err, size_t cap, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int config_fail(char *err, size_t cap, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, cap, fmt, ap);
	va_end(ap);
	return -1;
}

static int config_check_addrs(const struct config *c, char *err, size_t cap)
{
	struct sockaddr_storage ss;
	struct netaddr na;
	char host[CONF_ADDR_MAX], port[8];

	if (c->listen[0] && addr_parse_listen(c->listen, &ss) < 0)
		return config_fail(err, cap,
				   "-l: invalid listen address '%s' "
				   "(want host:port, [v6]:port or :port)",
				   c->listen);
	if (c->http_listen[0] && addr_parse_listen(c->http_listen, &ss) < 0)
		return config_fail(err, cap,
				   "--http: invalid listen address '%s'",
				   c->http_listen);
	if (c->restapi[0] && c->restapi[0] != '/' &&
	    addr_parse_listen(c->restapi, &ss) < 0)
		return config_fail(err, cap,
				   "--api: invalid listen address '%s' (want "
				   "host:port, [v6]:port or an absolute unix "
				   "socket path)",
				   c->restapi);
	if (c->forward[0]) {
		if (addr_splithostport(c->forward, strlen(c->forward), host,
				       sizeof(host), port, sizeof(port)) < 0 ||
		    (host[0] == '\0' && port[0] == '\0' && !c->ruleset[0] &&
		     !c->config_file[0]) ||
		    (!(host[0] == '\0' && port[0] == '\0') &&
		     addr_parse(&na, c->forward, strlen(c->forward), -1) < 0))
			return config_fail(err, cap,
					   "-f: invalid forward address '%s' "
					   "(want host:port)",
					   c->forward);
	}
	if (c->nameserver[0] &&
	    addr_parse(&na, c->nameserver, strlen(c->nameserver), 53) < 0)
		return config_fail(err, cap,
				   "--nameserver: invalid address '%s'",
				   c->nameserver);
	if (c->nameserver[0] && na.type == ADDR_DOMAIN)
		return config_fail(err, cap,
				   "--nameserver: '%s' is not an IP address",
				   c->nameserver);
	return 0;
}

static int config_check_proxy(const struct config *c, char *err, size_t cap)
{
	static struct proxy_hop hops[PROXYCHAIN_MAX];
	size_t n;
	const char *why = "";

	if (!c->proxy[0])
		return 0;
	if (proxyuri_parse_chain(hops, PROXYCHAIN_MAX, &n, c->proxy,
				 strlen(c->proxy), &why) < 0)
		return config_fail(err, cap, "-x: %s in '%s'", why, c->proxy);
	return 0;
}

static int config_check_limits(const struct config *c, char *err, size_t cap)
{
	if (c->loglevel < 0 || c->loglevel > 8)
		return config_fail(err, cap,
				   "--loglevel: %d is out of range (0 - 8)",
				   c->loglevel);
	if (!(c->timeout >= CONF_TIMEOUT_MIN && c->timeout <= CONF_TIMEOUT_MAX))
		return config_fail(err, cap,
				   "-t: timeout %g is out of range (5 - 86400)",
				   c->timeout);
	if (c->resolve_pf != 0 && c->resolve_pf != AF_INET &&
	    c->resolve_pf != AF_INET6)
		return config_fail(err, cap, "resolve_pf: bad value %d",
				   c->resolve_pf);
	if (c->memlimit < 0 || c->memlimit > 65536)
		return config_fail(err, cap,
				   "--memlimit: %d MiB is out of range (0 - "
				   "65536; 0: the default)",
				   c->memlimit);
	if (c->max_sessions < 0)
		return config_fail(err, cap,
				   "-m: max sessions must not be negative");
	if (c->startup_limit_start < 0 || c->startup_limit_full < 0)
		return config_fail(err, cap,
				   "--max-startups: values must not be negative");
	if (c->startup_limit_rate < 0 || c->startup_limit_rate > 100)
		return config_fail(err, cap,
				   "--max-startups: rate %d is out of range "
				   "(0 - 100)",
				   c->startup_limit_rate);
	if (c->startup_limit_full > 0 &&
	    c->startup_limit_start > c->startup_limit_full)
		return config_fail(err, cap,
				   "--max-startups: start %d is greater than "
				   "full %d",
				   c->startup_limit_start,
				   c->startup_limit_full);
	if (c->startup_limit_full > 0 && c->max_sessions > 0 &&
	    c->startup_limit_full > c->max_sessions)
		return config_fail(err, cap,
				   "--max-startups: full %d is greater than "
				   "-m %d",
				   c->startup_limit_full, c->max_sessions);
	if (!(c->drain_timeout >= 0 && c->drain_timeout <= CONF_TIMEOUT_MAX))
		return config_fail(err, cap,
				   "--drain: %g is out of range (0 - 86400)",
				   c->drain_timeout);
	if (c->mark < 0)
		return config_fail(err, cap, "--mark: must not be negative");
	if (c->jail_dir[0] != '/')
		return config_fail(err, cap,
				   "--jail: '%s' is not an absolute path",
				   c->jail_dir);
	if (c->tcp_sndbuf < 0 || c->tcp_rcvbuf < 0)
		return config_fail(err, cap,
				   "tcp_sndbuf/tcp_rcvbuf must not be negative");
	return 0;
}

/* Is the API reachable only from this host? */
static bool config_api_local(const char *addr)
{
	struct sockaddr_storage ss;

	if (addr[0] == '/')
		return true;
	if (addr_parse_listen(addr, &ss) < 0)
		return false;
	if (ss.ss_family == AF_INET)
		return (ntohl(((struct sockaddr_in *)&ss)->sin_addr.s_addr) >>
			24) == 127;
	if (ss.ss_family == AF_INET6) {
		const struct in6_addr *a = &((struct sockaddr_in6 *)&ss)->sin6_addr;

		return IN6_IS_ADDR_LOOPBACK(a) ||
		       (IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127);
	}
	return false;
}

static int config_check_api(const struct config *c, char *err, size_t cap)
{
	const char *p = c->api_allow;

	while (*p != '\0') {
		const char *comma = strchr(p, ',');
		size_t len = comma ? (size_t)(comma - p) : strlen(p);
		int family, bits;
		uint8_t a[16];

		if (addr_parse_cidr(p, len, &family, a, &bits) < 0)
			return config_fail(err, cap,
					   "--api-allow: '%.*s' is not an "
					   "address or CIDR",
					   (int)len, p);
		p += len + (comma ? 1 : 0);
	}
	if (!(c->api_timeout >= 0.1 && c->api_timeout <= CONF_TIMEOUT_MAX))
		return config_fail(err, cap,
				   "--api-timeout: %g is out of range "
				   "(0.1 - 86400)",
				   c->api_timeout);
	if (!(c->api_idle >= 0.1 && c->api_idle <= CONF_TIMEOUT_MAX))
		return config_fail(err, cap,
				   "--api-idle: %g is out of range (0.1 - "
				   "86400)",
				   c->api_idle);
	if (c->api_max_conns < 1 || c->api_max_conns > 65536)
		return config_fail(err, cap,
				   "--api-max-conns: %d is out of range (1 - "
				   "65536)",
				   c->api_max_conns);
	if (c->api_mode < 0 || c->api_mode > 0777)
		return config_fail(err, cap,
				   "--api-mode: %o is not a file mode",
				   (unsigned)c->api_mode);
	if (c->state_dir[0] && c->state_dir[0] != '/')
		return config_fail(err, cap,
				   "--state-dir: '%s' is not an absolute path",
				   c->state_dir);
	if (c->state_dir[0] && !c->ruleset[0] && !c->config_file[0])
		return config_fail(err, cap,
				   "--state-dir needs a ruleset (-r or -c): "
				   "saved updates are applied over it");
	if (!c->restapi[0])
		return 0;
	if (!config_api_local(c->restapi) && !c->api_token_file[0] &&
	    !c->api_allow[0])
		return config_fail(err, cap,
				   "--api %s is not a loopback address: refusing "
				   "to serve it without --api-token-file or "
				   "--api-allow",
				   c->restapi);
	if (c->api_ro_token_file[0] && !c->api_token_file[0])
		return config_fail(err, cap,
				   "--api-readonly-token-file needs "
				   "--api-token-file (else the admin endpoints "
				   "would be open)");
	return 0;
}

int config_check(const struct config *c, char *err, size_t errcap)
{
	if (!c->listen[0] && !c->http_listen[0])
		return config_fail(err, errcap,
				   "listen address is not specified "
				   "(use -l ADDR and/or --http ADDR)");
	if (c->http_only && !c->listen[0])
		return config_fail(err, errcap,
				   "--http without an address needs -l ADDR");
	if ((c->http_listen[0] || c->http_only) && c->forward[0])
		return config_fail(err, errcap,
				   "--http is incompatible with -f");
	if (c->block_local && c->block_global)
		return config_fail(err, errcap,
				   "--block-outbound: local and global together "
				   "would block everything");
	if (c->auth_required && c->forward[0])
		return config_fail(err, errcap,
				   "--auth-required is not supported with -f");
	if (c->auth_required && !c->ruleset[0] && !c->config_file[0])
		return config_fail(err, errcap,
				   "--auth-required needs a ruleset (-r or -c)");
	if (c->ruleset[0] && c->config_file[0])
		return config_fail(err, errcap,
				   "-r and -c are mutually exclusive "
				   "(set 'ruleset' in the config file)");
	if (config_check_addrs(c, err, errcap) < 0 ||
	    config_check_proxy(c, err, errcap) < 0 ||
	    config_check_limits(c, err, errcap) < 0 ||
	    config_check_api(c, err, errcap) < 0)
		return -1;
	return 0;
}

static bool config_str_ok(const char *s, size_t cap)
{
	return memchr(s, '\0', cap) != NULL;
}

int config_validate_wire(const struct config *c, size_t len)
{
	if (len != sizeof(*c) || c->size != sizeof(*c))
		return -1;
#define STR_OK(f) config_str_ok(c->f, sizeof(c->f))
	if (!STR_OK(listen) || !STR_OK(http_listen) || !STR_OK(forward) ||
	    !STR_OK(proxy) || !STR_OK(restapi) || !STR_OK(nameserver) ||
	    !STR_OK(netdev) || !STR_OK(user_name) || !STR_OK(ruleset) ||
	    !STR_OK(config_file) || !STR_OK(ruleset_user) ||
	    !STR_OK(jail_dir) || !STR_OK(lua_path) || !STR_OK(api_allow) ||
	    !STR_OK(api_token_file) || !STR_OK(api_ro_token_file) ||
	    !STR_OK(state_dir) || !STR_OK(api_owner))
		return -1;
#undef STR_OK
	if (!isfinite(c->timeout) || !isfinite(c->drain_timeout) ||
	    !isfinite(c->api_timeout) || !isfinite(c->api_idle))
		return -1;
	return 0;
}

static void config_dump_strp(FILE *f, const char *prefix, const char *key,
			     const char *v)
{
	fprintf(f, "    %s%s = ", prefix, key);
	if (!v[0]) {
		fputs("nil,\n", f);
		return;
	}
	fputc('"', f);
	for (const unsigned char *p = (const unsigned char *)v; *p; p++) {
		if (*p == '\\' || *p == '"')
			fprintf(f, "\\%c", *p);
		else if (*p < 0x20 || *p == 0x7f)
			fprintf(f, "\\%03u", *p);
		else
			fputc(*p, f);
	}
	fputs("\",\n", f);
}

static void config_dump_str(FILE *f, const char *key, const char *v)
{
	config_dump_strp(f, "", key, v);
}

/* A setting a config file may not set (it decides how the process that
 * evaluates the file runs): shown as a comment, so the output loads. */
static void config_dump_cli(FILE *f, const char *key, const char *v)
{
	config_dump_strp(f, "-- (command line only) ", key, v);
}

static void config_dump_bool(FILE *f, const char *key, bool v)
{
	fprintf(f, "    %s = %s,\n", key, v ? "true" : "false");
}

static void config_dump_int(FILE *f, const char *key, int v)
{
	fprintf(f, "    %s = %d,\n", key, v);
}

void config_dump(const struct config *c, FILE *f)
{
	fputs("return {\n", f);
	config_dump_str(f, "listen", c->listen);
	config_dump_str(f, "forward", c->forward);
	config_dump_str(f, "proxy", c->proxy);
	config_dump_str(f, "restapi", c->restapi);
	config_dump_str(f, "http_listen", c->http_listen);
	config_dump_str(f, "api_allow", c->api_allow);
	config_dump_str(f, "api_token_file", c->api_token_file);
	config_dump_str(f, "api_readonly_token_file", c->api_ro_token_file);
	fprintf(f, "    api_timeout = %.17g,\n", c->api_timeout);
	fprintf(f, "    api_idle = %.17g,\n", c->api_idle);
	config_dump_int(f, "api_max_conns", c->api_max_conns);
	fprintf(f, "    api_mode = tonumber(\"%04o\", 8),\n",
		(unsigned)c->api_mode);
	config_dump_cli(f, "api_owner", c->api_owner);
	config_dump_str(f, "state_dir", c->state_dir);
	config_dump_cli(f, "user_name", c->user_name);
	config_dump_str(f, "nameserver", c->nameserver);
	config_dump_str(f, "netdev", c->netdev);
	config_dump_cli(f, "ruleset", c->ruleset);
	config_dump_cli(f, "ruleset_user", c->ruleset_user);
	config_dump_cli(f, "jail", c->jail_dir);
	config_dump_int(f, "mark", c->mark);
	fprintf(f, "    drain_timeout = %.17g,\n", c->drain_timeout);
	config_dump_int(f, "loglevel", c->loglevel);
	config_dump_int(f, "resolve_pf", c->resolve_pf);
	fprintf(f, "    timeout = %.17g,\n", c->timeout);
	config_dump_int(f, "memlimit", c->memlimit);
	config_dump_bool(f, "auth_required", c->auth_required);
	config_dump_bool(f, "pipe", c->pipe);
	config_dump_bool(f, "reuseport", c->reuseport);
	config_dump_bool(f, "tcp_fastopen", c->tcp_fastopen);
	config_dump_bool(f, "tcp_fastopen_connect", c->tcp_fastopen_connect);
	config_dump_bool(f, "tcp_nodelay", c->tcp_nodelay);
	config_dump_bool(f, "tcp_keepalive", c->tcp_keepalive);
	config_dump_bool(f, "traceback", c->traceback);
	config_dump_bool(f, "block_loopback", c->block_loopback);
	config_dump_bool(f, "block_multicast", c->block_multicast);
	config_dump_bool(f, "block_local", c->block_local);
	config_dump_bool(f, "block_global", c->block_global);
	config_dump_int(f, "tcp_sndbuf", c->tcp_sndbuf);
	config_dump_int(f, "tcp_rcvbuf", c->tcp_rcvbuf);
	config_dump_int(f, "max_sessions", c->max_sessions);
	config_dump_int(f, "startup_limit_start", c->startup_limit_start);
	config_dump_int(f, "startup_limit_rate", c->startup_limit_rate);
	config_dump_int(f, "startup_limit_full", c->startup_limit_full);
	fputs("}\n", f);
}
