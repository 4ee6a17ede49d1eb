#include "privsep/cli.h"

#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <math.h>
#include <pwd.h>
#include <stddef.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

enum cli_arg {
	ARG_NONE,
	ARG_REQUIRED,
	ARG_OPTIONAL, /* taken when the next element does not start with '-' */
};

struct cli_opt;
typedef int (*cli_setter)(const struct cli_opt *o, const char *v,
			  struct config *c, struct cli *cl, char *err,
			  size_t cap);

struct cli_opt {
	const char *sname, *lname; /* "-l", "--listen"; either may be NULL */
	uint8_t arg;
	cli_setter set;
	size_t off, cap; /* string fields: offset and size in struct config */
	double lo;       /* set_seconds: the smallest value */
};

static int cli_fail(char *err, size_t cap, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int cli_fail(char *err, size_t cap, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, cap, fmt, ap);
	va_end(ap);
	return -1;
}

static const char *cli_name(const struct cli_opt *o)
{
	return o->lname != NULL ? o->lname : o->sname;
}

static int set_str(const struct cli_opt *o, const char *v, struct config *c,
		   struct cli *cl, char *err, size_t cap)
{
	char *dst = (char *)c + o->off;
	size_t n = strlen(v);

	(void)cl;
	if (n == 0)
		return cli_fail(err, cap, "%s: empty value", cli_name(o));
	if (n >= o->cap)
		return cli_fail(err, cap, "%s: value too long (max %zu bytes)",
				cli_name(o), o->cap - 1);
	memcpy(dst, v, n + 1);
	return 0;
}

/* Decimal integer in [lo, hi], whole string. */
static int cli_int(const char *v, long lo, long hi, int *out)
{
	char *end;
	long x;

	if (v[0] == '\0' || v[0] == '+' || (v[0] == '-' && lo >= 0))
		return -1;
	errno = 0;
	x = strtol(v, &end, 10);
	if (errno != 0 || *end != '\0' || x < lo || x > hi)
		return -1;
	*out = (int)x;
	return 0;
}

static int set_http(const struct cli_opt *o, const char *v, struct config *c,
		    struct cli *cl, char *err, size_t cap)
{
	if (v == NULL) {
		c->http_only = true;
		return 0;
	}
	return set_str(o, v, c, cl, err, cap);
}

static int set_flag(const struct cli_opt *o, const char *v, struct config *c,
		    struct cli *cl, char *err, size_t cap)
{
	(void)v;
	(void)err;
	(void)cap;
	if (strcmp(o->lname, "--help") == 0)
		cl->help = true;
	else if (strcmp(o->lname, "--version") == 0)
		cl->version = true;
	else if (strcmp(o->lname, "--dump-config") == 0)
		cl->dump_config = true;
	else if (strcmp(o->lname, "--reuseport") == 0)
		c->reuseport = true;
	else if (strcmp(o->lname, "--pipe") == 0)
		c->pipe = true;
	else if (strcmp(o->lname, "--no-pipe") == 0)
		c->pipe = false;
	else if (strcmp(o->lname, "--no-fastopen") == 0)
		c->tcp_fastopen = false;
	else if (strcmp(o->lname, "--fastopen-connect") == 0)
		c->tcp_fastopen_connect = true;
	else if (strcmp(o->lname, "--sandbox-debug") == 0)
		c->sandbox_debug = true;
	else if (strcmp(o->lname, "--traceback") == 0)
		c->traceback = true;
	else if (strcmp(o->lname, "--auth-required") == 0)
		c->auth_required = true;
	else if (strcmp(o->lname, "--enable-execute") == 0)
		c->enable_execute = true;
	else if (strcmp(o->lname, "--check") == 0)
		cl->check = true;
	else if (strcmp(o->lname, "--ipv4") == 0)
		c->resolve_pf = AF_INET;
	else if (strcmp(o->lname, "--ipv6") == 0)
		c->resolve_pf = AF_INET6;
	return 0;
}

