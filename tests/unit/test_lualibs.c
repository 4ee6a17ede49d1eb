/* Unit tests for the ruleset's Lua libraries (src/ruleset/lib_*.c).
 *
 * Runs every test_* function of tests/lua/test_{regex,time,zlib,marshal}.lua
 * as one cmocka test named <suite>.<function>, each in a fresh lua_State
 * set up the way the daemon sets up its VM (libraries as globals), with
 * package.path = "tests/lua/?.lua" so that require("testlib") works. Run
 * from the repository root. Then C tests of the zlib helpers and of the
 * libraries under a capped allocator. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <zlib.h>

#include "ruleset/lib_marshal.h"
#include "ruleset/lib_zlib.h"
#include "ruleset/zbody.h"
#include "ruleset/lib_time.h"
#include "ruleset/lib_regex.h"


#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define LUA_DIR "tests/lua/"

static const char *const lualibs_suites[] = { "regex", "time", "zlib",
					      "marshal" };

struct lualibs_case {
	const char *suite;
	char *func; /* NULL: the suite itself failed to load ... */
	char *title;
	char *err;  /* ... with this error */
};

/* A lua_Alloc with a hard cap, like the daemon's. */
struct lualibs_cap {
	size_t used, limit, peak;
};

static char lualibs_msg[16384];

static void *lualibs_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
	struct lualibs_cap *c = ud;
	size_t old = ptr != NULL ? osize : 0;
	void *p;

	if (nsize == 0) {
		free(ptr);
		c->used -= old;
		return NULL;
	}
	if (nsize > old && c->used - old + nsize > c->limit)
		return NULL;
	p = realloc(ptr, nsize);
	if (p == NULL)
		return NULL;
	c->used = c->used - old + nsize;
	if (c->used > c->peak)
		c->peak = c->used;
	return p;
}

static void lualibs_open(lua_State *L, const char *name, lua_CFunction f)
{
	luaL_requiref(L, name, f, 1);
	lua_pop(L, 1);
}

/* A state with the standard libraries and ours, as the daemon has them. */
static lua_State *lualibs_newstate(struct lualibs_cap *cap)
{
	lua_State *L = cap != NULL ? lua_newstate(lualibs_alloc, cap) :
				     luaL_newstate();

	assert_non_null(L);
	luaL_openlibs(L);
	lualibs_open(L, "regex", luaopen_regex);
	lualibs_open(L, "time", luaopen_time);
	lualibs_open(L, "zlib", luaopen_zlib);
	lua_pushcfunction(L, lib_marshal);
	lua_setglobal(L, "marshal");
	lua_getglobal(L, "package");
	lua_pushliteral(L, LUA_DIR "?.lua");
	lua_setfield(L, -2, "path");
	lua_pop(L, 1);
	return L;
}

static int lualibs_traceback(lua_State *L)
{
	const char *msg = luaL_tolstring(L, 1, NULL);

	luaL_traceback(L, L, msg, 1);
	return 1;
}

/* Call the function on top with a traceback handler; 0 or -1 with the
 * message copied to lualibs_msg. */
static int lualibs_pcall(lua_State *L, int nargs, int nres)
{
	int base = lua_gettop(L) - nargs;

	lua_pushcfunction(L, lualibs_traceback);
	lua_insert(L, base);
	if (lua_pcall(L, nargs, nres, base) != LUA_OK) {
		snprintf(lualibs_msg, sizeof(lualibs_msg), "%s",
			 lua_tostring(L, -1));
		lua_pop(L, 2);
		return -1;
	}
	lua_remove(L, base);
	return 0;
}

/* Push the table a test file returns. */
static int lualibs_load_suite(lua_State *L, const char *suite)
{
	char path[256];

	snprintf(path, sizeof(path), LUA_DIR "test_%s.lua", suite);
	if (luaL_loadfile(L, path) != LUA_OK) {
		snprintf(lualibs_msg, sizeof(lualibs_msg), "%s",
			 lua_tostring(L, -1));
		lua_pop(L, 1);
		return -1;
	}
	if (lualibs_pcall(L, 0, 1) != 0)
		return -1;
	if (!lua_istable(L, -1)) {
		snprintf(lualibs_msg, sizeof(lualibs_msg),
			 "%s did not return a table", path);
		lua_pop(L, 1);
		return -1;
	}
	return 0;
}

