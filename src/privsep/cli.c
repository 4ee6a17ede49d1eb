#include "privsep/cli.h"

#include <ctype.h>
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

/* What an option's offset is into. */
enum cli_base {
	CLI_BASE_NONE,
	CLI_BASE_CONF, /* struct config */
	CLI_BASE_CLI,  /* struct cli */
};

struct cli_opt;
typedef int (*cli_setter)(const struct cli_opt *o, const char *v,
			  struct config *c, struct cli *cl, char *err,
			  size_t cap);

/* One row of settings.def, as the command line sees it. */
struct cli_opt {
	const char *sname, *lname; /* "-l", "--listen"; either may be NULL */
	const char *meta;  /* NULL: no value; "[ADDR]": optional; else required */
	const char *label; /* a --help line of its own (HELPLINE) */
	const char *help;  /* NULL: not in --help */
	cli_setter set;    /* NULL: no option */
	uint8_t base;      /* enum cli_base */
	size_t off, cap;   /* the field and its size */
	double lo, hi;     /* a number's range */
	int value;         /* cli_set_const */
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

static char *cli_target(const struct cli_opt *o, struct config *c,
			struct cli *cl)
{
	return (o->base == CLI_BASE_CLI ? (char *)cl : (char *)c) + o->off;
}

static int cli_set_str(const struct cli_opt *o, const char *v,
		       struct config *c, struct cli *cl, char *err, size_t cap)
{
	size_t n = strlen(v);

	if (n == 0)
		return cli_fail(err, cap, "%s: empty value", cli_name(o));
	if (n >= o->cap)
		return cli_fail(err, cap, "%s: value too long (max %zu bytes)",
				cli_name(o), o->cap - 1);
	memcpy(cli_target(o, c, cl), v, n + 1);
	return 0;
}

static int cli_set_bool(const struct cli_opt *o, struct config *c,
			struct cli *cl, bool b)
{
	memcpy(cli_target(o, c, cl), &b, sizeof(b));
	return 0;
}

static int cli_set_true(const struct cli_opt *o, const char *v,
			struct config *c, struct cli *cl, char *err, size_t cap)
{
	(void)v;
	(void)err;
	(void)cap;
	return cli_set_bool(o, c, cl, true);
}

static int cli_set_false(const struct cli_opt *o, const char *v,
			 struct config *c, struct cli *cl, char *err,
			 size_t cap)
{
	(void)v;
	(void)err;
	(void)cap;
	return cli_set_bool(o, c, cl, false);
}

/* -4, -6: the row's value into an int setting */
static int cli_set_const(const struct cli_opt *o, const char *v,
			 struct config *c, struct cli *cl, char *err,
			 size_t cap)
{
	(void)v;
	(void)err;
	(void)cap;
	memcpy(cli_target(o, c, cl), &o->value, sizeof(o->value));
	return 0;
}

/* Decimal integer in [lo, hi], whole string (no blanks, no sign but a
 * '-' when lo is negative). */
static int cli_int(const char *v, long lo, long hi, int *out)
{
	char *end;
	long x;

	if (v[0] == '\0' || v[0] == '+' || isspace((unsigned char)v[0]) ||
	    (v[0] == '-' && lo >= 0))
		return -1;
	errno = 0;
	x = strtol(v, &end, 10);
	if (errno != 0 || *end != '\0' || x < lo || x > hi)
		return -1;
	*out = (int)x;
	return 0;
}

static int cli_set_int(const struct cli_opt *o, const char *v,
		       struct config *c, struct cli *cl, char *err, size_t cap)
{
	long lo = (long)o->lo, hi = (long)o->hi;
	int x;