/* Seconds in [o->lo, 86400] into a double field. */
static int set_seconds(const struct cli_opt *o, const char *v,
		       struct config *c, struct cli *cl, char *err, size_t cap)
{
	char *end;
	double t;

	(void)cl;
	errno = 0;
	t = strtod(v, &end);
	if (v[0] == '\0' || *end != '\0' || errno != 0 || !isfinite(t) ||
	    t < o->lo || t > CONF_TIMEOUT_MAX)
		return cli_fail(err, cap,
				"%s: '%s' is not a number of seconds in "
				"[%g, 86400]",
				cli_name(o), v, o->lo);
	*(double *)(void *)((char *)c + o->off) = t;
	return 0;
}

static int set_api_conns(const struct cli_opt *o, const char *v,
			 struct config *c, struct cli *cl, char *err,
			 size_t cap)
{
	(void)cl;
	if (cli_int(v, 1, 65536, &c->api_max_conns) < 0)
		return cli_fail(err, cap, "%s: '%s' is not an integer in "
				"[1, 65536]", cli_name(o), v);
	return 0;
}

static int set_api_mode(const struct cli_opt *o, const char *v,
			struct config *c, struct cli *cl, char *err, size_t cap)
{
	char *end;
	long m;

	(void)cl;
	errno = 0;
	m = strtol(v, &end, 8);
	if (v[0] == '\0' || v[0] == '-' || v[0] == '+' || *end != '\0' ||
	    errno != 0 || m < 0 || m > 0777)
		return cli_fail(err, cap, "%s: '%s' is not an octal file mode "
				"(e.g. 0660)", cli_name(o), v);
	c->api_mode = (int)m;
	return 0;
}

static int set_mark(const struct cli_opt *o, const char *v, struct config *c,
		    struct cli *cl, char *err, size_t cap)
{
	(void)cl;
	if (cli_int(v, 1, INT_MAX, &c->mark) < 0)
		return cli_fail(err, cap, "%s: '%s' is not a positive integer",
				cli_name(o), v);
	return 0;
}

static int set_memlimit(const struct cli_opt *o, const char *v,
			struct config *c, struct cli *cl, char *err, size_t cap)
{
	(void)cl;
	if (cli_int(v, 0, 65536, &c->memlimit) < 0)
		return cli_fail(err, cap,
				"%s: '%s' is not a number of MiB in [0, 65536]",
				cli_name(o), v);
	return 0;
}

static int set_maxsessions(const struct cli_opt *o, const char *v,
			   struct config *c, struct cli *cl, char *err,
			   size_t cap)
{
	(void)cl;
	if (cli_int(v, 0, INT_MAX, &c->max_sessions) < 0)
		return cli_fail(err, cap,
				"%s: '%s' is not a non-negative integer",
				cli_name(o), v);
	return 0;
}

static int set_loglevel(const struct cli_opt *o, const char *v,
			struct config *c, struct cli *cl, char *err, size_t cap)
{
	(void)cl;
	if (cli_int(v, 0, 8, &c->loglevel) < 0)
		return cli_fail(err, cap, "%s: '%s' is not a level in 0..8",
				cli_name(o), v);
	return 0;
}

static int set_startups(const struct cli_opt *o, const char *v,
			struct config *c, struct cli *cl, char *err, size_t cap)
{
	char buf[64];
	char *a, *b, *d;
	int start, rate, full;

	(void)cl;
	if (strlen(v) >= sizeof(buf))
		goto bad;
	strcpy(buf, v);
	a = buf;
	b = strchr(a, ':');
	if (b == NULL)
		goto bad;
	*b++ = '\0';
	d = strchr(b, ':');
	if (d == NULL)
		goto bad;
	*d++ = '\0';
	if (cli_int(a, 0, INT_MAX, &start) < 0 ||
	    cli_int(b, 0, 100, &rate) < 0 || cli_int(d, 0, INT_MAX, &full) < 0)
		goto bad;
	c->startup_limit_start = start;
	c->startup_limit_rate = rate;
	c->startup_limit_full = full;
	return 0;
bad:
	return cli_fail(err, cap,
			"%s: '%s' is not start:rate:full (integers, rate "
			"0-100)",
			cli_name(o), v);
}

