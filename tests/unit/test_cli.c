/* Unit tests for src/privsep/cli.c: the option parser and --help built from
 * src/common/settings.def. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "common/config.h"
#include "privsep/cli.h"

#define ARGS_MAX 32

static char err[512];

/* Parse the NULL-terminated arguments over fresh defaults. */
static int vparse(struct config *c, struct cli *cl, va_list ap)
{
	char *argv[ARGS_MAX + 1];
	int argc = 0;
	const char *a;

	config_defaults(c);
	memset(cl, 0, sizeof(*cl));
	argv[argc++] = (char *)"neosocksd";
	while ((a = va_arg(ap, const char *)) != NULL) {
		assert_true(argc < ARGS_MAX);
		argv[argc++] = (char *)a;
	}
	argv[argc] = NULL;
	err[0] = '\0';
	return cli_parse(argc, argv, c, cl, err, sizeof(err));
}

static void parse_ok(struct config *c, struct cli *cl, ...)
{
	va_list ap;
	int rc;

	va_start(ap, cl);
	rc = vparse(c, cl, ap);
	va_end(ap);
	if (rc != 0)
		fail_msg("refused: %s", err);
}

/* Refused, with exactly this message. */
static void parse_err(const char *want, ...)
{
	struct config c;
	struct cli cl;
	va_list ap;
	int rc;

	va_start(ap, want);
	rc = vparse(&c, &cl, ap);
	va_end(ap);
	if (rc != -1)
		fail_msg("accepted, want \"%s\"", want);
	assert_string_equal(err, want);
}

static void test_no_options_keep_defaults(void **state)
{
	struct config c, d;
	struct cli cl;

	(void)state;
	parse_ok(&c, &cl, NULL);
	config_defaults(&d);
	assert_memory_equal(&c, &d, sizeof(c));
	assert_false(cl.help || cl.version || cl.dump_config || cl.check);
	assert_int_equal(cl.log_sink, CLI_LOG_STDERR);
}

static void test_string_option(void **state)
{
	struct config c;
	struct cli cl;
	char big[CONF_ADDR_MAX + 1];

	(void)state;
	parse_ok(&c, &cl, "-l", "127.0.0.1:1080", NULL);
	assert_string_equal(c.listen, "127.0.0.1:1080");
	parse_ok(&c, &cl, "--listen", "[::1]:1", NULL);
	assert_string_equal(c.listen, "[::1]:1");
	parse_ok(&c, &cl, "--listen=:1080", NULL);
	assert_string_equal(c.listen, ":1080");
	/* the last one wins */
	parse_ok(&c, &cl, "-l", "a", "-l", "b", NULL);
	assert_string_equal(c.listen, "b");
	/* a value may start with '-' when it is required */
	parse_ok(&c, &cl, "-r", "-x", NULL);
	assert_string_equal(c.ruleset, "-x");
	parse_err("--listen: empty value", "-l", "", NULL);
	parse_err("--listen: empty value", "--listen=", NULL);
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	parse_err("--listen: value too long (max 255 bytes)", "-l", big, NULL);
	big[CONF_ADDR_MAX - 1] = '\0';
	parse_ok(&c, &cl, "-l", big, NULL);
	assert_int_equal(strlen(c.listen), CONF_ADDR_MAX - 1);
	parse_err("--netdev: value too long (max 15 bytes)", "-i",
		  "0123456789abcdef", NULL);
}

