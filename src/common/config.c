#include "common/config.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdarg.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "common/addr.h"
#include "common/proxyuri.h"

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

/* ---- each value's own checks (the rows' check column) ---- */

/* A listen address that does not parse: the same hint for every option;
 * a bare port gets the two forms it probably meant. */
static int config_fail_listen(const char *opt, const char *v, bool unix_ok,
			      char *err, size_t cap)
{
	size_t n = strspn(v, "0123456789");

	if (n > 0 && n <= 5 && v[n] == '\0')
		return config_fail(err, cap,
				   "%s: invalid listen address '%s' (want "
				   "host:port, [v6]:port or :port%s: "
				   "'127.0.0.1:%s' for loopback, ':%s' for "
				   "every address)",
				   opt, v, unix_ok ? " or a unix socket path" : "",
				   v, v);
	return config_fail(err, cap,
			   "%s: invalid listen address '%s' (want host:port, "
			   "[v6]:port%s)",
			   opt, v,
			   unix_ok ? " or an absolute unix socket path"
				   : " or :port");
}

static int config_check_listen(const struct config *c, char *err, size_t cap)
{
	struct sockaddr_storage ss;

	if (c->listen[0] && addr_parse_listen(c->listen, &ss) < 0)
		return config_fail_listen("-l", c->listen, false, err, cap);
	return 0;
}

static int config_check_http_listen(const struct config *c, char *err,
				    size_t cap)
{
	struct sockaddr_storage ss;

	if (c->http_listen[0] && addr_parse_listen(c->http_listen, &ss) < 0)
		return config_fail_listen("--http", c->http_listen, false, err,
					  cap);
	return 0;
}

static int config_check_restapi(const struct config *c, char *err,
				size_t cap)
{
	struct sockaddr_storage ss;

	if (c->restapi[0] && c->restapi[0] != '/' &&
	    addr_parse_listen(c->restapi, &ss) < 0)
		return config_fail_listen("--api", c->restapi, true, err, cap);
	return 0;
}

/* -f ":" (the ruleset decides): host and port both empty */
static bool config_forward_any(const struct config *c)
{
	char host[CONF_ADDR_MAX], port[8];

	return c->forward[0] &&
	       addr_splithostport(c->forward, strlen(c->forward), host,
				  sizeof(host), port, sizeof(port)) == 0 &&
	       host[0] == '\0' && port[0] == '\0';
}

static int config_fail_forward(const struct config *c, char *err, size_t cap)
{
	return config_fail(err, cap,
			   "-f: invalid forward address '%s' (want host:port)",
			   c->forward);
}

static int config_check_forward(const struct config *c, char *err,
				size_t cap)
{
	struct netaddr na;
	char host[CONF_ADDR_MAX], port[8];

	if (!c->forward[0] || config_forward_any(c))
		return 0;
	if (addr_splithostport(c->forward, strlen(c->forward), host,
			       sizeof(host), port, sizeof(port)) < 0 ||
	    addr_parse(&na, c->forward, strlen(c->forward), -1) < 0)
		return config_fail_forward(c, err, cap);
	return 0;
}

static int config_check_nameserver(const struct config *c, char *err,
				   size_t cap)
{
	struct netaddr na;

	if (!c->nameserver[0])
		return 0;
	if (addr_parse(&na, c->nameserver, strlen(c->nameserver), 53) < 0)
		return config_fail(err, cap,
				   "--nameserver: invalid address '%s'",
				   c->nameserver);
	if (na.type == ADDR_DOMAIN)
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
	int rc = 0;

	if (!c->proxy[0])
		return 0;
	if (proxyuri_parse_chain(hops, PROXYCHAIN_MAX, &n, c->proxy,
				 strlen(c->proxy), &why) < 0)
		rc = config_fail(err, cap, "-x: %s in '%s'", why, c->proxy);
	explicit_bzero(hops, sizeof(hops));
	return rc;
}

