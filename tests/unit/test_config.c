/* Unit tests for src/common/config.c: the table of settings.def, its
 * defaults, range checks, wire validation, rules and --dump-config. */
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

static char err[512];

static char *field(struct config *c, const struct config_setting *s)
{
	return (char *)c + s->off;
}

static void set_int(struct config *c, const struct config_setting *s, int v)
{
	memcpy(field(c, s), &v, sizeof(v));
}

static void set_num(struct config *c, const struct config_setting *s,
		    double v)
{
	memcpy(field(c, s), &v, sizeof(v));
}

static bool is_number(const struct config_setting *s)
{
	return s->type == CONF_T_INT || s->type == CONF_T_OCT ||
	       s->type == CONF_T_NUM;
}

static void set_number(struct config *c, const struct config_setting *s,
		       double v)
{
	if (s->type == CONF_T_NUM)
		set_num(c, s, v);
	else
		set_int(c, s, (int)v);
}

static void test_defaults(void **state)
{
	struct config c;

	(void)state;
	config_defaults(&c);
	assert_int_equal(c.size, sizeof(c));
	assert_string_equal(c.listen, "");
	assert_string_equal(c.jail_dir, "/run/neosocksd/empty");
	assert_int_equal(c.loglevel, 4);
	assert_true(c.timeout == 60.0 && c.drain_timeout == 10.0);
	assert_true(c.api_timeout == 10.0 && c.api_idle == 60.0);
	assert_int_equal(c.api_max_conns, 64);
	assert_int_equal(c.api_mode, 0600);
	assert_true(c.pipe && c.tcp_fastopen && c.tcp_nodelay &&
		    c.tcp_keepalive && c.block_multicast);
	assert_false(c.http_only || c.reuseport || c.block_loopback ||
		     c.auth_required || c.enable_execute);
	assert_int_equal(c.startup_limit_rate, 30);
	assert_int_equal(c.mark, 0);
	assert_int_equal(c.resolve_pf, 0);
	/* the defaults are valid, but name no listener */
	assert_int_equal(config_validate_wire(&c, sizeof(c)), 0);
	assert_int_equal(config_check_ranges(&c, err, sizeof(err)), 0);
	assert_int_equal(config_check(&c, err, sizeof(err)), -1);
	assert_string_equal(err, "listen address is not specified (use -l "
				 "ADDR and/or --http ADDR)");
	snprintf(c.listen, sizeof(c.listen), "127.0.0.1:1080");
	assert_int_equal(config_check(&c, err, sizeof(err)), 0);
}

static void test_table_is_consistent(void **state)
{
	(void)state;
	assert_true(config_nsettings > 50);
	for (size_t i = 0; i < config_nsettings; i++) {
		const struct config_setting *s = &config_settings[i];

		for (size_t j = 0; j < i; j++) {
			const struct config_setting *t = &config_settings[j];

			if (s->key != NULL && t->key != NULL)
				assert_string_not_equal(s->key, t->key);
			if (s->lopt != NULL && t->lopt != NULL)
				assert_string_not_equal(s->lopt, t->lopt);
			if (s->type != CONF_T_UNSUPPORTED &&
			    t->type != CONF_T_UNSUPPORTED)
				assert_true(s->off != t->off);
		}
		if (s->key != NULL)
			assert_ptr_equal(config_find(s->key), s);
		if (is_number(s))
			assert_true(s->lo <= s->hi);
		/* every field lies after the size and inside the struct */
		if (s->type != CONF_T_UNSUPPORTED)
			assert_true(s->off >= sizeof(uint32_t) &&
				    s->off + s->cap <= sizeof(struct config));
	}
	assert_null(config_find("colour"));
	assert_null(config_find(""));
	assert_int_equal(config_find("jail")->off,
			 offsetof(struct config, jail_dir));
	assert_int_equal(config_find("api_readonly_token_file")->off,
			 offsetof(struct config, api_ro_token_file));
	/* the reference's keys that were refused before issue 13 */
	assert_int_equal(config_find("transparent")->off,
			 offsetof(struct config, transparent));
	assert_int_equal(config_find("socks5_bind")->type, CONF_T_BOOL);
	assert_int_equal(config_find("socks5_udp")->type, CONF_T_BOOL);
	assert_int_equal(config_find("daemonize")->type, CONF_T_BOOL);
}

