/* Unit tests for the data-only RPC answer parser (src/ruleset/unmarshal.c)
 * and its Lua builder (unmarshal_lua.c).
 *
 * - Every accepted answer here is also loaded by Lua itself: the values
 *   must be the same, type for type (integer or float), which is the
 *   parser's claim of being a subset of Lua.
 * - Answers that are code (calls, operators, names, comments, long
 *   strings) are refused, and nothing of them runs.
 * - Truncated, oversized and deeply nested input; every answer fed a byte
 *   at a time gives the same events as fed whole.
 * - marshal(x) then parse gives back x for generated values (and the same
 *   as Lua's loader). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "ruleset/lib_marshal.h"
#include "ruleset/unmarshal.h"
#include "ruleset/unmarshal_lua.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define STR_MAX (4u << 20)

/* ---- events as text ---- */

struct trace {
	char *p;
	size_t len, cap;
};

static void trace_add(struct trace *t, const char *s, size_t n)
{
	if (t->len + n + 1 > t->cap) {
		t->cap = (t->len + n + 1) * 2;
		t->p = realloc(t->p, t->cap);
		assert_non_null(t->p);
	}
	memcpy(t->p + t->len, s, n);
	t->len += n;
	t->p[t->len] = '\0';
}

static int trace_event(void *ud, const struct unmarshal_ev *ev)
{
	struct trace *t = ud;
	char b[96];
	int n = 0;

	switch (ev->kind) {
	case UNMARSHAL_NIL:
		n = snprintf(b, sizeof(b), "nil ");
		break;
	case UNMARSHAL_BOOLEAN:
		n = snprintf(b, sizeof(b), "%s ", ev->b ? "true" : "false");
		break;
	case UNMARSHAL_INTEGER:
		n = snprintf(b, sizeof(b), "i%lld ", (long long)ev->i);
		break;
	case UNMARSHAL_FLOAT:
		n = snprintf(b, sizeof(b), "f%a ", ev->f);
		break;
	case UNMARSHAL_STRING:
		trace_add(t, "s'", 2);
		trace_add(t, ev->s, ev->len);
		n = snprintf(b, sizeof(b), "' ");
		break;
	case UNMARSHAL_TABLE:
		n = snprintf(b, sizeof(b), "{ ");
		break;
	case UNMARSHAL_SET:
		n = snprintf(b, sizeof(b), "= ");
		break;
	case UNMARSHAL_FLUSH_N:
		n = snprintf(b, sizeof(b), "flush%u@%lld ", ev->n,
			     (long long)ev->first);
		break;
	case UNMARSHAL_CLOSE:
		n = snprintf(b, sizeof(b), "} ");
		break;
	default:
		fail_msg("unknown event %d", ev->kind);
	}
	trace_add(t, b, (size_t)n);
	return 0;
}

/* Parse whole; the trace, or NULL with err filled. */
static char *parse_trace(const char *s, size_t len, char *err, size_t cap,
			 int *nvals)
{
	struct trace t = { 0 };
	int n;

	trace_add(&t, "", 0);
	n = unmarshal_run(s, len, STR_MAX, trace_event, &t, err, cap);
	if (nvals != NULL)
		*nvals = n;
	if (n < 0) {
		free(t.p);
		return NULL;
	}
	return t.p;
}

/* The same, a byte at a time (and in pieces of 7). */
static char *parse_trace_pieces(const char *s, size_t len, size_t piece,
				char *err, size_t cap)
{
	struct trace t = { 0 };
	struct unmarshal *u = malloc(sizeof(*u));
	int n = 0;

	assert_non_null(u);
	trace_add(&t, "", 0);
	unmarshal_init(u, STR_MAX, trace_event, &t);
	for (size_t k = 0; k < len && n == 0; k += piece)
		n = unmarshal_feed(u, s + k, len - k < piece ? len - k : piece);
	if (n == 0)
		n = unmarshal_end(u);
	if (n < 0) {
		snprintf(err, cap, "%s", u->err);
		free(t.p);
		t.p = NULL;
	}
	unmarshal_free(u);
	free(u);
	return t.p;
}