static int config_check_resolve_pf(const struct config *c, char *err,
				   size_t cap)
{
	if (c->resolve_pf != 0 && c->resolve_pf != AF_INET &&
	    c->resolve_pf != AF_INET6)
		return config_fail(err, cap, "resolve_pf: bad value %d",
				   c->resolve_pf);
	return 0;
}

static int config_check_api_allow(const struct config *c, char *err,
				  size_t cap)
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
	return 0;
}

/* --api-host: host names or IP literals ("[v6]" or bare), no ports */
static int config_check_api_host(const struct config *c, char *err,
				 size_t cap)
{
	const char *p = c->api_host;
	int n = 0;

	while (*p != '\0') {
		const char *comma = strchr(p, ',');
		size_t len = comma ? (size_t)(comma - p) : strlen(p);
		bool br = len > 2 && p[0] == '[' && p[len - 1] == ']';
		struct netaddr a;

		if (len == 0 || len > ADDR_NAME_MAX ||
		    !addr_name_valid(p + br, len - 2 * br) ||
		    addr_set_host(&a, p, len, 0) < 0 ||
		    (br && a.type != ADDR_IPV6))
			return config_fail(err, cap,
					   "--api-host: '%.*s' is not a host "
					   "name or an IP address (no port)",
					   (int)len, p);
		if (++n > 32)
			return config_fail(err, cap,
					   "--api-host: more than 32 names");
		p += len + (comma ? 1 : 0);
	}
	return 0;
}

static int config_check_state_dir(const struct config *c, char *err,
				  size_t cap)
{
	if (c->state_dir[0] && c->state_dir[0] != '/')
		return config_fail(err, cap,
				   "--state-dir: '%s' is not an absolute path",
				   c->state_dir);
	return 0;
}

static int config_check_jail(const struct config *c, char *err, size_t cap)
{
	if (c->jail_dir[0] != '/')
		return config_fail(err, cap,
				   "--jail: '%s' is not an absolute path",
				   c->jail_dir);
	return 0;
}

/* ---- the table ---- */

#define CONFIG_DEF_STR(d) 0
#define CONFIG_DEF_INT(d) (d)
#define CONFIG_DEF_OCT(d) (d)
#define CONFIG_DEF_NUM(d) (d)
#define CONFIG_DEF_BOOL(d) (d)
#define CONFIG_DEFSTR_STR(d) (d)
#define CONFIG_DEFSTR_INT(d) NULL
#define CONFIG_DEFSTR_OCT(d) NULL
#define CONFIG_DEFSTR_NUM(d) NULL
#define CONFIG_DEFSTR_BOOL(d) NULL

const struct config_setting config_settings[] = {
#define SETTING(field, type, cap, sopt, lopt, meta, set, def, lo, hi, key,   \
		flags, check, help)                                          \
	{ key, sopt, lopt, CONF_T_##type, flags,                             \
	  offsetof(struct config, field),                                    \
	  sizeof(((struct config *)0)->field), lo, hi, CONFIG_DEF_##type(def), \
	  CONFIG_DEFSTR_##type(def), check },
#define UNSUPPORTED(key)                                                     \
	{ key, NULL, NULL, CONF_T_UNSUPPORTED, CONF_LUA, 0, 0, 0, 0, 0, NULL, \
	  0 },
#include "common/settings.def"
};

const size_t config_nsettings =
	sizeof(config_settings) / sizeof(config_settings[0]);

const struct config_setting *config_find(const char *key)
{
	for (size_t i = 0; i < config_nsettings; i++)
		if (config_settings[i].key != NULL &&
		    strcmp(config_settings[i].key, key) == 0)
			return &config_settings[i];
	return NULL;
}

const char *config_str(const struct config *c, const struct config_setting *s)
{
	return (const char *)c + s->off;
}

int config_int(const struct config *c, const struct config_setting *s)
{
	int v;

	memcpy(&v, (const char *)c + s->off, sizeof(v));
	return v;
}

double config_num(const struct config *c, const struct config_setting *s)
{
	double v;

	memcpy(&v, (const char *)c + s->off, sizeof(v));
	return v;
}