static void lualibs_run_case(void **state)
{
	const struct lualibs_case *tc = *state;
	lua_State *L;
	int ret = -1;

	if (tc->func == NULL)
		fail_msg("%s: %s", tc->title, tc->err);
	L = lualibs_newstate(NULL);
	if (lualibs_load_suite(L, tc->suite) == 0) {
		lua_getfield(L, -1, tc->func);
		ret = lualibs_pcall(L, 0, 0);
	}
	lua_close(L);
	if (ret != 0)
		fail_msg("%s: %s", tc->title, lualibs_msg);
}

static char *lualibs_strdup(const char *s)
{
	char *p = strdup(s);

	assert_non_null(p);
	return p;
}

static void lualibs_add_case(struct lualibs_case *tc, const char *suite,
			     const char *func)
{
	char title[256];

	snprintf(title, sizeof(title), "%s.%s", suite,
		 func != NULL ? func : "load");
	tc->suite = suite;
	tc->func = func != NULL ? lualibs_strdup(func) : NULL;
	tc->title = lualibs_strdup(title);
	tc->err = func != NULL ? NULL : lualibs_strdup(lualibs_msg);
}

/* The cases of one suite, listed by testlib.names(); *n is set. */
static struct lualibs_case *lualibs_list(const char *suite, size_t *n)
{
	lua_State *L = lualibs_newstate(NULL);
	struct lualibs_case *cases;
	size_t i;

	*n = 0;
	if (lualibs_load_suite(L, suite) != 0) {
		cases = calloc(1, sizeof(*cases));
		assert_non_null(cases);
		lualibs_add_case(&cases[0], suite, NULL);
		*n = 1;
		lua_close(L);
		return cases;
	}
	lua_getglobal(L, "require");
	lua_pushliteral(L, "testlib");
	lua_call(L, 1, 1);
	lua_getfield(L, -1, "names");
	lua_pushvalue(L, -3);
	lua_call(L, 1, 1);
	*n = (size_t)luaL_len(L, -1);
	cases = calloc(*n + 1, sizeof(*cases));
	assert_non_null(cases);
	for (i = 0; i < *n; i++) {
		lua_geti(L, -1, (lua_Integer)i + 1);
		lualibs_add_case(&cases[i], suite, lua_tostring(L, -1));
		lua_pop(L, 1);
	}
	lua_close(L);
	return cases;
}

static int lualibs_run_suite(const char *suite)
{
	struct CMUnitTest *tests;
	struct lualibs_case *cases;
	size_t i, n;
	char group[64];
	int failed;

	cases = lualibs_list(suite, &n);
	tests = calloc(n, sizeof(*tests));
	assert_non_null(tests);
	for (i = 0; i < n; i++) {
		tests[i].name = cases[i].title;
		tests[i].test_func = lualibs_run_case;
		tests[i].initial_state = &cases[i];
	}
	snprintf(group, sizeof(group), "lua_%s", suite);
	failed = _cmocka_run_group_tests(group, tests, n, NULL, NULL);
	for (i = 0; i < n; i++) {
		free(cases[i].func);
		free(cases[i].title);
		free(cases[i].err);
	}
	free(cases);
	free(tests);
	return failed;
}

/* --- allocation tracking (AddressSanitizer builds only) --- */

#if defined(__SANITIZE_ADDRESS__)
#define LUALIBS_TRACK 1
int __sanitizer_install_malloc_and_free_hooks(
	void (*malloc_hook)(const volatile void *, size_t),
	void (*free_hook)(const volatile void *));
size_t __sanitizer_get_allocated_size(const volatile void *p);

static int lualibs_tracking;
static long long lualibs_live, lualibs_peak;
static size_t lualibs_biggest;

static void lualibs_malloc_hook(const volatile void *p, size_t n)
{
	(void)p;
	if (!lualibs_tracking)
		return;
	lualibs_live += (long long)n;
	if (lualibs_live > lualibs_peak)
		lualibs_peak = lualibs_live;
	if (n > lualibs_biggest)
		lualibs_biggest = n;
}

static void lualibs_free_hook(const volatile void *p)
{
	if (lualibs_tracking && p != NULL)
		lualibs_live -= (long long)__sanitizer_get_allocated_size(p);
}

static void lualibs_track(int on)
{
	static int installed;

	if (!installed) {
		__sanitizer_install_malloc_and_free_hooks(lualibs_malloc_hook,
							  lualibs_free_hook);
		installed = 1;
	}
	if (on) {
		lualibs_live = lualibs_peak = 0;
		lualibs_biggest = 0;
	}
	lualibs_tracking = on;
}
#else
#define LUALIBS_TRACK 0
#endif

/* --- zlib C helpers --- */