static int set_block(const struct cli_opt *o, const char *v, struct config *c,
		     struct cli *cl, char *err, size_t cap)
{
	char buf[256];
	char *save = NULL;

	(void)cl;
	if (strlen(v) >= sizeof(buf))
		return cli_fail(err, cap, "%s: value too long", cli_name(o));
	strcpy(buf, v);
	c->block_loopback = c->block_multicast = false;
	c->block_local = c->block_global = false;
	for (char *t = strtok_r(buf, ",", &save); t != NULL;
	     t = strtok_r(NULL, ",", &save)) {
		if (strcmp(t, "loopback") == 0)
			c->block_loopback = true;
		else if (strcmp(t, "multicast") == 0)
			c->block_multicast = true;
		else if (strcmp(t, "local") == 0)
			c->block_local = true;
		else if (strcmp(t, "global") == 0)
			c->block_global = true;
		else
			return cli_fail(err, cap,
					"%s: unknown class '%s' (use loopback, "
					"multicast, local, global)",
					cli_name(o), t);
	}
	return 0;
}

static int set_log(const struct cli_opt *o, const char *v, struct config *c,
		   struct cli *cl, char *err, size_t cap)
{
	(void)c;
	if (strcmp(v, "stderr") == 0 || strcmp(v, "terminal") == 0)
		cl->log_sink = CLI_LOG_STDERR;
	else if (strcmp(v, "stdout") == 0)
		cl->log_sink = CLI_LOG_STDOUT;
	else if (strcmp(v, "syslog") == 0)
		cl->log_sink = CLI_LOG_SYSLOG;
	else if (strcmp(v, "discard") == 0)
		cl->log_sink = CLI_LOG_DISCARD;
	else
		return cli_fail(err, cap,
				"%s: '%s' is not one of stdout, stderr, "
				"terminal, syslog, discard",
				cli_name(o), v);
	return 0;
}

static int set_user(const struct cli_opt *o, const char *v, struct config *c,
		    struct cli *cl, char *err, size_t cap)
{
	unsigned uid, gid;
	char why[256];

	if (cli_parse_user(v, &uid, &gid, why, sizeof(why)) < 0)
		return cli_fail(err, cap, "%s: %s", cli_name(o), why);
	return set_str(o, v, c, cl, err, cap);
}

#define STR(f) offsetof(struct config, f), sizeof(((struct config *)0)->f), 0
#define NUM(f) offsetof(struct config, f), 0