/* read as a byte: a received bool may hold any value until validated */
bool config_bool(const struct config *c, const struct config_setting *s)
{
	uint8_t v;

	memcpy(&v, (const char *)c + s->off, sizeof(v));
	return v != 0;
}

void config_defaults(struct config *c)
{
	memset(c, 0, sizeof(*c));
	c->size = sizeof(*c);
	for (size_t i = 0; i < config_nsettings; i++) {
		const struct config_setting *s = &config_settings[i];
		char *p = (char *)c + s->off;
		int iv = (int)s->def;
		bool bv = s->def != 0;

		switch (s->type) {
		case CONF_T_STR:
			snprintf(p, s->cap, "%s", s->defstr);
			break;
		case CONF_T_INT:
		case CONF_T_OCT:
			memcpy(p, &iv, sizeof(iv));
			break;
		case CONF_T_NUM:
			memcpy(p, &s->def, sizeof(s->def));
			break;
		case CONF_T_BOOL:
			memcpy(p, &bv, sizeof(bv));
			break;
		default:
			break;
		}
	}
}

/* ---- checks ---- */

static void config_fmt_num(const struct config_setting *s, double v,
			   char *buf, size_t cap)
{
	if (s->type == CONF_T_OCT && v < 0)
		snprintf(buf, cap, "-%#o", -(unsigned)(int)v);
	else if (s->type == CONF_T_OCT)
		snprintf(buf, cap, "%#o", (unsigned)v);
	else if (s->type == CONF_T_INT)
		snprintf(buf, cap, "%d", (int)v);
	else
		snprintf(buf, cap, "%g", v);
}

static int config_fail_range(const struct config_setting *s, double v,
			     char *err, size_t cap)
{
	const char *opt = s->sopt != NULL ? s->sopt : s->lopt;
	char val[32], lo[32], hi[32];

	config_fmt_num(s, v, val, sizeof(val));
	config_fmt_num(s, s->lo, lo, sizeof(lo));
	config_fmt_num(s, s->hi, hi, sizeof(hi));
	return config_fail(err, cap, "%s%s%s %s is out of range (%s - %s)",
			   opt != NULL ? opt : "", opt != NULL ? ": " : "",
			   s->key, val, lo, hi);
}

int config_check_ranges(const struct config *c, char *err, size_t errcap)
{
	for (size_t i = 0; i < config_nsettings; i++) {
		const struct config_setting *s = &config_settings[i];
		double v;

		if (s->type == CONF_T_INT || s->type == CONF_T_OCT)
			v = config_int(c, s);
		else if (s->type == CONF_T_NUM)
			v = config_num(c, s);
		else
			continue;
		/* NaN fails both */
		if (!(v == s->def || (v >= s->lo && v <= s->hi)))
			return config_fail_range(s, v, err, errcap);
	}
	return 0;
}

bool config_api_local(const char *addr)
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

/* UDP is carried only by socks5:// hops (their own UDP ASSOCIATE). */
static int config_check_udp_chain(const struct config *c, char *err,
				  size_t cap)
{
	static struct proxy_hop hops[PROXYCHAIN_MAX];
	size_t n = 0;
	const char *why = "";
	int rc = 0;

	if (!c->proxy[0] || proxyuri_parse_chain(hops, PROXYCHAIN_MAX, &n,
						 c->proxy, strlen(c->proxy),
						 &why) < 0)
		return 0; /* config_check_proxy() reports a bad chain */
	for (size_t i = 0; i < n && rc == 0; i++)
		if (hops[i].scheme != PROXY_SOCKS5)
			rc = config_fail(err, cap,
					 "--enable-socks5-udp: -x hop %zu is "
					 "not socks5:// (only SOCKS5 proxies "
					 "carry UDP)",
					 i + 1);
	explicit_bzero(hops, sizeof(hops));
	return rc;
}

#define CONFIG_RULE(cond, ...)                                               \
	do {                                                                 \
		if (cond)                                                    \
			return config_fail(err, cap, __VA_ARGS__);           \
	} while (0)