static void test_wire_size(void **state)
{
	struct config c;

	(void)state;
	config_defaults(&c);
	assert_int_equal(config_validate_wire(&c, sizeof(c) - 1), -1);
	assert_int_equal(config_validate_wire(&c, sizeof(c) + 1), -1);
	assert_int_equal(config_validate_wire(&c, 0), -1);
	c.size = sizeof(c) - 8;
	assert_int_equal(config_validate_wire(&c, sizeof(c)), -1);
}

/* every string must end inside its array */
static void test_wire_unterminated_strings(void **state)
{
	(void)state;
	for (size_t i = 0; i < config_nsettings; i++) {
		const struct config_setting *s = &config_settings[i];
		struct config c;

		if (s->type != CONF_T_STR)
			continue;
		config_defaults(&c);
		memset(field(&c, s), 'A', s->cap);
		if (config_validate_wire(&c, sizeof(c)) != -1)
			fail_msg("%s: accepted without a NUL", s->key);
		field(&c, s)[s->cap - 1] = '\0';
		assert_int_equal(config_validate_wire(&c, sizeof(c)), 0);
	}
}

/* a bool byte other than 0 or 1 would be undefined behaviour to read */
static void test_wire_bools(void **state)
{
	(void)state;
	for (size_t i = 0; i < config_nsettings; i++) {
		const struct config_setting *s = &config_settings[i];
		struct config c;

		if (s->type != CONF_T_BOOL)
			continue;
		config_defaults(&c);
		field(&c, s)[0] = 2;
		if (config_validate_wire(&c, sizeof(c)) != -1)
			fail_msg("%s: accepted a bool of 2", s->key);
		field(&c, s)[0] = (char)0xff;
		assert_int_equal(config_validate_wire(&c, sizeof(c)), -1);
		field(&c, s)[0] = 1;
		assert_int_equal(config_validate_wire(&c, sizeof(c)), 0);
	}
}

static void expect_refused(struct config *c, const struct config_setting *s,
			   double v)
{
	if (config_validate_wire(c, sizeof(*c)) != -1)
		fail_msg("%s: wire accepted %g", s->key, v);
	if (config_check_ranges(c, err, sizeof(err)) != -1)
		fail_msg("%s: ranges accepted %g", s->key, v);
	/* the message names the key (and the option, when it has one) */
	assert_non_null(strstr(err, s->key));
	assert_non_null(strstr(err, "is out of range"));
	if (s->sopt != NULL || s->lopt != NULL)
		assert_non_null(strstr(err, s->sopt != NULL ? s->sopt
							     : s->lopt));
}

/* every number: its bounds pass, just outside them does not */
static void test_wire_numbers_out_of_range(void **state)
{
	(void)state;
	for (size_t i = 0; i < config_nsettings; i++) {
		const struct config_setting *s = &config_settings[i];
		double step = s->type == CONF_T_NUM ? 0.01 : 1;
		struct config c;

		if (!is_number(s))
			continue;
		config_defaults(&c);
		set_number(&c, s, s->lo);
		assert_int_equal(config_validate_wire(&c, sizeof(c)), 0);
		set_number(&c, s, s->hi);
		assert_int_equal(config_validate_wire(&c, sizeof(c)), 0);
		if (s->lo - step != s->def) {
			set_number(&c, s, s->lo - step);
			expect_refused(&c, s, s->lo - step);
		}
		if (s->hi < INT_MAX) {
			set_number(&c, s, s->hi + step);
			expect_refused(&c, s, s->hi + step);
		}
		if (s->type == CONF_T_NUM) {
			set_num(&c, s, NAN);
			assert_int_equal(config_validate_wire(&c, sizeof(c)),
					 -1);
			set_num(&c, s, INFINITY);
			assert_int_equal(config_validate_wire(&c, sizeof(c)),
					 -1);
			set_num(&c, s, -INFINITY);
			assert_int_equal(config_validate_wire(&c, sizeof(c)),
					 -1);
		} else {
			set_int(&c, s, INT_MIN);
			expect_refused(&c, s, INT_MIN);
		}
	}
}