static const struct cli_opt cli_opts[] = {
	{ "-h", "--help", ARG_NONE, set_flag, 0, 0, 0 },
	{ NULL, "--version", ARG_NONE, set_flag, 0, 0, 0 },
	{ NULL, "--dump-config", ARG_NONE, set_flag, 0, 0, 0 },
	{ "-l", "--listen", ARG_REQUIRED, set_str, STR(listen) },
	{ NULL, "--http", ARG_OPTIONAL, set_http, STR(http_listen) },
	{ "-f", "--forward", ARG_REQUIRED, set_str, STR(forward) },
	{ "-x", "--proxy", ARG_REQUIRED, set_str, STR(proxy) },
	{ NULL, "--nameserver", ARG_REQUIRED, set_str, STR(nameserver) },
	{ "-4", "--ipv4", ARG_NONE, set_flag, 0, 0, 0 },
	{ "-6", "--ipv6", ARG_NONE, set_flag, 0, 0, 0 },
	{ "-t", "--timeout", ARG_REQUIRED, set_seconds, NUM(timeout),
	  CONF_TIMEOUT_MIN },
	{ "-m", "--max-sessions", ARG_REQUIRED, set_maxsessions, 0, 0, 0 },
	{ NULL, "--max-startups", ARG_REQUIRED, set_startups, 0, 0, 0 },
	{ NULL, "--block-outbound", ARG_REQUIRED, set_block, 0, 0, 0 },
	{ NULL, "--reuseport", ARG_NONE, set_flag, 0, 0, 0 },
	{ NULL, "--pipe", ARG_NONE, set_flag, 0, 0, 0 },
	{ NULL, "--no-pipe", ARG_NONE, set_flag, 0, 0, 0 },
	{ NULL, "--no-fastopen", ARG_NONE, set_flag, 0, 0, 0 },
	{ NULL, "--fastopen-connect", ARG_NONE, set_flag, 0, 0, 0 },
	{ NULL, "--loglevel", ARG_REQUIRED, set_loglevel, 0, 0, 0 },
	{ NULL, "--log", ARG_REQUIRED, set_log, 0, 0, 0 },
	{ "-u", "--user", ARG_REQUIRED, set_user, STR(user_name) },
	{ NULL, "--ruleset-user", ARG_REQUIRED, set_user, STR(ruleset_user) },
	{ NULL, "--jail", ARG_REQUIRED, set_str, STR(jail_dir) },
	{ NULL, "--sandbox-debug", ARG_NONE, set_flag, 0, 0, 0 },
	{ NULL, "--drain", ARG_REQUIRED, set_seconds, NUM(drain_timeout), 0 },
	{ "-r", "--ruleset", ARG_REQUIRED, set_str, STR(ruleset) },
	{ "-c", "--config", ARG_REQUIRED, set_str, STR(config_file) },
	{ "-C", "--check", ARG_NONE, set_flag, 0, 0, 0 },
	{ NULL, "--lua-path", ARG_REQUIRED, set_str, STR(lua_path) },
	{ NULL, "--memlimit", ARG_REQUIRED, set_memlimit, 0, 0, 0 },
	{ NULL, "--traceback", ARG_NONE, set_flag, 0, 0, 0 },
	{ NULL, "--auth-required", ARG_NONE, set_flag, 0, 0, 0 },
	{ NULL, "--enable-execute", ARG_NONE, set_flag, 0, 0, 0 },
	{ "-i", "--netdev", ARG_REQUIRED, set_str, STR(netdev) },
	{ NULL, "--mark", ARG_REQUIRED, set_mark, 0, 0, 0 },
	{ NULL, "--api", ARG_REQUIRED, set_str, STR(restapi) },
	{ NULL, "--api-allow", ARG_REQUIRED, set_str, STR(api_allow) },
	{ NULL, "--api-token-file", ARG_REQUIRED, set_str,
	  STR(api_token_file) },
	{ NULL, "--api-readonly-token-file", ARG_REQUIRED, set_str,
	  STR(api_ro_token_file) },
	{ NULL, "--api-timeout", ARG_REQUIRED, set_seconds, NUM(api_timeout),
	  0.1 },
	{ NULL, "--api-idle", ARG_REQUIRED, set_seconds, NUM(api_idle), 0.1 },
	{ NULL, "--api-max-conns", ARG_REQUIRED, set_api_conns, 0, 0, 0 },
	{ NULL, "--api-mode", ARG_REQUIRED, set_api_mode, 0, 0, 0 },
	{ NULL, "--api-owner", ARG_REQUIRED, set_user, STR(api_owner) },
	{ NULL, "--state-dir", ARG_REQUIRED, set_str, STR(state_dir) },
};

static const struct cli_opt *cli_find(const char *name, size_t len)
{
	for (size_t i = 0; i < sizeof(cli_opts) / sizeof(cli_opts[0]); i++) {
		const struct cli_opt *o = &cli_opts[i];
		if ((o->sname && strlen(o->sname) == len &&
		     memcmp(o->sname, name, len) == 0) ||
		    (o->lname && strlen(o->lname) == len &&
		     memcmp(o->lname, name, len) == 0))
			return o;
	}
	return NULL;
}