static void test_int_option(void **state)
{
	struct config c;
	struct cli cl;

	(void)state;
	parse_ok(&c, &cl, "-m", "0", NULL);
	assert_int_equal(c.max_sessions, 0);
	parse_ok(&c, &cl, "--max-sessions=2147483647", NULL);
	assert_int_equal(c.max_sessions, INT_MAX);
	parse_err("--max-sessions: '2147483648' is not a non-negative integer",
		  "-m", "2147483648", NULL);
	parse_err("--max-sessions: '-1' is not a non-negative integer", "-m",
		  "-1", NULL);
	parse_err("--max-sessions: '+1' is not a non-negative integer", "-m",
		  "+1", NULL);
	parse_err("--max-sessions: '1x' is not a non-negative integer", "-m",
		  "1x", NULL);
	/* regression: strtol() skipped leading blanks, so ' 1' was taken */
	parse_err("--max-sessions: ' 1' is not a non-negative integer", "-m",
		  " 1", NULL);
	parse_err("--max-sessions: '' is not a non-negative integer", "-m", "",
		  NULL);
	parse_ok(&c, &cl, "--api-max-conns", "1", NULL);
	assert_int_equal(c.api_max_conns, 1);
	parse_ok(&c, &cl, "--api-max-conns", "65536", NULL);
	assert_int_equal(c.api_max_conns, 65536);
	parse_err("--api-max-conns: '0' is not an integer in [1, 65536]",
		  "--api-max-conns", "0", NULL);
	parse_err("--api-max-conns: '65537' is not an integer in [1, 65536]",
		  "--api-max-conns", "65537", NULL);
	parse_ok(&c, &cl, "--loglevel", "8", NULL);
	assert_int_equal(c.loglevel, 8);
	parse_err("--loglevel: '9' is not an integer in [0, 8]", "--loglevel",
		  "9", NULL);
	parse_ok(&c, &cl, "--memlimit", "65536", NULL);
	assert_int_equal(c.memlimit, 65536);
	parse_err("--memlimit: '65537' is not an integer in [0, 65536]",
		  "--memlimit", "65537", NULL);
	/* --mark's default 0 means none; the command line takes 1 and up */
	parse_ok(&c, &cl, "--mark", "1", NULL);
	assert_int_equal(c.mark, 1);
	parse_err("--mark: '0' is not a positive integer", "--mark", "0", NULL);
}

static void test_seconds_option(void **state)
{
	struct config c;
	struct cli cl;
	static const char *const bad[] = {
		"4.99", "86400.5", "nan", "inf", "-inf", "1e999", "", "5s",
		"0x", "abc",
		" 6", "\t6", /* regression: strtod() skipped blanks */
	};

	(void)state;
	parse_ok(&c, &cl, "-t", "5", NULL);
	assert_true(c.timeout == 5.0);
	parse_ok(&c, &cl, "-t", "7.5", NULL);
	assert_true(c.timeout == 7.5);
	parse_ok(&c, &cl, "--timeout=86400", NULL);
	assert_true(c.timeout == 86400.0);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char want[128];

		snprintf(want, sizeof(want),
			 "--timeout: '%s' is not a number of seconds in "
			 "[5, 86400]", bad[i]);
		parse_err(want, "-t", bad[i], NULL);
	}
	parse_ok(&c, &cl, "--drain", "0", NULL);
	assert_true(c.drain_timeout == 0.0);
	parse_err("--drain: '-1' is not a number of seconds in [0, 86400]",
		  "--drain", "-1", NULL);
	parse_ok(&c, &cl, "--api-timeout", "0.1", "--api-idle", "3600", NULL);
	assert_true(c.api_timeout == 0.1 && c.api_idle == 3600.0);
	parse_err("--api-idle: '0.05' is not a number of seconds in "
		  "[0.1, 86400]", "--api-idle", "0.05", NULL);
}

static void test_octal_option(void **state)
{
	struct config c;
	struct cli cl;

	(void)state;
	parse_ok(&c, &cl, "--api-mode", "0660", NULL);
	assert_int_equal(c.api_mode, 0660);
	parse_ok(&c, &cl, "--api-mode", "777", NULL);
	assert_int_equal(c.api_mode, 0777);
	parse_ok(&c, &cl, "--api-mode", "0", NULL);
	assert_int_equal(c.api_mode, 0);
	parse_err("--api-mode: '01000' is not an octal file mode (e.g. 0660)",
		  "--api-mode", "01000", NULL);
	parse_err("--api-mode: '0680' is not an octal file mode (e.g. 0660)",
		  "--api-mode", "0680", NULL);
	parse_err("--api-mode: '-1' is not an octal file mode (e.g. 0660)",
		  "--api-mode", "-1", NULL);
	parse_err("--api-mode: '' is not an octal file mode (e.g. 0660)",
		  "--api-mode", "", NULL);
	parse_err("--api-mode: ' 0660' is not an octal file mode (e.g. 0660)",
		  "--api-mode", " 0660", NULL);
}