static void expect_trace(const char *in, const char *want)
{
	char err[160] = "";
	char *got = parse_trace(in, strlen(in), err, sizeof(err), NULL);

	if (got == NULL)
		fail_msg("%s: refused: %s", in, err);
	if (strcmp(got, want) != 0)
		fail_msg("%s:\n got  %s\n want %s", in, got, want);
	free(got);
}

static void expect_error(const char *in, size_t len, const char *why)
{
	char err[160] = "";
	char *got = parse_trace(in, len, err, sizeof(err), NULL);

	if (got != NULL)
		fail_msg("%.*s: accepted as %s", (int)len, in, got);
	if (why != NULL && strstr(err, why) == NULL)
		fail_msg("%.*s: error '%s' does not say '%s'", (int)len, in,
			 err, why);
}

/* ---- Lua ---- */

static lua_State *new_state(void)
{
	lua_State *L = luaL_newstate();

	assert_non_null(L);
	luaL_openlibs(L);
	lua_pushcfunction(L, lib_marshal);
	lua_setglobal(L, "marshal");
	/* same(a, b): equal values of the same types, tables compared
	 * deeply, NaN equal to NaN */
	assert_int_equal(luaL_dostring(L,
		"function same(a, b)\n"
		"  if type(a) ~= type(b) then return false end\n"
		"  if type(a) == 'number' then\n"
		"    if math.type(a) ~= math.type(b) then return false end\n"
		"    if a ~= a then return b ~= b end\n"
		"    return a == b and 1/a == 1/b\n"
		"  end\n"
		"  if type(a) ~= 'table' then return a == b end\n"
		"  for k, v in pairs(a) do\n"
		"    if not same(v, b[k]) then return false end\n"
		"  end\n"
		"  for k in pairs(b) do\n"
		"    if a[k] == nil then return false end\n"
		"  end\n"
		"  return true\n"
		"end\n"), LUA_OK);
	return L;
}

/* Parse with ours into a table {n = N, ...}; true, or false with the
 * message pushed instead. */
static bool ours_packed(lua_State *L, const char *s, size_t len)
{
	int top = lua_gettop(L);
	int n = unmarshal_lua(L, s, len, STR_MAX);

	if (n < 0)
		return false;
	lua_createtable(L, n, 1);
	lua_insert(L, top + 1);
	for (int k = n; k >= 1; k--)
		lua_rawseti(L, top + 1, k);
	lua_pushinteger(L, n);
	lua_setfield(L, -2, "n");
	return true;
}

/* Lua's own reading of the same text, packed the same way. */
static void lua_pack_results(lua_State *L, const char *s, size_t len)
{
	int top = lua_gettop(L);

	lua_getglobal(L, "table");
	lua_getfield(L, -1, "pack");
	lua_remove(L, -2);
	if (luaL_loadbufferx(L, s, len, "=(answer)", "t") != LUA_OK)
		fail_msg("Lua refuses %.*s: %s", (int)len, s,
			 lua_tostring(L, -1));
	if (lua_pcall(L, 0, LUA_MULTRET, 0) != LUA_OK)
		fail_msg("Lua fails on %.*s: %s", (int)len, s,
			 lua_tostring(L, -1));
	lua_call(L, lua_gettop(L) - top - 1, 1);
}

static bool same_top2(lua_State *L)
{
	bool eq;

	lua_getglobal(L, "same");
	lua_insert(L, -3);
	lua_call(L, 2, 1);
	eq = lua_toboolean(L, -1);
	lua_pop(L, 1);
	return eq;
}