	if (cli_int(v, lo, hi, &x) == 0) {
		memcpy(cli_target(o, c, cl), &x, sizeof(x));
		return 0;
	}
	if (hi == INT_MAX && (lo == 0 || lo == 1))
		return cli_fail(err, cap, "%s: '%s' is not a %s integer",
				cli_name(o), v,
				lo == 0 ? "non-negative" : "positive");
	return cli_fail(err, cap, "%s: '%s' is not an integer in [%ld, %ld]",
			cli_name(o), v, lo, hi);
}

/* -m: as any integer, and remembered as given (else it is derived from
 * RLIMIT_NOFILE: privsep/limits.c) */
static int cli_set_sessions(const struct cli_opt *o, const char *v,
			    struct config *c, struct cli *cl, char *err,
			    size_t cap)
{
	if (cli_set_int(o, v, c, cl, err, cap) < 0)
		return -1;
	cl->max_sessions_given = true;
	return 0;
}

/* Seconds in [lo, hi] into a double field. */
static int cli_set_seconds(const struct cli_opt *o, const char *v,
			   struct config *c, struct cli *cl, char *err,
			   size_t cap)
{
	char *end;
	double t;

	errno = 0;
	t = strtod(v, &end);
	if (v[0] == '\0' || isspace((unsigned char)v[0]) || *end != '\0' ||
	    errno != 0 || !isfinite(t) ||
	    t < o->lo || t > o->hi)
		return cli_fail(err, cap,
				"%s: '%s' is not a number of seconds in "
				"[%g, %g]",
				cli_name(o), v, o->lo, o->hi);
	memcpy(cli_target(o, c, cl), &t, sizeof(t));
	return 0;
}

static int cli_set_octal(const struct cli_opt *o, const char *v,
			 struct config *c, struct cli *cl, char *err,
			 size_t cap)
{
	char *end;
	long m;
	int x;

	errno = 0;
	m = strtol(v, &end, 8);
	if (v[0] == '\0' || v[0] == '-' || v[0] == '+' ||
	    isspace((unsigned char)v[0]) || *end != '\0' || errno != 0 ||
	    m < (long)o->lo || m > (long)o->hi)
		return cli_fail(err, cap, "%s: '%s' is not an octal file mode "
				"(e.g. 0660)", cli_name(o), v);
	x = (int)m;
	memcpy(cli_target(o, c, cl), &x, sizeof(x));
	return 0;
}

/* --http [ADDR]: without ADDR the -l listener speaks HTTP */
static int cli_set_http(const struct cli_opt *o, const char *v,
			struct config *c, struct cli *cl, char *err, size_t cap)
{
	if (v == NULL) {
		c->http_only = true;
		return 0;
	}
	return cli_set_str(o, v, c, cl, err, cap);
}

static int cli_set_startups(const struct cli_opt *o, const char *v,
			    struct config *c, struct cli *cl, char *err,
			    size_t cap)
{
	char buf[64];
	char *a, *b, *d;
	int start, rate, full;

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
	cl->startups_given = true;
	return 0;
bad:
	return cli_fail(err, cap,
			"%s: '%s' is not start:rate:full (integers, rate "
			"0-100)",
			cli_name(o), v);
}

static int cli_set_block(const struct cli_opt *o, const char *v,
			 struct config *c, struct cli *cl, char *err,
			 size_t cap)
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

static int cli_set_log(const struct cli_opt *o, const char *v,
		       struct config *c, struct cli *cl, char *err, size_t cap)
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
	cl->log_given = true;
	return 0;
}

static int cli_set_user(const struct cli_opt *o, const char *v,
			struct config *c, struct cli *cl, char *err, size_t cap)
{
	unsigned uid, gid;
	char why[256];

	if (cli_parse_user(v, &uid, &gid, why, sizeof(why)) < 0)
		return cli_fail(err, cap, "%s: %s", cli_name(o), why);
	return cli_set_str(o, v, c, cl, err, cap);
}

#define CLI_OFF_CONF(f) offsetof(struct config, f)
#define CLI_OFF_CLI(f) offsetof(struct cli, f)
#define CLI_OFF_NONE(f) 0
#define CLI_CAP_CONF(f) sizeof(((struct config *)0)->f)
#define CLI_CAP_CLI(f) sizeof(((struct cli *)0)->f)
#define CLI_CAP_NONE(f) 0

static const struct cli_opt cli_opts[] = {
#define SETTING(field, type, cap, sopt, lopt, meta, set, def, lo, hi, key,   \
		flags, check, help)                                          \
	{ sopt, lopt, meta, NULL, help, set, CLI_BASE_CONF,                  \
	  offsetof(struct config, field),                                    \
	  sizeof(((struct config *)0)->field), lo, hi, 0 },
#define OPTION(sopt, lopt, meta, set, base, field, value, help)              \
	{ sopt, lopt, meta, NULL, help, set, CLI_BASE_##base,                \
	  CLI_OFF_##base(field), CLI_CAP_##base(field), 0, 0, value },
#define HELPLINE(label, help)                                                \
	{ NULL, NULL, NULL, label, help, NULL, CLI_BASE_NONE, 0, 0, 0, 0, 0 },
#include "common/settings.def"
};