#define MIB (1024 * 1024)

/* gzip member of data via zlib itself (windowBits 31). */
static size_t lualibs_gzip(const void *data, size_t len, unsigned char *out,
			   size_t cap)
{
	z_stream zs;

	memset(&zs, 0, sizeof(zs));
	assert_int_equal(deflateInit2(&zs, 6, Z_DEFLATED, 31, 8,
				      Z_DEFAULT_STRATEGY), Z_OK);
	zs.next_in = (Bytef *)(uintptr_t)data;
	zs.avail_in = (uInt)len;
	zs.next_out = out;
	zs.avail_out = (uInt)cap;
	assert_int_equal(deflate(&zs, Z_FINISH), Z_STREAM_END);
	deflateEnd(&zs);
	return cap - zs.avail_out;
}

static void test_zlib_deflate_inflate(void **state)
{
	static const size_t sizes[] = { 0, 1, 100, 16383, 16384, 16385,
					100000, 3 * MIB };
	size_t i, j, zlen, olen;
	char *data, *z, *o;

	(void)state;
	data = malloc(3 * MIB);
	assert_non_null(data);
	for (j = 0; j < 3 * MIB; j++)
		data[j] = (char)((j * 2654435761u) >> 13);
	for (i = 0; i < ARRAY_LEN(sizes); i++) {
		assert_int_equal(zbody_deflate(data, sizes[i], &z, &zlen),
				 ZBODY_OK);
		assert_int_equal((unsigned char)z[0], 0x78);
		assert_int_equal(zbody_inflate(z, zlen, 0, sizes[i],
						      &o, &olen), ZBODY_OK);
		assert_int_equal(olen, sizes[i]);
		assert_memory_equal(o, data, olen);
		assert_int_equal(o[olen], '\0');
		free(o);
		if (sizes[i] > 0) {
			/* one byte short of the limit */
			assert_int_equal(zbody_inflate(z, zlen, 0,
							      sizes[i] - 1, &o,
							      &olen),
					 ZBODY_ELIMIT);
			assert_null(o);
			assert_int_equal(olen, 0);
		}
		free(z);
	}
	free(data);
}

static void test_zlib_bomb(void **state)
{
	const size_t n = 10 * MIB, limit = 1 * MIB;
	char *zeros, *z, *o;
	size_t zlen, olen;
	int ret;

	(void)state;
	zeros = calloc(1, n);
	assert_non_null(zeros);
	assert_int_equal(zbody_deflate(zeros, n, &z, &zlen), ZBODY_OK);
	free(zeros);
	assert_true(zlen < 16 * 1024);
#if LUALIBS_TRACK
	lualibs_track(1);
#endif
	ret = zbody_inflate(z, zlen, 0, limit, &o, &olen);
#if LUALIBS_TRACK
	lualibs_track(0);
	print_message("bomb: biggest block %zu, peak %lld bytes\n",
		      lualibs_biggest, lualibs_peak);
	/* the output block never exceeds limit + 2; a realloc that copies
	 * holds the old block too, hence the 1.5 */
	assert_true(lualibs_biggest <= limit + 2);
	assert_true(lualibs_peak <= (long long)(limit + limit / 2) + 65536);
#endif
	assert_int_equal(ret, ZBODY_ELIMIT);
	assert_null(o);
	assert_int_equal(olen, 0);
	/* a limit just big enough works */
	assert_int_equal(zbody_inflate(z, zlen, 0, n, &o, &olen),
			 ZBODY_OK);
	assert_int_equal(olen, n);
	free(o);
	free(z);
}

static void test_zlib_malformed(void **state)
{
	static const char garbage[] = "this is not a zlib stream";
	unsigned char gz[256];
	char *z, *o, *longer;
	size_t zlen, glen, olen, i;

	(void)state;
	assert_int_equal(zbody_inflate(garbage, sizeof(garbage), 0,
					      MIB, &o, &olen),
			 ZBODY_EMALFORMED);
	assert_null(o);
	assert_int_equal(zbody_inflate("", 0, 0, MIB, &o, &olen),
			 ZBODY_EMALFORMED);
	assert_int_equal(zbody_inflate("", 0, 1, MIB, &o, &olen),
			 ZBODY_EMALFORMED);
	assert_int_equal(zbody_deflate("hello, world", 12, &z, &zlen), ZBODY_OK);
	for (i = 0; i < zlen; i++) /* every truncation */
		assert_int_equal(zbody_inflate(z, i, 0, MIB, &o, &olen),
				 ZBODY_EMALFORMED);
	/* the wrong format both ways */
	assert_int_equal(zbody_inflate(z, zlen, 1, MIB, &o, &olen),
			 ZBODY_EMALFORMED);
	glen = lualibs_gzip("hello", 5, gz, sizeof(gz));
	assert_int_equal(zbody_inflate(gz, glen, 0, MIB, &o, &olen),
			 ZBODY_EMALFORMED);
	/* trailing bytes after the zlib stream */
	longer = calloc(1, zlen + 1);
	assert_non_null(longer);
	memcpy(longer, z, zlen);
	assert_int_equal(zbody_inflate(longer, zlen + 1, 0, MIB, &o,
					      &olen),
			 ZBODY_EMALFORMED);
	free(longer);
	/* a corrupted Adler-32 */
	z[zlen - 1] ^= 1;
	assert_int_equal(zbody_inflate(z, zlen, 0, MIB, &o, &olen),
			 ZBODY_EMALFORMED);
	free(z);
}