/* Ours and Lua's agree on s. */
static void expect_as_lua(lua_State *L, const char *s, size_t len)
{
	int top = lua_gettop(L);

	if (!ours_packed(L, s, len))
		fail_msg("refused %.*s: %s", (int)len, s, lua_tostring(L, -1));
	lua_pack_results(L, s, len);
	if (!same_top2(L))
		fail_msg("differs from Lua: %.*s", (int)len, s);
	lua_settop(L, top);
}

static void expect_as_lua_s(lua_State *L, const char *s)
{
	expect_as_lua(L, s, strlen(s));
}

/* ---- tests ---- */

static void test_scalars_events(void **state)
{
	(void)state;
	expect_trace("return", "");
	expect_trace("return;", "");
	expect_trace("return true", "true ");
	expect_trace("return true,nil,false", "true nil false ");
	expect_trace(" return  true ; ", "true ");
	expect_trace("return 0,-1,999999999999,0xe8d4a51000,-0xe8d4a51000",
		     "i0 i-1 i999999999999 i1000000000000 i-1000000000000 ");
	/* the bit pattern of mininteger wraps, as in Lua */
	expect_trace("return 0x8000000000000000,-0x8000000000000000",
		     "i-9223372036854775808 i-9223372036854775808 ");
	/* a decimal integer that overflows is a float */
	expect_trace("return 9223372036854775807,9223372036854775808",
		     "i9223372036854775807 f0x1p+63 ");
	expect_trace("return 0x1.cp+1,-0x1p-1074,3.5,1e15,.5,5.",
		     "f0x1.cp+1 f-0x0.0000000000001p-1022 f0x1.cp+1 "
		     "f0x1.c6bf52634p+49 f0x1p-1 f0x1.4p+2 ");
	expect_trace("return 1/0,-1/0,1e9999,-1e9999",
		     "finf f-inf finf f-inf ");
	expect_trace("return -0.0,0.0", "f-0x0p+0 f0x0p+0 ");
	expect_trace("return 4/2,(-3)/(2),- -1,-(1/0)",
		     "f0x1p+1 f-0x1.8p+0 i1 f-inf ");
}

static void test_nan_spellings(void **state)
{
	char err[160];
	char *t;

	(void)state;
	t = parse_trace("return 0/0,(0/0),-(0/0)", 23, err, sizeof(err),
			NULL);
	assert_non_null(t);
	assert_int_equal(strncmp(t, "f", 1), 0);
	assert_non_null(strstr(t, "nan"));
	free(t);
}

static void test_strings_events(void **state)
{
	(void)state;
	expect_trace("return \"a\\\nb\"", "s'a\nb' ");
	expect_trace("return 'it\\'s', \"\\\"q\\\"\"", "s'it's' s'\"q\"' ");
	expect_trace("return '\\65\\066\\x43\\u{44}\\z \n E'", "s'ABCDE' ");
}

static void test_tables_events(void **state)
{
	(void)state;
	expect_trace("return {}", "{ } ");
	expect_trace("return {1,2,[\"x\"]=\"y\",}",
		     "{ i1 i2 s'x' s'y' = flush2@1 } ");
	expect_trace("return {a=1;b={}}", "{ s'a' i1 = s'b' { } = } ");
	expect_trace("return {{{}}}", "{ { { } flush1@1 } flush1@1 } ");
}

/* Lua stores positional values in batches of 50 at the start of the next
 * field; the events do the same so repeated keys resolve the same way. */
static void test_flush_batches(void **state)
{
	char in[512], want[1024];
	size_t n = 0, w = 0;

	(void)state;
	n += (size_t)snprintf(in + n, sizeof(in) - n, "return {");
	w += (size_t)snprintf(want + w, sizeof(want) - w, "{ ");
	for (int k = 1; k <= 51; k++) {
		n += (size_t)snprintf(in + n, sizeof(in) - n, "%d,", k);
		if (k == 51)
			w += (size_t)snprintf(want + w, sizeof(want) - w,
					      "flush50@1 ");
		w += (size_t)snprintf(want + w, sizeof(want) - w, "i%d ", k);
	}
	n += (size_t)snprintf(in + n, sizeof(in) - n, "[1]=0}");
	w += (size_t)snprintf(want + w, sizeof(want) - w,
			      "i1 i0 = flush1@51 } ");
	expect_trace(in, want);
}

