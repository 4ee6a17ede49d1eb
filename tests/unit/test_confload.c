/* Unit tests for src/ruleset/confload.c: a -c file's keys come from
 * settings.def, and what --dump-config prints loads back as the same
 * settings. The ruleset VM is replaced by a plain Lua state (vm_* below). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lualib.h>

#include "common/config.h"
#include "ruleset/confload.h"
#include "ruleset/vm.h"

static lua_State *T_L;
static char err[512];

/* ---- the part of the VM confload uses ---- */

lua_State *vm_state(void)
{
	return T_L;
}

int vm_prepare_source(const char *src, size_t len, const char **out,
		      size_t *outlen, char **buf, char *e, size_t errcap)
{
	(void)e;
	(void)errcap;
	*out = src;
	*outlen = len;
	*buf = NULL;
	return 0;
}

int vm_pcall(lua_CFunction fn, void *ud)
{
	lua_pushcfunction(T_L, fn);
	lua_pushlightuserdata(T_L, ud);
	return lua_pcall(T_L, 1, 0, 0);
}

static int setup(void **state)
{
	(void)state;
	T_L = luaL_newstate();
	if (T_L == NULL)
		return -1;
	luaL_requiref(T_L, LUA_GNAME, luaopen_base, 1);
	luaL_requiref(T_L, LUA_STRLIBNAME, luaopen_string, 1);
	lua_pop(T_L, 2);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	lua_close(T_L);
	return 0;
}

/* ---- helpers ---- */