/* The TLS files go in sets: a certificate with its key, a client CA or a
 * read-only pattern with the certificate they refine. */
static int config_check_tls(const struct config *c, char *err, size_t cap)
{
	bool cert = c->api_tls_cert[0], key = c->api_tls_key[0];

	CONFIG_RULE(cert != key, "--api-tls-cert and --api-tls-key go "
				 "together (the certificate and its key)");
	CONFIG_RULE(c->api_tls_client_ca[0] && !cert,
		    "--api-tls-client-ca needs --api-tls-cert and "
		    "--api-tls-key (client certificates are asked for in the "
		    "TLS handshake)");
	CONFIG_RULE(c->api_tls_ro_subject[0] && !c->api_tls_client_ca[0],
		    "--api-tls-readonly-subject needs --api-tls-client-ca "
		    "(it reads verified client certificates)");
	CONFIG_RULE(cert && !c->restapi[0], "--api-tls-cert needs --api");
	CONFIG_RULE(!c->rpc_tls_cert[0] != !c->rpc_tls_key[0],
		    "--rpc-tls-cert and --rpc-tls-key go together (the "
		    "certificate and its key)");
	CONFIG_RULE(c->rpc_tls_cert[0] && !c->rpc_tls_ca[0],
		    "--rpc-tls-cert needs --rpc-tls-ca (https:// peers are "
		    "verified against it)");
	return 0;
}

/* The rules between settings, each value being valid on its own. */
static int config_check_rules(const struct config *c, char *err, size_t cap)
{
	bool rules = c->ruleset[0] || c->config_file[0];

	CONFIG_RULE(!c->listen[0] && !c->http_listen[0],
		    "listen address is not specified "
		    "(use -l ADDR and/or --http ADDR)");
	CONFIG_RULE(c->http_only && !c->listen[0],
		    "--http without an address needs -l ADDR");
	CONFIG_RULE((c->http_listen[0] || c->http_only) && c->forward[0],
		    "--http is incompatible with -f");
	if (config_forward_any(c) && !rules)
		return config_fail_forward(c, err, cap);
	CONFIG_RULE(c->block_local && c->block_global,
		    "--block-outbound: local and global together would "
		    "block everything");
	CONFIG_RULE(c->auth_required && c->forward[0],
		    "--auth-required is not supported with -f");
	CONFIG_RULE(c->transparent && !c->listen[0],
		    "--tproxy needs -l ADDR (the transparent listener)");
	CONFIG_RULE(c->transparent && (c->http_listen[0] || c->http_only),
		    "--http is incompatible with --tproxy");
	CONFIG_RULE(c->transparent && c->forward[0],
		    "-f is incompatible with --tproxy");
	CONFIG_RULE(c->transparent && c->auth_required,
		    "--auth-required is not supported with --tproxy (a "
		    "transparent client sends no credentials)");
	CONFIG_RULE(c->socks5_bind && c->proxy[0],
		    "--enable-socks5-bind is incompatible with -x: BIND "
		    "listens on this host and cannot go through a chain");
	if (c->socks5_udp && config_check_udp_chain(c, err, cap) < 0)
		return -1;
	CONFIG_RULE(c->auth_required && !rules,
		    "--auth-required needs a ruleset (-r or -c)");
	CONFIG_RULE(c->ruleset[0] && c->config_file[0],
		    "-r and -c are mutually exclusive "
		    "(set 'ruleset' in the config file)");
	CONFIG_RULE(c->startup_limit_full > 0 &&
			    c->startup_limit_start > c->startup_limit_full,
		    "--max-startups: start %d is greater than full %d",
		    c->startup_limit_start, c->startup_limit_full);
	CONFIG_RULE(c->startup_limit_full > 0 && c->max_sessions > 0 &&
			    c->startup_limit_full > c->max_sessions,
		    "--max-startups: full %d is greater than -m %d",
		    c->startup_limit_full, c->max_sessions);
	CONFIG_RULE(c->state_dir[0] && !rules,
		    "--state-dir needs a ruleset (-r or -c): saved updates "
		    "are applied over it");
	if (config_check_tls(c, err, cap) < 0)
		return -1;
	CONFIG_RULE(c->restapi[0] && !config_api_local(c->restapi) &&
			    !c->api_token_file[0] && !c->api_allow[0] &&
			    !c->api_tls_client_ca[0],
		    "--api %s is not a loopback address: refusing to serve it "
		    "without --api-token-file, --api-allow or TLS with client "
		    "certificates (--api-tls-cert, --api-tls-key, "
		    "--api-tls-client-ca)",
		    c->restapi);
	CONFIG_RULE(c->api_reserved != CONF_API_RESERVED_AUTO &&
			    c->api_reserved >= c->api_max_conns,
		    "--api-reserved: %d must be less than --api-max-conns (%d)",
		    c->api_reserved, c->api_max_conns);
	CONFIG_RULE(c->restapi[0] && c->api_ro_token_file[0] &&
			    !c->api_token_file[0],
		    "--api-readonly-token-file needs --api-token-file (else "
		    "the admin endpoints would be open)");
	return 0;
}