static void test_same_as_lua(void **state)
{
	static const char *const ok[] = {
		"return true",
		"return",
		"return true,1,\"a\\\nb\",{2,[\"x\"]=\"y\",},nil,true,0x1.cp+1",
		"return true,{1,2,[\"x\"]=\"y\",},0x1.cp+1,-1,0x1.c6bf52634p+49,"
		"\"a\\\nb\",nil,true",
		"return 0x8000000000000000,-0x8000000000000000,"
		"9223372036854775807,9223372036854775808,-9223372036854775808",
		"return 1/0,-1/0,0/0,(0/0),1e9999,-1e9999,-0.0,0,-0",
		"return 1/-0,1/-0.0,-1/-0.0,(1)/(2),((3)),- - -4",
		"return 0x.8p1,0X1P-2,0xA,0xffffffffffffffffff,1E2,1e+2,1e-2",
		"return '\\a\\b\\f\\n\\r\\t\\v\\\\\\\"\\''",
		"return \"\\x41\\x7a\\065\\0650\\0\\255\\z  \n\t  x\"",
		"return \"\\u{41}\\u{7FF}\\u{FFFF}\\u{10FFFF}\\u{7FFFFFFF}"
		"\\u{000000041}\"",
		"return \"a\\\r\nb\\\n\rc\\\rd\\\ne\"",
		"return {1,[1]=2},{[1]=2,1},{[2]=2,1,2},{x=1,x=2,[\"x\"]=3}",
		"return {1;2;3;},{[1.0]=1,[9007199254740992.0]=2},{[-0.0]=1},{[true]=1}",
		"return {{},{{}}},{a={b={c={}}}}",
		"return {nil,nil,3},{nil},{[1]=nil}",
		"return {1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,"
		"21,22,23,24,25,26,27,28,29,30,31,32,33,34,35,36,37,38,39,40,"
		"41,42,43,44,45,46,47,48,49,50,[1]=0,51,[52]=0,52,[51]=-1}",
		"return\t\n\v\f\r true\r\n",
		"return 00012,0x0,007.5,3.,.3e1",
	};
	lua_State *L = new_state();

	(void)state;
	for (size_t k = 0; k < ARRAY_LEN(ok); k++)
		expect_as_lua_s(L, ok[k]);
	/* a key set between the 49th and the 50th positional value: Lua
	 * stores the batch of 50 after it */
	{
		char in[512];
		size_t n = (size_t)sprintf(in, "return {");

		for (int k = 1; k <= 49; k++)
			n += (size_t)sprintf(in + n, "%d,", k);
		sprintf(in + n, "[49]=0,[50]=0,50,[1]=0}");
		expect_as_lua_s(L, in);
	}
	/* bytes Lua takes raw inside a string, NUL included */
	expect_as_lua(L, "return \"\0\x01\xff\"",
		      sizeof("return \"\0\x01\xff\"") - 1);
	lua_close(L);
}