static void test_flag_options(void **state)
{
	struct config c;
	struct cli cl;

	(void)state;
	parse_ok(&c, &cl, "--reuseport", "--no-pipe", "--no-fastopen",
		 "--fastopen-connect", "--traceback", "--auth-required",
		 "--enable-execute", "--sandbox-debug", NULL);
	assert_true(c.reuseport && c.tcp_fastopen_connect && c.traceback &&
		    c.auth_required && c.enable_execute && c.sandbox_debug);
	assert_false(c.pipe || c.tcp_fastopen);
	parse_ok(&c, &cl, "--no-pipe", "--pipe", NULL);
	assert_true(c.pipe);
	parse_err("--reuseport takes no value", "--reuseport=yes", NULL);
	parse_err("--pipe takes no value", "--pipe=", NULL);
	parse_err("--help takes no value", "--help=1", NULL);
	/* -4 and -6 set one setting: the last one wins */
	parse_ok(&c, &cl, "-4", NULL);
	assert_int_equal(c.resolve_pf, AF_INET);
	parse_ok(&c, &cl, "-4", "--ipv6", NULL);
	assert_int_equal(c.resolve_pf, AF_INET6);
	parse_ok(&c, &cl, "-6", "--ipv4", NULL);
	assert_int_equal(c.resolve_pf, AF_INET);
}

static void test_cli_only_flags(void **state)
{
	struct config c, d;
	struct cli cl;

	(void)state;
	parse_ok(&c, &cl, "-h", NULL);
	assert_true(cl.help);
	parse_ok(&c, &cl, "--help", "--version", "--dump-config", "-C", NULL);
	assert_true(cl.help && cl.version && cl.dump_config && cl.check);
	parse_ok(&c, &cl, "--check", NULL);
	assert_true(cl.check && !cl.help);
	/* they change no setting */
	config_defaults(&d);
	assert_memory_equal(&c, &d, sizeof(c));
	parse_ok(&c, &cl, "--log", "stdout", NULL);
	assert_int_equal(cl.log_sink, CLI_LOG_STDOUT);
	parse_ok(&c, &cl, "--log", "syslog", NULL);
	assert_int_equal(cl.log_sink, CLI_LOG_SYSLOG);
	parse_ok(&c, &cl, "--log=discard", NULL);
	assert_int_equal(cl.log_sink, CLI_LOG_DISCARD);
	parse_ok(&c, &cl, "--log", "discard", "--log", "terminal", NULL);
	assert_int_equal(cl.log_sink, CLI_LOG_STDERR);
	parse_err("--log: 'nowhere' is not one of stdout, stderr, terminal, "
		  "syslog, discard", "--log", "nowhere", NULL);
}

/* --http takes its address only when the next argument is not an option */
static void test_http_optional_value(void **state)
{
	struct config c;
	struct cli cl;

	(void)state;
	parse_ok(&c, &cl, "-l", "127.0.0.1:1", "--http", NULL);
	assert_true(c.http_only);
	assert_string_equal(c.http_listen, "");
	parse_ok(&c, &cl, "--http", "-l", "127.0.0.1:1", NULL);
	assert_true(c.http_only);
	assert_string_equal(c.listen, "127.0.0.1:1");
	parse_ok(&c, &cl, "--http", "127.0.0.1:8080", NULL);
	assert_false(c.http_only);
	assert_string_equal(c.http_listen, "127.0.0.1:8080");
	parse_ok(&c, &cl, "--http=127.0.0.1:8080", NULL);
	assert_string_equal(c.http_listen, "127.0.0.1:8080");
	parse_err("--http: empty value", "--http=", NULL);
	/* '--' after a bare --http ends the options: it is no address */
	parse_ok(&c, &cl, "-l", "127.0.0.1:1", "--http", "--", NULL);
	assert_true(c.http_only);
	assert_string_equal(c.http_listen, "");
}