int config_check(const struct config *c, char *err, size_t errcap)
{
	if (config_check_ranges(c, err, errcap) < 0)
		return -1;
	for (size_t i = 0; i < config_nsettings; i++)
		if (config_settings[i].check != NULL &&
		    config_settings[i].check(c, err, errcap) < 0)
			return -1;
	return config_check_rules(c, err, errcap);
}

int config_validate_wire(const struct config *c, size_t len)
{
	char err[256];

	if (len != sizeof(*c) || c->size != sizeof(*c))
		return -1;
	for (size_t i = 0; i < config_nsettings; i++) {
		const struct config_setting *s = &config_settings[i];
		const char *p = (const char *)c + s->off;

		if (s->type == CONF_T_STR && memchr(p, '\0', s->cap) == NULL)
			return -1;
		if (s->type == CONF_T_BOOL && (uint8_t)p[0] > 1)
			return -1;
		if (s->type == CONF_T_NUM && !isfinite(config_num(c, s)))
			return -1;
	}
	return config_check_ranges(c, err, sizeof(err));
}

void config_keep_cli(struct config *dst, const struct config *cli)
{
	for (size_t i = 0; i < config_nsettings; i++) {
		const struct config_setting *s = &config_settings[i];

		if ((s->flags & CONF_CLI) && s->type != CONF_T_UNSUPPORTED)
			memcpy((char *)dst + s->off,
			       (const char *)cli + s->off, s->cap);
	}
}

/* ---- --dump-config ---- */

static void config_dump_str(FILE *f, const char *v)
{
	if (!v[0]) {
		fputs("nil", f);
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
	fputc('"', f);
}

/* A setting a config file may not set (it decides how the process that
 * evaluates the file runs) is printed as a comment, so the output loads. */
void config_dump(const struct config *c, FILE *f)
{
	fputs("return {\n", f);
	for (size_t i = 0; i < config_nsettings; i++) {
		const struct config_setting *s = &config_settings[i];

		if (s->key == NULL || s->type == CONF_T_UNSUPPORTED)
			continue;
		fprintf(f, "    %s%s = ",
			(s->flags & CONF_CLI) ? "-- (command line only) " : "",
			s->key);
		if (s->type == CONF_T_STR)
			config_dump_str(f, config_str(c, s));
		else if (s->type == CONF_T_INT)
			fprintf(f, "%d", config_int(c, s));
		else if (s->type == CONF_T_OCT)
			fprintf(f, "tonumber(\"%04o\", 8)",
				(unsigned)config_int(c, s));
		else if (s->type == CONF_T_NUM)
			fprintf(f, "%.17g", config_num(c, s));
		else
			fputs(config_bool(c, s) ? "true" : "false", f);
		fputs(",\n", f);
	}
	fputs("}\n", f);
}