/* Answers that are code: refused, and nothing runs. */
static void test_code_refused(void **state)
{
	static const char *const bad[] = {
		"return string.rep('a', 1e9)",
		"return (\"x\"):rep(10)",
		"return ('x'):find(string.rep('a?', 30) .. string.rep('a', 30))",
		"return x",
		"return _G",
		"return true, os.exit()",
		"return (function() while true do end end)()",
		"return {f()}",
		"return {x}",
		"return {x=y}",
		"return 1+1",
		"return 1-1",
		"return 2*3",
		"return 2^3",
		"return 1//0",
		"return 1/0/0",
		"return 1%0",
		"return -\"1\"",
		"return -{}",
		"return -true",
		"return #\"abc\"",
		"return not nil",
		"return 1 == 1",
		"return \"a\" .. \"b\"",
		"return (\"a\")",
		"return (true)",
		"return {}.x",
		"return {}[1]",
		"return [[long]]",
		"return {[[x]]}",
		"return [=[x]=]",
		"return --[[c]] 1",
		"return 1 -- c",
		"--\nreturn 1",
		"return {--\n1}",
		"return {end=1}",
		"return {nil=1}",
		"return {true=1}",
		"return {[nil]=1}",
		"return {[0/0]=1}",
		"return true return",
		"local x = 1 return x",
		"do return 1 end",
		";return 1",
		"return true;;",
		"return true, 1 2",
		"true",
		"",
		"returntrue",
		"return 0x",
		"return 1e",
		"return 1e+",
		"return 1x",
		"return 3..2",
		"return 1.2.3",
		"return 0xg",
		"return .",
		"return .e1",
		"return 'a",
		"return 'a\nb'",
		"return 'a\rb'",
		"return '\\q'",
		"return '\\x4'",
		"return '\\xg0'",
		"return '\\256'",
		"return '\\999'",
		"return '\\u41'",
		"return '\\u{}'",
		"return '\\u{41'",
		"return '\\u{80000000}'",
		"return \"a\"\"b\"",
		"return \x1bLua",
		"\xef\xbb\xbfreturn 1",
		"#!x\nreturn 1",
		"return {1,2",
		"return {[1]}",
		"return {[1]=}",
		"return {[1] 2}",
		"return {,}",
		"return {1,,2}",
		"return ()",
		"return (1",
		"return 1)",
		"return -",
		"return 1/",
	};

	(void)state;
	for (size_t k = 0; k < ARRAY_LEN(bad); k++)
		expect_error(bad[k], strlen(bad[k]), NULL);
	/* a table as a key is data */
	expect_trace("return {[{}]={}}", "{ { } { } = } ");
	expect_error("return 1\0", 9, "byte 0x00");
	expect_error("return x", 8, "unexpected name 'x' at byte 7");
	expect_error("return string.rep('a', 1e9)", 27,
		     "unexpected name 'string'");
	expect_error("return 1 -- c", 13, "comments are not data");
	expect_error("return [[x]]", 12, "long strings are not data");
	expect_error("return {[nil]=1}", 16, "table index is nil");
	expect_error("return {[0/0]=1}", 16, "table index is NaN");
	expect_error("x", 1, "an answer begins with 'return'");
}

/* Every proper prefix of an answer is incomplete (or a shorter answer);
 * never a crash, never a different reading of the whole. */
static void test_truncated(void **state)
{
	static const char *const in[] = {
		"return true,{1,2,[\"x\"]={[\"y\"]=\"a\\\nb\",},},0x1.cp+1,"
		"-1/0,(0/0),\"\\u{41}\\x42\\067\\z \",'q'",
	};
	char err[160];

	(void)state;
	for (size_t k = 0; k < ARRAY_LEN(in); k++) {
		size_t len = strlen(in[k]);
		char *whole = parse_trace(in[k], len, err, sizeof(err), NULL);

		assert_non_null(whole);
		for (size_t cut = 0; cut < len; cut++) {
			char *t = parse_trace(in[k], cut, err, sizeof(err),
					      NULL);

			/* "return true,{1" is no answer; "return true" is
			 * one, with fewer values */
			if (t != NULL)
				assert_true(strlen(t) < strlen(whole));
			else
				assert_true(strstr(err, " at byte ") != NULL);
			free(t);
		}
		free(whole);
	}
}