static void test_range_messages(void **state)
{
	struct config c;

	(void)state;
	config_defaults(&c);
	c.timeout = 1;
	assert_int_equal(config_check_ranges(&c, err, sizeof(err)), -1);
	assert_string_equal(err, "-t: timeout 1 is out of range (5 - 86400)");
	config_defaults(&c);
	c.api_mode = 01000;
	assert_int_equal(config_check_ranges(&c, err, sizeof(err)), -1);
	assert_string_equal(err, "--api-mode: api_mode 01000 is out of range "
				 "(0 - 0777)");
	config_defaults(&c);
	c.tcp_sndbuf = -1;
	assert_int_equal(config_check_ranges(&c, err, sizeof(err)), -1);
	assert_string_equal(err, "tcp_sndbuf -1 is out of range (0 - "
				 "2147483647)");
	/* a default outside the range means "none" (--mark's 0) */
	config_defaults(&c);
	assert_int_equal(c.mark, 0);
	assert_int_equal(config_validate_wire(&c, sizeof(c)), 0);
	c.mark = -1;
	assert_int_equal(config_validate_wire(&c, sizeof(c)), -1);
}

static void check_is(struct config *c, const char *want)
{
	int rc = config_check(c, err, sizeof(err));

	if (want == NULL) {
		if (rc != 0)
			fail_msg("refused: %s", err);
		return;
	}
	assert_int_equal(rc, -1);
	assert_string_equal(err, want);
}

/* each value's own checks and the rules between settings */
static void test_check_rules(void **state)
{
	struct config c;

	(void)state;
	config_defaults(&c);
	strcpy(c.listen, "127.0.0.1:1080");
	c.resolve_pf = 3;
	check_is(&c, "resolve_pf: bad value 3");
	c.resolve_pf = AF_INET6;
	check_is(&c, NULL);
	strcpy(c.forward, ":");
	check_is(&c, "-f: invalid forward address ':' (want host:port)");
	strcpy(c.ruleset, "/r.lua");
	check_is(&c, NULL);
	strcpy(c.config_file, "/c.lua");
	check_is(&c, "-r and -c are mutually exclusive (set 'ruleset' in "
			 "the config file)");
	c.ruleset[0] = '\0';
	c.http_only = true;
	check_is(&c, "--http is incompatible with -f");
	c.forward[0] = '\0';
	check_is(&c, NULL);
	c.listen[0] = '\0';
	strcpy(c.http_listen, "127.0.0.1:8080");
	check_is(&c, "--http without an address needs -l ADDR");
	c.http_only = false;
	c.startup_limit_start = 30;
	c.startup_limit_full = 20;
	check_is(&c, "--max-startups: start 30 is greater than full 20");
	c.startup_limit_start = 10;
	c.max_sessions = 15;
	check_is(&c, "--max-startups: full 20 is greater than -m 15");
	c.max_sessions = 0;
	strcpy(c.restapi, "192.0.2.1:9080");
	check_is(&c, "--api 192.0.2.1:9080 is not a loopback address: "
			 "refusing to serve it without --api-token-file, "
			 "--api-allow or TLS with client certificates "
			 "(--api-tls-cert, --api-tls-key, --api-tls-client-ca)");
	strcpy(c.api_allow, "192.0.2.0/24,::1");
	check_is(&c, NULL);
	strcpy(c.api_allow, "192.0.2.0/33");
	check_is(&c, "--api-allow: '192.0.2.0/33' is not an address or "
			 "CIDR");
	c.api_allow[0] = '\0';
	strcpy(c.api_host, "proxy1.corp,[2001:db8::1],192.0.2.1");
	check_is(&c, "--api 192.0.2.1:9080 is not a loopback address: "
			 "refusing to serve it without --api-token-file, "
			 "--api-allow or TLS with client certificates "
			 "(--api-tls-cert, --api-tls-key, --api-tls-client-ca)");
	strcpy(c.api_host, "proxy1.corp:9080");
	check_is(&c, "--api-host: 'proxy1.corp:9080' is not a host name or an "
			 "IP address (no port)");
	strcpy(c.api_host, "a,,b");
	check_is(&c, "--api-host: '' is not a host name or an IP address (no "
			 "port)");
	c.api_host[0] = '\0';
	strcpy(c.jail_dir, "relative");
	check_is(&c, "--jail: 'relative' is not an absolute path");
	strcpy(c.jail_dir, "/j");
	strcpy(c.proxy, "socks5://u:secret@127.0.0.1");
	check_is(&c, "--api 192.0.2.1:9080 is not a loopback address: "
			 "refusing to serve it without --api-token-file, "
			 "--api-allow or TLS with client certificates "
			 "(--api-tls-cert, --api-tls-key, --api-tls-client-ca)");
	strcpy(c.restapi, "/run/api.sock");
	check_is(&c, NULL);
}