#define CLI_NOPTS (sizeof(cli_opts) / sizeof(cli_opts[0]))

static const struct cli_opt *cli_find(const char *name, size_t len)
{
	for (size_t i = 0; i < CLI_NOPTS; i++) {
		const struct cli_opt *o = &cli_opts[i];
		if ((o->sname && strlen(o->sname) == len &&
		     memcmp(o->sname, name, len) == 0) ||
		    (o->lname && strlen(o->lname) == len &&
		     memcmp(o->lname, name, len) == 0))
			return o;
	}
	return NULL;
}

static int cli_arg(const struct cli_opt *o)
{
	if (o->meta == NULL)
		return ARG_NONE;
	return o->meta[0] == '[' ? ARG_OPTIONAL : ARG_REQUIRED;
}

int cli_parse(int argc, char **argv, struct config *c, struct cli *cl,
	      char *err, size_t errcap)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *eq = NULL, *val = NULL;
		const struct cli_opt *o;
		size_t nlen = strlen(a);

		if (strcmp(a, "--") == 0) {
			/* the end of the options; this daemon takes no
			 * other arguments */
			if (i + 1 < argc)
				return cli_fail(err, errcap,
						"unexpected argument '%s' "
						"(nothing follows '--')",
						argv[i + 1]);
			return 0;
		}
		if (a[0] != '-')
			return cli_fail(err, errcap,
					"unexpected argument '%s' (options "
					"start with '-')",
					a);
		if (strncmp(a, "--", 2) == 0 && (eq = strchr(a, '=')) != NULL)
			nlen = (size_t)(eq - a);
		o = a[0] == '-' ? cli_find(a, nlen) : NULL;
		if (o == NULL)
			return cli_fail(err, errcap,
					"unknown option '%.*s'", (int)nlen, a);
		if (eq != NULL) {
			if (cli_arg(o) == ARG_NONE)
				return cli_fail(err, errcap,
						"%s takes no value",
						cli_name(o));
			val = eq + 1;
		} else if (cli_arg(o) == ARG_REQUIRED) {
			if (i + 1 >= argc)
				return cli_fail(err, errcap,
						"%s requires a value",
						cli_name(o));
			val = argv[++i];
		} else if (cli_arg(o) == ARG_OPTIONAL && i + 1 < argc &&
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


#define CLI_HELP_COL 27 /* where --help's descriptions start */

int cli_help_entry(size_t i, struct cli_help *h)
{
	const struct cli_opt *o;
	size_t n = 0;

	for (size_t k = 0; k < CLI_NOPTS; k++) {
		o = &cli_opts[k];
		if (o->help == NULL || n++ != i)
			continue;
		h->sname = o->sname;
		h->lname = o->lname;
		h->meta = o->meta;
		h->help = o->help;
		if (o->label != NULL)
			snprintf(h->label, sizeof(h->label), "%s", o->label);
		else
			snprintf(h->label, sizeof(h->label), "%s%s%s%s",
				 o->sname != NULL ? o->sname : "    ",
				 o->sname != NULL ? ", " : "",
				 o->lname != NULL ? o->lname : "",
				 o->meta != NULL ? " " : "");
		if (o->meta != NULL)
			snprintf(h->label + strlen(h->label),
				 sizeof(h->label) - strlen(h->label), "%s",
				 o->meta);
		return 0;
	}
	return -1;
}

static void cli_usage_entry(FILE *f, const struct cli_help *h)
{
	int n = fprintf(f, "  %s", h->label);

	/* at least two spaces: one would read as a label's value */
	fprintf(f, "%*s", n + 2 <= CLI_HELP_COL ? CLI_HELP_COL - n : 2, "");
	for (const char *p = h->help; *p != '\0'; p++) {
		fputc(*p, f);
		if (*p == '\n')
			fprintf(f, "%*s", CLI_HELP_COL, "");
	}
	fputc('\n', f);
}

void cli_usage(FILE *f, const char *argv0)
{
	struct cli_help h;

	fprintf(f,
		"neosocksd %s\n"
		"usage: %s -l ADDR [option ...]\n"
		"\n",
		NEOSOCKSD_VERSION, argv0);
	for (size_t i = 0; cli_help_entry(i, &h) == 0; i++)
		cli_usage_entry(f, &h);
	fprintf(f,
		"\n"
		"Options take their value as the next argument or as "
		"--option=value.\n"
		"Example: %s -l 127.0.0.1:1080 --http 127.0.0.1:8080\n",
		argv0);
}