static void test_zlib_gzip_members(void **state)
{
	unsigned char gz[1024];
	size_t len = 0, olen;
	char *o;

	(void)state;
	len += lualibs_gzip("first,", 6, gz + len, sizeof(gz) - len);
	len += lualibs_gzip("", 0, gz + len, sizeof(gz) - len);
	len += lualibs_gzip("second", 6, gz + len, sizeof(gz) - len);
	assert_int_equal(zbody_inflate(gz, len, 1, MIB, &o, &olen),
			 ZBODY_OK);
	assert_int_equal(olen, 12);
	assert_string_equal(o, "first,second");
	free(o);
	/* the limit counts all members together */
	assert_int_equal(zbody_inflate(gz, len, 1, 11, &o, &olen),
			 ZBODY_ELIMIT);
	assert_int_equal(zbody_inflate(gz, len, 1, 12, &o, &olen),
			 ZBODY_OK);
	free(o);
	/* a bad CRC in the last member */
	gz[len - 8] ^= 0x10;
	assert_int_equal(zbody_inflate(gz, len, 1, MIB, &o, &olen),
			 ZBODY_EMALFORMED);
	gz[len - 8] ^= 0x10;
	/* a truncated last member */
	assert_int_equal(zbody_inflate(gz, len - 1, 1, MIB, &o, &olen),
			 ZBODY_EMALFORMED);
	/* bytes after the last member that are no member */
	gz[len] = 0x1f;
	gz[len + 1] = 0;
	assert_int_equal(zbody_inflate(gz, len + 2, 1, MIB, &o, &olen),
			 ZBODY_EMALFORMED);
}

/* --- the libraries under a capped allocator --- */

/* Run code (one chunk) in L; returns the message of its error or "". */
static const char *lualibs_try(lua_State *L, const char *code)
{
	if (luaL_loadstring(L, code) != LUA_OK)
		return lua_tostring(L, -1);
	if (lualibs_pcall(L, 0, 0) != 0)
		return lualibs_msg;
	return "";
}

/* Call the chunk on top; fail with its error. */
static void lualibs_call_ok(lua_State *L)
{
	if (lualibs_pcall(L, 0, 0) != 0)
		fail_msg("%s", lualibs_msg);
}

static size_t lualibs_settle(lua_State *L, const struct lualibs_cap *cap)
{
	lua_gc(L, LUA_GCCOLLECT);
	lua_gc(L, LUA_GCCOLLECT);
	return cap->used;
}

static void test_capped_zlib_bomb(void **state)
{
	static const char bomb_fails[] =
		"local ok, err = pcall(zlib.uncompress, bomb)\n"
		"assert(not ok)\n"
		"assert(err == 'not enough memory', err)\n";
	static const char still_works[] =
		"assert(zlib.uncompress(zlib.compress('ok')) == 'ok')\n"
		"assert(marshal({1}) == '{1,}')\n";
	struct lualibs_cap cap = { 0, 8 * MIB, 0 };
	const size_t n = 64 * MIB;
	lua_State *L;
	char *zeros, *z;
	size_t zlen, base;

	(void)state;
	zeros = calloc(1, n);
	assert_non_null(zeros);
	assert_int_equal(zbody_deflate(zeros, n, &z, &zlen), ZBODY_OK);
	free(zeros);
	L = lualibs_newstate(&cap);
	lua_pushlstring(L, z, zlen);
	lua_setglobal(L, "bomb");
	free(z);
	base = lualibs_settle(L, &cap);
	assert_string_equal(lualibs_try(L, bomb_fails), "");
	assert_true(cap.peak <= cap.limit);
	/* the stream's zlib state went back to the allocator */
	assert_true(lualibs_settle(L, &cap) <= base + 1024);
	assert_string_equal(lualibs_try(L, still_works), "");
	lua_close(L);
}