static void test_max_startups(void **state)
{
	struct config c;
	struct cli cl;
	static const char *const bad[] = {
		"1:2", "1:2:3:4", "a:1:2", "1:101:2", "-1:2:3", "1::3", "",
		"::", "1:2:3x",
	};

	(void)state;
	parse_ok(&c, &cl, "--max-startups", "10:30:100", NULL);
	assert_int_equal(c.startup_limit_start, 10);
	assert_int_equal(c.startup_limit_rate, 30);
	assert_int_equal(c.startup_limit_full, 100);
	parse_ok(&c, &cl, "--max-startups=0:100:0", NULL);
	assert_int_equal(c.startup_limit_rate, 100);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char want[128];

		snprintf(want, sizeof(want),
			 "--max-startups: '%s' is not start:rate:full "
			 "(integers, rate 0-100)", bad[i]);
		parse_err(want, "--max-startups", bad[i], NULL);
	}
}

static void test_block_outbound(void **state)
{
	struct config c;
	struct cli cl;

	(void)state;
	parse_ok(&c, &cl, NULL);
	assert_true(c.block_multicast);
	/* the list replaces the default */
	parse_ok(&c, &cl, "--block-outbound", "loopback,local", NULL);
	assert_true(c.block_loopback && c.block_local);
	assert_false(c.block_multicast || c.block_global);
	parse_ok(&c, &cl, "--block-outbound", "global", NULL);
	assert_true(c.block_global && !c.block_loopback);
	parse_err("--block-outbound: unknown class 'bogus' (use loopback, "
		  "multicast, local, global)",
		  "--block-outbound", "loopback,bogus", NULL);
}

static void test_user_option(void **state)
{
	struct config c;
	struct cli cl;

	(void)state;
	parse_ok(&c, &cl, "-u", "root", "--ruleset-user", "root:root",
		 "--api-owner", ":root", NULL);
	assert_string_equal(c.user_name, "root");
	assert_string_equal(c.ruleset_user, "root:root");
	assert_string_equal(c.api_owner, ":root");
	parse_err("--user: no such user 'no-such-user-xyz'", "-u",
		  "no-such-user-xyz", NULL);
	parse_err("--ruleset-user: no such group 'no-such-group-xyz'",
		  "--ruleset-user", "root:no-such-group-xyz", NULL);
	parse_err("--api-owner: ':' names neither a user nor a group (want "
		  "user[:[group]])", "--api-owner", ":", NULL);
}

static void test_bad_command_lines(void **state)
{
	(void)state;
	parse_err("unknown option '--frobnicate'", "--frobnicate", NULL);
	parse_err("unknown option '--frobnicate'", "--frobnicate=1", NULL);
	parse_err("unexpected argument 'stray' (options start with '-')", "-l", "127.0.0.1:1", "stray",
		  NULL);
	parse_err("unknown option '-'", "-", NULL);
	/* an '=' is for long options only */
	parse_err("unknown option '-l=1'", "-l=1", NULL);
	/* abbreviations are not options */
	parse_err("unknown option '--list'", "--list", "x", NULL);
	/* '--' ends the options; nothing may follow it */
	parse_err("unexpected argument 'x' (nothing follows '--')", "-l",
		  "127.0.0.1:1", "--", "x", NULL);
	parse_err("unexpected argument '-l' (nothing follows '--')", "--",
		  "-l", "127.0.0.1:1", NULL);
	parse_err("unexpected argument 'x' (options start with '-')", "x",
		  NULL);
	parse_err("--listen requires a value", "-l", NULL);
	parse_err("--timeout requires a value", "-4", "--timeout", NULL);
}

/* A value that the option of row s accepts, or NULL. */
static const char *sample_value(const struct config_setting *s)
{
	if (s->type == CONF_T_STR)
		return strstr(s->lopt, "user") != NULL ||
				       strcmp(s->lopt, "--api-owner") == 0
			       ? "root"
			       : "x";
	if (s->type == CONF_T_OCT)
		return "0640";
	if (s->type == CONF_T_INT || s->type == CONF_T_NUM)
		return s->hi == INT_MAX ? "1000" : "8";
	return NULL;
}