int cli_parse(int argc, char **argv, struct config *c, struct cli *cl,
	      char *err, size_t errcap)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *eq = NULL, *val = NULL;
		const struct cli_opt *o;
		size_t nlen = strlen(a);

		if (strcmp(a, "--") == 0)
			return cli_fail(err, errcap,
					"unexpected argument after '--'");
		if (strncmp(a, "--", 2) == 0 && (eq = strchr(a, '=')) != NULL)
			nlen = (size_t)(eq - a);
		o = a[0] == '-' ? cli_find(a, nlen) : NULL;
		if (o == NULL)
			return cli_fail(err, errcap,
					"unknown option '%.*s'", (int)nlen, a);
		if (eq != NULL) {
			if (o->arg == ARG_NONE)
				return cli_fail(err, errcap,
						"%s takes no value",
						cli_name(o));
			val = eq + 1;
		} else if (o->arg == ARG_REQUIRED) {
			if (i + 1 >= argc)
				return cli_fail(err, errcap,
						"%s requires a value",
						cli_name(o));
			val = argv[++i];
		} else if (o->arg == ARG_OPTIONAL && i + 1 < argc &&
			   argv[i + 1][0] != '-') {
			val = argv[++i];
		}
		if (o->set(o, val, c, cl, err, errcap) < 0)
			return -1;
	}
	return 0;
}

int cli_parse_user(const char *spec, unsigned *uid, unsigned *gid, char *err,
		   size_t errcap)
{
	char user[CONF_NAME_MAX], group[CONF_NAME_MAX];
	const char *colon = strchr(spec, ':');
	size_t ulen = colon ? (size_t)(colon - spec) : strlen(spec);
	struct passwd *pw = NULL;
	struct group *gr;

	*uid = (unsigned)-1;
	*gid = (unsigned)-1;
	if (ulen >= sizeof(user) || (colon && strlen(colon + 1) >= sizeof(group)))
		return cli_fail(err, errcap, "'%s' is too long", spec);
	memcpy(user, spec, ulen);
	user[ulen] = '\0';
	snprintf(group, sizeof(group), "%s", colon ? colon + 1 : "");
	if (user[0] == '\0' && group[0] == '\0')
		return cli_fail(err, errcap,
				"'%s' names neither a user nor a group "
				"(want user[:[group]])",
				spec);
	if (user[0] != '\0') {
		pw = getpwnam(user);
		if (pw == NULL)
			return cli_fail(err, errcap, "no such user '%s'", user);
		*uid = pw->pw_uid;
		if (colon != NULL && group[0] == '\0')
			*gid = pw->pw_gid;
	}
	if (group[0] != '\0') {
		gr = getgrnam(group);
		if (gr == NULL)
			return cli_fail(err, errcap, "no such group '%s'",
					group);
		*gid = gr->gr_gid;
	}
	return 0;
}