static void test_capped_zlib_state(void **state)
{
	static const char deflate_fails[] =
		"local ok, err = pcall(zlib.compress, 'x')\n"
		"assert(not ok)\n"
		"assert(err == 'compress error: out of memory', err)\n"
		"ok, err = pcall(zlib.gzip, 'x')\n"
		"assert(err == 'gzip error: out of memory', err)\n";
	static const char inflate_works[] =
		"local z = '\\120\\156\\171\\0\\0\\0\\121\\0\\121'\n"
		"assert(zlib.uncompress(z) == 'x')\n";
	struct lualibs_cap cap = { 0, SIZE_MAX, 0 };
	lua_State *L;

	(void)state;
	L = lualibs_newstate(&cap);
	assert_int_equal(luaL_loadstring(L, deflate_fails), LUA_OK);
	assert_int_equal(luaL_loadstring(L, inflate_works), LUA_OK);
	/* deflate's state (about 256 KiB) does not fit under the cap,
	 * inflate's (about 40 KiB) does */
	cap.limit = lualibs_settle(L, &cap) + 64 * 1024;
	cap.peak = 0;
	lualibs_call_ok(L); /* inflate_works, on top */
	lualibs_call_ok(L);
	assert_true(cap.peak <= cap.limit);
	lua_close(L);
}

static void test_capped_marshal(void **state)
{
	/* 1 MiB of NULs marshals to 4 MiB of "\000" */
	static const char too_big[] =
		"local s = string.rep('\\0', 1024 * 1024)\n"
		"local ok, err = pcall(marshal, s)\n"
		"assert(not ok)\n"
		"assert(err == 'not enough memory', err)\n"
		"assert(marshal(1, 'a') == '1,\"a\"')\n";
	struct lualibs_cap cap = { 0, SIZE_MAX, 0 };
	lua_State *L;

	(void)state;
	L = lualibs_newstate(&cap);
	cap.limit = lualibs_settle(L, &cap) + 4 * MIB;
	assert_string_equal(lualibs_try(L, too_big), "");
	lua_close(L);
}

static void test_marshal_values(void **state)
{
	lua_State *L = lualibs_newstate(NULL);
	int top;

	(void)state;
	lua_pushinteger(L, 1);
	lua_pushliteral(L, "two");
	lua_pushnumber(L, 3.5);
	top = lua_gettop(L);
	assert_int_equal(lib_marshal_values(L, 1, 3), 0);
	assert_int_equal(lua_gettop(L), top + 1);
	assert_string_equal(lua_tostring(L, -1), "1,\"two\",0x1.cp+1");
	lua_pop(L, 1);
	assert_int_equal(lib_marshal_values(L, -2, -1), 0);
	assert_string_equal(lua_tostring(L, -1), "\"two\",0x1.cp+1");
	lua_pop(L, 1);
	assert_int_equal(lib_marshal_values(L, 2, 1), 0);
	assert_string_equal(lua_tostring(L, -1), "");
	lua_pop(L, 1);
	/* errors come back as -1 and a message, without a position */
	lua_newtable(L);
	lua_pushvalue(L, -1);
	lua_setfield(L, -2, "self");
	assert_int_equal(lib_marshal_values(L, 1, -1), -1);
	assert_string_equal(lua_tostring(L, -1),
			    "circular referenced table is not marshallable");
	lua_pop(L, 1);
	assert_int_equal(lua_gettop(L), top + 1);
	lua_close(L);
}

int main(void)
{
	static const struct CMUnitTest c_tests[] = {
		cmocka_unit_test(test_zlib_deflate_inflate),
		cmocka_unit_test(test_zlib_bomb),
		cmocka_unit_test(test_zlib_malformed),
		cmocka_unit_test(test_zlib_gzip_members),
		cmocka_unit_test(test_capped_zlib_bomb),
		cmocka_unit_test(test_capped_zlib_state),
		cmocka_unit_test(test_capped_marshal),
		cmocka_unit_test(test_marshal_values),
	};
	size_t i;
	int failed = 0;

	for (i = 0; i < ARRAY_LEN(lualibs_suites); i++)
		failed += lualibs_run_suite(lualibs_suites[i]);
	failed += cmocka_run_group_tests_name("lualibs_c", c_tests, NULL, NULL);
	return failed != 0;
}