/* Every row of settings.def with an option: the option sets the row's
 * field (and parses as --opt=value too). */
static void test_every_option_sets_its_field(void **state)
{
	(void)state;
	for (size_t i = 0; i < config_nsettings; i++) {
		const struct config_setting *s = &config_settings[i];
		const char *v = s->lopt != NULL ? sample_value(s) : NULL;
		struct config c, d;
		struct cli cl;
		char eq[64];

		if (s->lopt == NULL)
			continue;
		config_defaults(&d);
		if (v == NULL) { /* a flag: it flips the default */
			parse_ok(&c, &cl, s->lopt, NULL);
			assert_true(config_bool(&c, s) != config_bool(&d, s));
			continue;
		}
		parse_ok(&c, &cl, s->lopt, v, NULL);
		if (s->type == CONF_T_STR)
			assert_string_equal(config_str(&c, s), v);
		else if (s->type == CONF_T_NUM)
			assert_true(config_num(&c, s) == strtod(v, NULL));
		else
			assert_int_equal(config_int(&c, s),
					 strtol(v, NULL,
						s->type == CONF_T_OCT ? 8 : 10));
		if (s->sopt != NULL) {
			struct config e;

			parse_ok(&e, &cl, s->sopt, v, NULL);
			assert_memory_equal(&c, &e, sizeof(c));
		}
		snprintf(eq, sizeof(eq), "%s=%s", s->lopt, v);
		parse_ok(&d, &cl, eq, NULL);
		assert_memory_equal(&c, &d, sizeof(c));
	}
}

static char *usage_text(void)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	assert_non_null(f);
	cli_usage(f, "neosocksd");
	fclose(f);
	return buf;
}

static void test_usage_lists_every_option(void **state)
{
	char *u = usage_text();
	struct cli_help h;
	size_t n = 0;

	(void)state;
	/* a few lines as they read */
	assert_non_null(strstr(u, "\n  -h, --help               show this "
				  "help and exit\n"));
	assert_non_null(strstr(u, "\n  -4, -6                   resolve names "
				  "to IPv4 / IPv6 only\n"));
	assert_non_null(strstr(u, "\n      --http [ADDR]        HTTP proxy "
				  "listener; without ADDR the -l listener\n"
				  "                           speaks HTTP "
				  "instead of SOCKS\n"));
	assert_non_null(strstr(u, "\n      --api-readonly-token-file F  token "
				  "for GET /healthy, /stats, /metrics\n"));
	assert_non_null(strstr(u, "probability R% once S\n"));
	/* every entry is there, continuations under the descriptions */
	for (; cli_help_entry(n, &h) == 0; n++) {
		char line[128];

		snprintf(line, sizeof(line), "\n  %s ", h.label);
		assert_non_null(strstr(u, line));
	}
	assert_true(n > 40);
	for (char *p = u, *e; *p; p = e + 1) {
		e = strchr(p, '\n');
		assert_non_null(e);
		if (strspn(p, " ") > 6) /* not an option's line */
			assert_int_equal(strspn(p, " "), 27);
	}
	/* options left out of --help still parse (as above) */
	assert_null(strstr(u, "--pipe "));
	assert_null(strstr(u, "--ipv4"));
	free(u);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_no_options_keep_defaults),
		cmocka_unit_test(test_string_option),
		cmocka_unit_test(test_int_option),
		cmocka_unit_test(test_seconds_option),
		cmocka_unit_test(test_octal_option),
		cmocka_unit_test(test_flag_options),
		cmocka_unit_test(test_cli_only_flags),
		cmocka_unit_test(test_http_optional_value),
		cmocka_unit_test(test_max_startups),
		cmocka_unit_test(test_block_outbound),
		cmocka_unit_test(test_user_option),
		cmocka_unit_test(test_bad_command_lines),
		cmocka_unit_test(test_every_option_sets_its_field),
		cmocka_unit_test(test_usage_lists_every_option),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