/* The TLS files come in sets; TLS with client certificates protects a
 * non-loopback API as a token or an allowlist does. */
static void test_check_tls_rules(void **state)
{
	struct config c;

	(void)state;
	config_defaults(&c);
	strcpy(c.listen, "127.0.0.1:1080");
	strcpy(c.restapi, "192.0.2.1:9080");
	strcpy(c.api_tls_cert, "/api.crt");
	check_is(&c, "--api-tls-cert and --api-tls-key go together (the "
		     "certificate and its key)");
	strcpy(c.api_tls_key, "/api.key");
	check_is(&c, "--api 192.0.2.1:9080 is not a loopback address: "
		     "refusing to serve it without --api-token-file, "
		     "--api-allow or TLS with client certificates "
		     "(--api-tls-cert, --api-tls-key, --api-tls-client-ca)");
	strcpy(c.api_tls_client_ca, "/ca.crt");
	check_is(&c, NULL);
	strcpy(c.api_tls_ro_subject, "*OU=readers,*");
	check_is(&c, NULL);
	c.api_tls_client_ca[0] = '\0';
	strcpy(c.restapi, "127.0.0.1:9080");
	check_is(&c, "--api-tls-readonly-subject needs --api-tls-client-ca "
		     "(it reads verified client certificates)");
	c.api_tls_ro_subject[0] = '\0';
	c.api_tls_cert[0] = c.api_tls_key[0] = '\0';
	strcpy(c.api_tls_client_ca, "/ca.crt");
	check_is(&c, "--api-tls-client-ca needs --api-tls-cert and "
		     "--api-tls-key (client certificates are asked for in the "
		     "TLS handshake)");
	c.api_tls_client_ca[0] = '\0';
	c.restapi[0] = '\0';
	strcpy(c.api_tls_cert, "/api.crt");
	strcpy(c.api_tls_key, "/api.key");
	check_is(&c, "--api-tls-cert needs --api");
	c.api_tls_cert[0] = c.api_tls_key[0] = '\0';
	strcpy(c.rpc_tls_key, "/a.key");
	check_is(&c, "--rpc-tls-cert and --rpc-tls-key go together (the "
		     "certificate and its key)");
	strcpy(c.rpc_tls_cert, "/a.crt");
	check_is(&c, "--rpc-tls-cert needs --rpc-tls-ca (https:// peers are "
		     "verified against it)");
	strcpy(c.rpc_tls_ca, "/ca.crt");
	check_is(&c, NULL);
	c.rpc_tls_cert[0] = c.rpc_tls_key[0] = '\0';
	check_is(&c, NULL);
}

/* config_keep_cli() restores every command-line-only setting: the parent
 * once kept a -c evaluation's --lua-path, where it looks for modules */
/* Issue 15: "--http 41792" (a bare port) was refused without the hint
 * that -l gives; every listener now says what it wants, and what a bare
 * port probably meant. */
static void test_listen_hints(void **state)
{
	struct config c;

	(void)state;
	config_defaults(&c);
	strcpy(c.listen, "127.0.0.1:1080");
	strcpy(c.http_listen, "41792");
	check_is(&c, "--http: invalid listen address '41792' (want host:port, "
		     "[v6]:port or :port: '127.0.0.1:41792' for loopback, "
		     "':41792' for every address)");
	strcpy(c.http_listen, "nowhere");
	check_is(&c, "--http: invalid listen address 'nowhere' (want "
		     "host:port, [v6]:port or :port)");
	c.http_listen[0] = '\0';
	strcpy(c.listen, "1080");
	check_is(&c, "-l: invalid listen address '1080' (want host:port, "
		     "[v6]:port or :port: '127.0.0.1:1080' for loopback, "
		     "':1080' for every address)");
	strcpy(c.listen, "127.0.0.1:1080");
	strcpy(c.restapi, "9080");
	check_is(&c, "--api: invalid listen address '9080' (want host:port, "
		     "[v6]:port or :port or a unix socket path: "
		     "'127.0.0.1:9080' for loopback, ':9080' for every "
		     "address)");
}