static void test_byte_at_a_time(void **state)
{
	static const char *const in[] = {
		"return true,{1,2,[\"x\"]={[\"y\"]=\"a\\\nb\",},},0x1.cp+1",
		"return -1/0,(0/0),- -3,\"\\u{41}\\x42\\067\\z \n \",'q\\\r\n'",
		"return {a=1;b={[-0.5]=true}},9223372036854775808,1e-2",
		"return 'x\\0012'",
	};
	char err[160];

	(void)state;
	for (size_t k = 0; k < ARRAY_LEN(in); k++) {
		size_t len = strlen(in[k]);
		char *whole = parse_trace(in[k], len, err, sizeof(err), NULL);

		assert_non_null(whole);
		for (size_t piece = 1; piece <= 7; piece += 6) {
			char *p = parse_trace_pieces(in[k], len, piece, err,
						     sizeof(err));

			if (p == NULL)
				fail_msg("%s in pieces of %zu: %s", in[k],
					 piece, err);
			assert_string_equal(p, whole);
			free(p);
		}
		free(whole);
	}
	/* an error is found at the same byte either way */
	assert_null(parse_trace_pieces("return {1,2 3}", 14, 1, err,
				       sizeof(err)));
	assert_non_null(strstr(err, "at byte 12"));
}

static void test_limits(void **state)
{
	size_t n = 16 + 2 * (UNMARSHAL_DEPTH_MAX + 1);
	char *s = malloc(n + 64 * 1024), err[160];
	size_t len;
	int nv;
	char *t;

	(void)state;
	assert_non_null(s);
	/* nesting: 200 tables deep is fine, 201 is not */
	for (int depth = UNMARSHAL_DEPTH_MAX; depth <= UNMARSHAL_DEPTH_MAX + 1;
	     depth++) {
		len = (size_t)sprintf(s, "return ");
		memset(s + len, '{', (size_t)depth);
		memset(s + len + depth, '}', (size_t)depth);
		len += 2 * (size_t)depth;
		t = parse_trace(s, len, err, sizeof(err), NULL);
		if (depth == UNMARSHAL_DEPTH_MAX) {
			assert_non_null(t);
		} else {
			assert_null(t);
			assert_non_null(strstr(err, "nested deeper"));
		}
		free(t);
	}
	/* parentheses count too */
	len = (size_t)sprintf(s, "return ");
	memset(s + len, '(', UNMARSHAL_DEPTH_MAX + 1);
	len += UNMARSHAL_DEPTH_MAX + 1;
	s[len++] = '1';
	memset(s + len, ')', UNMARSHAL_DEPTH_MAX + 1);
	len += UNMARSHAL_DEPTH_MAX + 1;
	expect_error(s, len, "nested deeper");
	/* values */
	len = (size_t)sprintf(s, "return 1");
	for (int k = 1; k < UNMARSHAL_VALUES_MAX; k++)
		len += (size_t)sprintf(s + len, ",1");
	t = parse_trace(s, len, err, sizeof(err), &nv);
	assert_non_null(t);
	assert_int_equal(nv, UNMARSHAL_VALUES_MAX);
	free(t);
	len += (size_t)sprintf(s + len, ",1");
	expect_error(s, len, "more than 250 values");
	free(s);
	/* a string over the limit */
	assert_int_equal(unmarshal_run("return 'abcd'", 13, 3, trace_event,
				       &(struct trace){ 0 }, err, sizeof(err)),
			 -1);
	assert_non_null(strstr(err, "longer than 3 bytes"));
	/* names and numerals are short */
	{
		static const char name65[] =
			"return {aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
			"aaaaaaaaaaaaaaaaa=1}";

		expect_error(name65, sizeof(name65) - 1, "name longer");
	}
}

/* Keys that Lua hashes badly (integers far from the table's size) are
 * bounded per answer; a dense array written with keys is not. */