void cli_usage(FILE *f, const char *argv0)
{
	fprintf(f,
		"neosocksd %s\n"
		"usage: %s -l ADDR [option ...]\n"
		"\n"
		"  -h, --help               show this help and exit\n"
		"      --version            print the version and exit\n"
		"  -l, --listen ADDR        SOCKS4/4A/5 listener (host:port, "
		"[v6]:port, :port)\n"
		"      --http [ADDR]        HTTP proxy listener; without ADDR "
		"the -l listener\n"
		"                           speaks HTTP instead of SOCKS\n"
		"  -f, --forward ADDR       forward every -l connection to "
		"ADDR (plain TCP)\n"
		"  -x, --proxy URI[,URI...] outbound proxy chain, first hop "
		"first:\n"
		"                           socks4a://host:port, "
		"socks5://[user[:pass]@]host:port,\n"
		"                           http://[user[:pass]@]host:port\n"
		"      --nameserver ADDR    DNS server (default: "
		"/etc/resolv.conf)\n"
		"  -4, -6                   resolve names to IPv4 / IPv6 "
		"only\n"
		"  -t, --timeout SEC        handshake deadline: handshake, "
		"resolution and dial\n"
		"                           (default 60, range 5-86400)\n"
		"  -m, --max-sessions N     at most N sessions (0: "
		"unlimited)\n"
		"      --max-startups S:R:F drop new connections with "
		"probability R%% once S\n"
		"                           handshakes are pending, all once "
		"F are\n"
		"      --block-outbound L   refuse first hops in classes of "
		"L (comma list of\n"
		"                           loopback, multicast, local, "
		"global; default multicast)\n"
		"      --reuseport          SO_REUSEPORT on listeners\n"
		"      --no-pipe            relay through buffers instead of "
		"splice(2)\n"
		"      --no-fastopen        no TCP Fast Open on listeners\n"
		"      --fastopen-connect   TCP Fast Open on outbound "
		"connections\n"
		"  -r, --ruleset FILE       Lua ruleset deciding every request\n"
		"  -c, --config FILE        Lua config file (returns a table "
		"of settings)\n"
		"  -C, --check              check the configuration and the "
		"ruleset, exit\n"
		"      --lua-path DIRS      more directories where require() "
		"finds NAME.lua\n"
		"                           (':'-separated; the ruleset's own "
		"directory comes first)\n"
		"      --memlimit MiB       Lua memory cap (default 128)\n"
		"      --traceback          Lua errors carry a traceback\n"
		"      --auth-required      SOCKS5/HTTP clients must send "
		"credentials\n"
		"      --enable-execute     allow await.execute (runs /bin/sh "
		"as the ruleset user)\n"
		"      --api ADDR           REST API listener (host:port or "
		"a unix socket path)\n"
		"      --api-token-file F   admin bearer token (API requests "
		"must carry it)\n"
		"      --api-readonly-token-file F  token for GET /healthy, "
		"/stats, /metrics\n"
		"      --api-allow CIDR,... API clients allowed (others are "
		"refused at accept)\n"
		"      --api-timeout SEC    a request must arrive whole (10)\n"
		"      --api-idle SEC       keep-alive connections close "
		"when idle (60)\n"
		"      --api-max-conns N    concurrent API connections (64)\n"
		"      --api-mode MODE      unix socket file mode (0600)\n"
		"      --api-owner U[:G]    unix socket owner\n"
		"      --state-dir DIR      save /ruleset/update and reapply "
		"after restarts\n"
		"  -i, --netdev IFNAME      bind outbound connections to this "
		"interface\n"
		"      --mark N             SO_MARK on outbound connections\n"
		"  -u, --user USER[:GROUP]  run the front as this user (as "
		"root: default\n"
		"                           'neosocksd' if it exists, else "
		"'nobody')\n"
		"      --ruleset-user U[:G] run the ruleset process as this "
		"user (default: -u)\n"
		"      --jail DIR           empty root-owned directory the "
		"ruleset process is\n"
		"                           chrooted into (default "
		"/run/neosocksd/empty)\n"
		"      --sandbox-debug      log forbidden system calls "
		"instead of killing\n"
		"      --drain SEC          on SIGTERM, let tunnels finish for "
		"up to SEC (10)\n"
		"      --loglevel N         0 silent .. 4 notice (default) .. "
		"5 info (access\n"
		"                           log) .. 8 very verbose\n"
		"      --log SINK           stderr (default), stdout, "
		"terminal, syslog, discard\n"
		"      --dump-config        print the effective settings as "
		"a Lua table, exit\n"
		"\n"
		"Options take their value as the next argument or as "
		"--option=value.\n"
		"Example: %s -l 127.0.0.1:1080 --http 127.0.0.1:8080\n",
		NEOSOCKSD_VERSION, argv0, argv0);
}