static int load(const char *src, struct config *c)
{
	err[0] = '\0';
	return confload_eval(src, strlen(src), "=conf.lua", c, err,
			     sizeof(err));
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

static char *field(struct config *c, const struct config_setting *s)
{
	return (char *)c + s->off;
}

/* A valid value other than the default in every setting. */
static void set_all_other(struct config *c)
{
	for (size_t i = 0; i < config_nsettings; i++) {
		const struct config_setting *s = &config_settings[i];
		double n = s->lo != s->def ? s->lo : s->hi;
		int iv = (int)n;
		bool b = s->def == 0;

		switch (s->type) {
		case CONF_T_STR:
			/* quotes, a backslash, control bytes, UTF-8 */
			snprintf(field(c, s), s->cap, "\"\\\x01\t\xc3\xa9%s",
				 s->key != NULL ? s->key : "-");
			break;
		case CONF_T_INT:
		case CONF_T_OCT:
			memcpy(field(c, s), &iv, sizeof(iv));
			break;
		case CONF_T_NUM:
			/* not a short decimal: %.17g must keep every bit */
			n = s->lo + (s->hi - s->lo) / 3;
			memcpy(field(c, s), &n, sizeof(n));
			break;
		case CONF_T_BOOL:
			memcpy(field(c, s), &b, sizeof(b));
			break;
		default:
			break;
		}
	}
}

/* What --dump-config prints loads back as the same settings; those only
 * the command line sets are comments and keep the command line's value. */
static void test_dump_load_round_trip(void **state)
{
	struct config a, base, merged;
	char *d, *d2;

	(void)state;
	config_defaults(&a);
	set_all_other(&a);
	assert_int_equal(config_check_ranges(&a, err, sizeof(err)), 0);
	config_defaults(&base);
	merged = base;
	d = dump_text(&a);
	if (load(d, &merged) != 0)
		fail_msg("%s\n%s", err, d);
	for (size_t i = 0; i < config_nsettings; i++) {
		const struct config_setting *s = &config_settings[i];
		const struct config *want = &a;

		if (s->type == CONF_T_UNSUPPORTED)
			continue;
		if (s->key == NULL || (s->flags & CONF_CLI))
			want = &base;
		if (memcmp(field(&merged, s), (const char *)want + s->off,
			   s->cap) != 0)
			fail_msg("%s: not %s", s->key ? s->key : "(no key)",
				 want == &a ? "loaded" : "kept");
	}
	/* with the command line's settings put back, the same dump */
	config_keep_cli(&merged, &a);
	d2 = dump_text(&merged);
	assert_string_equal(d, d2);
	free(d);
	free(d2);
}

/* Regression: --dump-config lost a bare --http, so a dumped config
 * restarted the -l listener as SOCKS. */
static void test_dump_keeps_bare_http(void **state)
{
	struct config a, merged;
	char *d;

	(void)state;
	config_defaults(&a);
	strcpy(a.listen, "127.0.0.1:1080");
	a.http_only = true;
	d = dump_text(&a);
	config_defaults(&merged);
	assert_int_equal(load(d, &merged), 0);
	assert_true(merged.http_only);
	assert_string_equal(merged.listen, "127.0.0.1:1080");
	free(d);
}

/* Refused with this message, leaving c as it was. */
static void expect_refused(const char *src, const char *want)
{
	struct config c, before;

	config_defaults(&c);
	strcpy(c.listen, "127.0.0.1:1080");
	before = c;
	if (load(src, &c) != -1)
		fail_msg("accepted: %s", src);
	if (strcmp(err, want) != 0)
		fail_msg("%s: error \"%s\", want \"%s\"", src, err, want);
	assert_memory_equal(&c, &before, sizeof(c));
}

static void test_refusals(void **state)
{
	(void)state;
	expect_refused("return { listen = 1 }",
		       "config: listen: expected string, got number");
	expect_refused("return { listen = '' }",
		       "config: listen: bad length or NUL byte");
	expect_refused("return { listen = 'a\\0b' }",
		       "config: listen: bad length or NUL byte");
	expect_refused("return { netdev = string.rep('e', 16) }",
		       "config: netdev: bad length or NUL byte");
	expect_refused("return { loglevel = 3.0 }",
		       "config: loglevel: expected integer, got number");
	expect_refused("return { loglevel = '3' }",
		       "config: loglevel: expected integer, got string");
	expect_refused("return { loglevel = 1 << 40 }",
		       "config: loglevel: out of range");
	expect_refused("return { loglevel = 9 }",
		       "--loglevel: loglevel 9 is out of range (0 - 8)");
	expect_refused("return { timeout = 1 }",
		       "-t: timeout 1 is out of range (5 - 86400)");
	expect_refused("return { startup_limit_rate = -1 }",
		       "startup_limit_rate -1 is out of range (0 - 100)");
	expect_refused("return { timeout = 'soon' }",
		       "config: timeout: expected number, got string");
	expect_refused("return { timeout = 1/0 }",
		       "config: timeout: expected number, got number");
	expect_refused("return { pipe = 1 }",
		       "config: pipe: expected boolean, got number");
	expect_refused("return { http_only = 'yes' }",
		       "config: http_only: expected boolean, got string");
	expect_refused("return { jail = '/x' }",
		       "config: jail cannot be set in a config file (use the "
		       "command line)");
	expect_refused("return { lua_path = '/' }",
		       "config: lua_path cannot be set in a config file (use "
		       "the command line)");
	expect_refused("return { enable_execute = false }",
		       "config: enable_execute cannot be set in a config file "
		       "(use the command line)");
	expect_refused("return { transparent = 1 }",
		       "config: transparent: expected boolean, got number");
	expect_refused("return { colour = 'blue' }",
		       "config: unknown key 'colour'");
	expect_refused("return { config_file = '/x' }",
		       "config: unknown key 'config_file'");
	expect_refused("return { [1] = 2 }", "config: keys must be strings");
	expect_refused("return 42", "config: expected table, got number");
	expect_refused("return { ruleset = 'file.lua' }",
		       "config: ruleset must be a table (use -r for a file)");
	expect_refused("return {", "conf.lua:1: unexpected symbol near <eof>");
	/* all or nothing: a good key beside a bad one is not applied */
	expect_refused("return { listen = '127.0.0.1:9', pipe = 'no' }",
		       "config: pipe: expected boolean, got string");
}

static void test_accepted(void **state)
{
	struct config c;

	(void)state;
	config_defaults(&c);
	assert_int_equal(load("local mode = ...\n"
			      "assert(mode == 'config')\n"
			      "return { listen = '127.0.0.1:9', timeout = 12.5,"
			      " api_mode = tonumber('0640', 8), mark = 0,"
			      " transparent = false, forward = nil,"
			      " ruleset = { route = function() end } }",
			      &c),
			 0);
	assert_string_equal(c.listen, "127.0.0.1:9");
	assert_false(c.transparent);
	assert_true(c.timeout == 12.5);
	assert_int_equal(c.api_mode, 0640);
	assert_int_equal(lua_getglobal(T_L, "ruleset"), LUA_TTABLE);
	lua_pop(T_L, 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_dump_load_round_trip,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_dump_keeps_bare_http,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_refusals, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_accepted, setup,
						teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