static void test_sparse_keys(void **state)
{
	size_t cap = 64 * (UNMARSHAL_SPARSE_MAX + 2) + 64, len;
	char *s = malloc(cap), err[160];
	struct trace t = { 0 };

	(void)state;
	assert_non_null(s);
	len = (size_t)sprintf(s, "return {");
	for (long k = 1; k <= UNMARSHAL_SPARSE_MAX + 1; k++)
		len += (size_t)sprintf(s + len, "[%ld]=0,", k * 131071);
	s[len++] = '}';
	assert_int_equal(unmarshal_run(s, len, STR_MAX, trace_event, &t, err,
				       sizeof(err)), -1);
	assert_non_null(strstr(err, "sparse numeric keys"));
	free(t.p);
	t = (struct trace){ 0 };
	/* the same count of keys 2..n+1 (an array whose [1] is nil) */
	len = (size_t)sprintf(s, "return {");
	for (long k = 2; k <= UNMARSHAL_SPARSE_MAX + 2; k++)
		len += (size_t)sprintf(s + len, "[%ld]=0,", k);
	s[len++] = '}';
	assert_int_equal(unmarshal_run(s, len, STR_MAX, trace_event, &t, err,
				       sizeof(err)), 1);
	free(t.p);
	free(s);
}

/* ---- marshal, then parse ---- */

static uint64_t rng_state = 0x9e3779b97f4a7c15u;

static uint64_t rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

static void gen_value(lua_State *L, int depth, bool key);

static void gen_number(lua_State *L)
{
	static const double special[] = { 0.0, -0.0, 1.0 / 0.0, -1.0 / 0.0,
					  0.5, -1e300, 5e-324, 1e15, 3.5 };
	static const lua_Integer ints[] = { 0, 1, -1, 999999999999,
					    1000000000000, -1000000000000,
					    INT64_MAX, INT64_MIN };
	uint64_t r = rng();

	switch (r % 5) {
	case 0:
		lua_pushnumber(L, special[(r >> 8) % ARRAY_LEN(special)]);
		break;
	case 1:
		lua_pushinteger(L, ints[(r >> 8) % ARRAY_LEN(ints)]);
		break;
	case 2:
		lua_pushinteger(L, (lua_Integer)rng());
		break;
	case 3: {
		uint64_t bits = rng();
		double d;

		memcpy(&d, &bits, sizeof(d));
		lua_pushnumber(L, d); /* any double, NaNs included */
		break;
	}
	default:
		lua_pushinteger(L, (lua_Integer)(r >> 8) % 2000 - 1000);
		break;
	}
}

static void gen_string(lua_State *L)
{
	char b[64];
	size_t n = rng() % sizeof(b);

	for (size_t k = 0; k < n; k++)
		b[k] = (char)(rng() % 256);
	lua_pushlstring(L, b, n);
}

static void gen_table(lua_State *L, int depth)
{
	int n = (int)(rng() % 8), nk = (int)(rng() % 5);

	lua_newtable(L);
	for (int k = 1; k <= n; k++) {
		gen_value(L, depth + 1, false);
		lua_rawseti(L, -2, k);
	}
	for (int k = 0; k < nk; k++) {
		gen_value(L, depth + 1, true);
		if (lua_isnil(L, -1) ||
		    (lua_type(L, -1) == LUA_TNUMBER &&
		     isnan(lua_tonumber(L, -1)))) {
			lua_pop(L, 1);
			continue;
		}
		gen_value(L, depth + 1, false);
		lua_rawset(L, -3);
	}
}

static void gen_value(lua_State *L, int depth, bool key)
{
	switch (rng() % (depth < 4 && !key ? 6 : 5)) {
	case 0:
		lua_pushnil(L);
		break;
	case 1:
		lua_pushboolean(L, (int)(rng() & 1));
		break;
	case 2:
	case 3:
		gen_number(L);
		break;
	case 4:
		gen_string(L);
		break;
	default:
		gen_table(L, depth);
		break;
	}
}

/* marshal's documented lossy spot: the float 0.0 is written "0" and read
 * back as the integer 0 (-0.0 keeps its sign and type). normal(v)
 * rewrites v the same way. */