static void test_keep_cli_restores_lua_path_and_the_rest(void **state)
{
	struct config cli, merged, out;

	(void)state;
	memset(&cli, 0x11, sizeof(cli));
	memset(&merged, 0x22, sizeof(merged));
	out = merged;
	config_keep_cli(&out, &cli);
	for (size_t i = 0; i < config_nsettings; i++) {
		const struct config_setting *s = &config_settings[i];
		const struct config *want =
			(s->flags & CONF_CLI) ? &cli : &merged;

		if (s->type == CONF_T_UNSUPPORTED)
			continue;
		if (memcmp((char *)&out + s->off, (const char *)want + s->off,
			   s->cap) != 0)
			fail_msg("%s: not %s", s->key ? s->key : "(no key)",
				 want == &cli ? "restored" : "kept");
	}
	assert_true(config_find("lua_path")->flags & CONF_CLI);
	assert_memory_equal(out.lua_path, cli.lua_path, sizeof(out.lua_path));
	assert_memory_equal(out.config_file, cli.config_file,
			    sizeof(out.config_file));
	assert_memory_equal(&out.enable_execute, &cli.enable_execute,
			    sizeof(out.enable_execute));
}

static char *dump_text(const struct config *c)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	assert_non_null(f);
	config_dump(c, f);
	fclose(f);
	return buf;
}

static size_t count(const char *hay, const char *needle)
{
	size_t n = 0;

	for (const char *p = hay; (p = strstr(p, needle)) != NULL; p++)
		n++;
	return n;
}

static void test_dump_format(void **state)
{
	struct config c;
	char *d;

	(void)state;
	config_defaults(&c);
	strcpy(c.listen, "127.0.0.1:1080");
	strcpy(c.nameserver, "a\"b\\c\n\x7f");
	c.timeout = 7.5;
	c.api_mode = 0640;
	c.http_only = true;
	strcpy(c.user_name, "nobody");
	d = dump_text(&c);
	assert_non_null(strstr(d, "return {\n    listen = \"127.0.0.1:1080\",\n"));
	assert_non_null(strstr(d, "\n    nameserver = \"a\\\"b\\\\c\\010\\127\",\n"));
	assert_non_null(strstr(d, "\n    forward = nil,\n"));
	assert_non_null(strstr(d, "\n    timeout = 7.5,\n"));
	assert_non_null(strstr(d, "\n    api_idle = 60,\n"));
	assert_non_null(strstr(d, "\n    api_mode = tonumber(\"0640\", 8),\n"));
	assert_non_null(strstr(d, "\n    http_only = true,\n"));
	assert_non_null(strstr(d, "\n    pipe = true,\n"));
	assert_non_null(strstr(d, "\n    loglevel = 4,\n"));
	assert_non_null(strstr(d, "\n    -- (command line only) user_name = "
				  "\"nobody\",\n"));
	assert_non_null(strstr(d, "\n    -- (command line only) jail = "
				  "\"/run/neosocksd/empty\",\n"));
	assert_non_null(strstr(d, "\n    -- (command line only) "
				  "enable_execute = false,\n"));
	assert_string_equal(d + strlen(d) - 2, "}\n");
	/* each key once; keyless and unsupported rows not at all */
	for (size_t i = 0; i < config_nsettings; i++) {
		const struct config_setting *s = &config_settings[i];
		char line[96];

		if (s->key == NULL)
			continue;
		snprintf(line, sizeof(line), " %s = ", s->key);
		assert_int_equal(count(d, line),
				 s->type == CONF_T_UNSUPPORTED ? 0 : 1);
	}
	assert_null(strstr(d, "config_file"));
	free(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_table_is_consistent),
		cmocka_unit_test(test_wire_size),
		cmocka_unit_test(test_wire_unterminated_strings),
		cmocka_unit_test(test_wire_bools),
		cmocka_unit_test(test_wire_numbers_out_of_range),
		cmocka_unit_test(test_range_messages),
		cmocka_unit_test(test_check_rules),
		cmocka_unit_test(test_listen_hints),
		cmocka_unit_test(test_check_tls_rules),
		cmocka_unit_test(test_keep_cli_restores_lua_path_and_the_rest),
		cmocka_unit_test(test_dump_format),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