static void normalise_zeros(lua_State *L)
{
	assert_int_equal(luaL_dostring(L,
		"function normal(v, seen)\n"
		"  if type(v) == 'number' and v == 0 and 1/v > 0 then\n"
		"    return 0\n"
		"  end\n"
		"  if type(v) ~= 'table' then return v end\n"
		"  local t = {}\n"
		"  for k, x in pairs(v) do t[normal(k)] = normal(x) end\n"
		"  return t\n"
		"end\n"), LUA_OK);
}

static void test_marshal_then_parse(void **state)
{
	lua_State *L = new_state();
	int rounds = getenv("NEOSOCKSD_UNDER_VALGRIND") ? 300 : 3000;

	(void)state;
	normalise_zeros(L);
	for (int r = 0; r < rounds; r++) {
		int top = lua_gettop(L), nv = (int)(rng() % 4);
		size_t len;
		const char *text;
		char *answer;

		lua_getglobal(L, "table");
		lua_getfield(L, -1, "pack");
		lua_remove(L, -2);
		for (int k = 0; k < nv; k++)
			gen_value(L, 0, false);
		lua_call(L, nv, 1); /* the values, packed: top + 1 */
		lua_getglobal(L, "normal");
		lua_pushvalue(L, top + 1);
		lua_call(L, 1, 1); /* what should come back: top + 2 */
		/* marshal(table.unpack(v, 1, v.n)) */
		lua_pushcfunction(L, lib_marshal);
		for (int k = 1; k <= nv; k++)
			lua_rawgeti(L, top + 1, k);
		lua_call(L, nv, 1);
		text = lua_tolstring(L, -1, &len);
		answer = malloc(len + 8);
		assert_non_null(answer);
		memcpy(answer, "return ", 7);
		memcpy(answer + 7, text, len);
		len += 7;
		lua_pop(L, 1);
		/* ours == the values (n kept: trailing nils count) */
		if (!ours_packed(L, answer, len))
			fail_msg("refused marshal output %s: %s", answer,
				 lua_tostring(L, -1));
		lua_pushvalue(L, top + 2);
		if (!same_top2(L))
			fail_msg("round %d: %s does not give back its values",
				 r, answer);
		/* ours == Lua's loader */
		expect_as_lua(L, answer, len);
		free(answer);
		lua_settop(L, top);
	}
	lua_close(L);
}

/* Out of memory while building: an error, no leak (the state's allocator
 * is capped, as the daemon's is). */
struct capped {
	size_t used, limit;
};

static void *capped_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
	struct capped *c = ud;
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
	if (p != NULL)
		c->used = c->used - old + nsize;
	return p;
}

static void test_memory_cap(void **state)
{
	struct capped cap = { 0, 512 * 1024 };
	lua_State *L = lua_newstate(capped_alloc, &cap);
	size_t len = 0, big = 300000;
	char *s = malloc(big + 64);

	(void)state;
	assert_non_null(L);
	assert_non_null(s);
	len = (size_t)sprintf(s, "return {");
	while (len < big)
		len += (size_t)sprintf(s + len, "{},");
	s[len++] = '}';
	assert_int_equal(unmarshal_lua(L, s, len, STR_MAX), -1);
	assert_string_equal(lua_tostring(L, -1), "not enough memory");
	lua_pop(L, 1);
	/* and the state still works */
	assert_int_equal(unmarshal_lua(L, "return 1,'x'", 12, STR_MAX), 2);
	assert_int_equal(lua_tointeger(L, -2), 1);
	lua_close(L);
	free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_scalars_events),
		cmocka_unit_test(test_nan_spellings),
		cmocka_unit_test(test_strings_events),
		cmocka_unit_test(test_tables_events),
		cmocka_unit_test(test_flush_batches),
		cmocka_unit_test(test_same_as_lua),
		cmocka_unit_test(test_code_refused),
		cmocka_unit_test(test_truncated),
		cmocka_unit_test(test_byte_at_a_time),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_sparse_keys),
		cmocka_unit_test(test_marshal_then_parse),
		cmocka_unit_test(test_memory_cap),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
